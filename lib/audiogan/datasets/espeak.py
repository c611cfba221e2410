"""eSpeak NG from Python, through the library and voices bundled in the ``espeakng-loader`` wheel.

libespeak-ng is called with ctypes in synchronous mode: each ``say()`` hands back the utterance as
int16 samples at the library's rate (22,050 Hz). The library keeps state between utterances (a
pitch-flutter counter, a noise generator), so the same text can come out slightly different
depending on what was said before in the same process. For output that depends on the seed alone,
:func:`synthesise` runs every fixed chunk of utterances in a fresh worker process
(this file run as a script, so that the worker imports nothing of the package) that seeds the
library's noise first.

Only ``numpy`` and ``ctypes`` are imported here, so a worker starts in a fraction of a second.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

# espeak_AUDIO_OUTPUT, espeak_PARAMETER and espeak_POSITION_TYPE values from speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
# Words per minute and pitch (0-100) that eSpeak accepts.
RATE_LIMITS = (80, 450)


class EspeakError(RuntimeError):
    """eSpeak NG is missing or refused a request; the message says what to do."""


def _loader():
    try:
        import espeakng_loader
    except ImportError as exc:  # pragma: no cover - it is a dependency of the package
        raise EspeakError(
            "the 'digits' dataset needs the espeakng-loader package (libespeak-ng and its voices); "
            "install it with `.venv/bin/pip install espeakng-loader` or `make setup`."
        ) from exc
    return espeakng_loader


def data_path() -> Path:
    return Path(_loader().get_data_path())


def english_accents() -> list[str]:
    """eSpeak's English languages (accents), e.g. ``en-us``, ``en-gb-scotland``.

    ``en-shaw`` is left out: it reads English written in the Shavian alphabet, not an accent.
    """
    folder = data_path() / "lang" / "gmw"
    return sorted(p.name.lower() for p in folder.iterdir() if p.name.lower().startswith("en")
                  and p.name.lower() != "en-shaw")


def variants() -> list[str]:
    """eSpeak's voice variants (``!v``): speaker characters that apply to any language."""
    return sorted(p.name for p in (data_path() / "voices" / "!v").iterdir() if p.is_file())


class Speaker:
    """One loaded libespeak-ng in this process. Create at most one per process."""

    _CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

    def __init__(self, rand_seed: int = 0):
        loader = _loader()
        lib = ctypes.CDLL(loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
            ctypes.c_void_p, ctypes.c_void_p,
        ]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        self.sample_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, loader.get_data_path().encode(), 0)
        if self.sample_rate <= 0:
            raise EspeakError(f"libespeak-ng could not start with the voices in {loader.get_data_path()}")
        self._lib = lib
        self._chunks: list[np.ndarray] = []

        def collect(wav, n, _events):
            if wav and n > 0:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        self._callback = self._CALLBACK(collect)  # kept alive as long as the library may call it
        lib.espeak_SetSynthCallback(self._callback)
        lib.espeak_ng_SetRandSeed(rand_seed)

    def say(self, text: str, voice: str, rate: int = 175, pitch: int = 50, pitch_range: int = 50) -> np.ndarray:
        """``text`` spoken by ``voice`` (e.g. ``"en-us+m3"``) as int16 at ``self.sample_rate``."""
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise EspeakError(f"eSpeak NG has no voice {voice!r}; see audiogan.datasets.espeak.variants()")
        for parameter, value in ((_RATE, rate), (_PITCH, pitch), (_RANGE, pitch_range), (_VOLUME, 100)):
            self._lib.espeak_SetParameter(parameter, int(value), 0)
        self._chunks.clear()
        blob = text.encode() + b"\0"
        status = self._lib.espeak_Synth(blob, len(blob), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if status != 0:
            raise EspeakError(f"eSpeak NG failed to speak {text!r} with {voice!r} (status {status})")
        self._lib.espeak_Synchronize()
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)


def _worker(request_path: str, output_path: str) -> None:
    """Speak every job of one chunk in this (fresh) process; write them as one int16 array."""
    request = json.loads(Path(request_path).read_text())
    speaker = Speaker(rand_seed=request["rand_seed"])
    waves = [speaker.say(**job) for job in request["jobs"]]
    lengths = np.array([len(w) for w in waves], dtype=np.int64)
    flat = np.concatenate(waves) if waves else np.zeros(0, np.int16)
    np.savez(output_path, samples=flat, lengths=lengths, sample_rate=np.int64(speaker.sample_rate))


def synthesise(jobs: list[dict], rand_seed: int, n_chunks: int = 8, workers: int | None = None
               ) -> tuple[list[np.ndarray], int]:
    """Speak ``jobs`` (keyword arguments of :meth:`Speaker.say`) in ``n_chunks`` fixed chunks, each
    in a fresh process, ``workers`` at a time (default: the CPU count). The result depends on the
    jobs, the seed and ``n_chunks`` only, never on ``workers``. Returns (int16 waves, sample rate)."""
    workers = workers or os.cpu_count() or 1
    bounds = np.linspace(0, len(jobs), n_chunks + 1).astype(int)
    with tempfile.TemporaryDirectory(prefix="audiogan-espeak-") as tmp:

        def run(chunk: int):
            request, output = Path(tmp) / f"jobs{chunk}.json", Path(tmp) / f"out{chunk}.npz"
            request.write_text(json.dumps({
                "rand_seed": rand_seed * 1000 + chunk, "jobs": jobs[bounds[chunk]:bounds[chunk + 1]],
            }))
            done = subprocess.run(
                [sys.executable, __file__, str(request), str(output)],
                capture_output=True, text=True, check=False,
            )
            if done.returncode != 0:
                raise EspeakError(f"the eSpeak NG worker failed: {done.stderr.strip()[-2000:]}")
            with np.load(output) as stored:
                flat, lengths, rate = stored["samples"], stored["lengths"], int(stored["sample_rate"])
            if len(lengths) == 0:
                return [], rate
            return np.split(flat, np.cumsum(lengths)[:-1]), rate

        with ThreadPoolExecutor(max_workers=min(workers, n_chunks)) as pool:
            results = list(pool.map(run, range(n_chunks)))
    waves = [w for chunk_waves, _ in results for w in chunk_waves]
    return waves, results[0][1]


if __name__ == "__main__":
    _worker(sys.argv[1], sys.argv[2])
