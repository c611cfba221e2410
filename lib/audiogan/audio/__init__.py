"""Audio signals: reading and writing files (:mod:`.io`), levels and spectrograms (:mod:`.features`)."""

from audiogan.audio.features import log_spectrogram, rms_db
from audiogan.audio.io import AUDIO_EXTENSIONS, BadFile, read_audio, read_blocks, write_wav

__all__ = ["AUDIO_EXTENSIONS", "BadFile", "log_spectrogram", "read_audio", "read_blocks", "rms_db", "write_wav"]
