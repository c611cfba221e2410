"""Seconds for each evaluation metric at the sizes 05_evaluate uses, on random stand-in data.

    python benchmarks/eval_metrics.py --n 1000 --reference 5000 --classes 10

Stand-ins: softmax probabilities over ``--classes`` classes, ``--features``-dimensional penultimate
features and ``--mel``-dimensional flattened log-mel features (64 mels x 32 frames = 2048 by
default) for ``--n`` generated and ``--reference`` training clips. Each metric is timed as
05_evaluate runs it (IS, mIS, AM, |D|self, |D|train over ``--splits`` splits; FD and NDB/K on all
clips; k-means once), median of ``--repeats``. With ``--classifier DIR`` the stored classifier's
prediction throughput (clips per second, log-mel included) on random clips is measured too.
Results are appended to ``benchmarks/results/eval_metrics.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from audiogan.evaluation import metrics as M


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--reference", type=int, default=5000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--features", type=int, default=128)
    parser.add_argument("--mel", type=int, default=64 * 32)
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--bins", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--classifier", default="", help="a folder under runs/classifiers/ to time predictions")
    args = parser.parse_args()

    rng = np.random.default_rng(0)

    def probs(n):
        logits = rng.normal(size=(n, args.classes)) * 3
        e = np.exp(logits - logits.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    p_gen, p_ref = probs(args.n), probs(args.reference)
    f_gen, f_ref = rng.normal(size=(args.n, args.features)), rng.normal(size=(args.reference, args.features))
    m_gen = rng.normal(size=(args.n, args.mel)).astype(np.float32)
    m_ref = rng.normal(size=(args.reference, args.mel)).astype(np.float32)

    def split(fn):
        return lambda: M.over_splits(fn, args.n, args.splits)

    centroids = M.kmeans(f_ref, args.bins)
    seconds = {
        "inception_score": timed(split(lambda i: M.inception_score(p_gen[i])), args.repeats),
        "modified_inception_score": timed(split(lambda i: M.modified_inception_score(p_gen[i])), args.repeats),
        "am_score": timed(split(lambda i: M.am_score(p_gen[i], p_ref)), args.repeats),
        "frechet_distance": timed(lambda: M.frechet_distance(f_gen, f_ref), args.repeats),
        "kmeans": timed(lambda: M.kmeans(f_ref, args.bins), args.repeats),
        "ndb": timed(lambda: M.ndb(f_ref, f_gen, centroids=centroids), args.repeats),
        "d_self": timed(split(lambda i: M.nn_diversity(m_gen[i])), args.repeats),
        "d_train": timed(split(lambda i: M.nn_memorisation(m_gen[i], m_ref)), args.repeats),
    }
    record = {
        "n": args.n, "reference": args.reference, "classes": args.classes, "features": args.features,
        "mel": args.mel, "splits": args.splits, "bins": args.bins,
        "seconds": {k: round(v, 4) for k, v in seconds.items()},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_1min": round(os.getloadavg()[0], 1)},
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if args.classifier:
        from audiogan.evaluation import classifier as C

        clf = C.load(args.classifier)
        clips = rng.uniform(-0.5, 0.5, size=(512, clf.info["clip_samples"])).astype(np.float32)
        clf.predict(clips[:256])  # compile
        t = timed(lambda: clf.predict(clips), args.repeats)
        record["classifier"] = {"path": args.classifier, "clips_per_second": round(len(clips) / t, 1)}
    print(json.dumps(record, indent=2))
    out = Path(__file__).resolve().parent / "results" / "eval_metrics.jsonl"
    out.parent.mkdir(exist_ok=True)
    with open(out, "a") as f:
        f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
