"""Run methods over a protocol's users and collect metrics, curves and timings."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from .metrics import recall_curve, summarize, user_metrics

CURVE_KS = np.array([1, 2, 5, 10, 20, 50, 100, 200, 500, 1000])


def evaluate(methods: Sequence, task, users: Sequence, relevant: Callable, seed: int = 0,
             progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Score every method on every user.

    ``relevant(user)`` gives the candidate positions that count as hits. Returns,
    per method name: metric summary, mean recall curve, and seconds per user.
    """
    results = {}
    for method in methods:
        start = time.perf_counter()
        method.prepare(task)
        prepare_s = time.perf_counter() - start
        rng = np.random.default_rng(seed)
        rows, curves = [], []
        start = time.perf_counter()
        for i, user in enumerate(users):
            scores = method.scores(user)
            rows.append(user_metrics(scores, relevant(user), rng))
            curves.append(recall_curve(scores, relevant(user), rng, CURVE_KS))
            if progress:
                progress(method.name, i + 1, len(users))
        results[method.name] = {
            "summary": summarize(rows),
            "recall_curve": {"k": CURVE_KS.tolist(), "recall": np.mean(curves, axis=0).round(4).tolist()},
            "seconds_per_user": (time.perf_counter() - start) / len(users),
            "prepare_seconds": prepare_s,
            "per_user": rows,
        }
    return results
