"""Run methods over a task's cases and keep every case's metrics (the paired tests need them)."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

from recommender.evaluation.cache import FeatureCache
from recommender.evaluation.metrics import recall_curve, summarize, user_metrics
from recommender.evaluation.tasks import Task

CURVE_KS = np.array([1, 2, 5, 10, 20, 50, 100, 200, 500, 1000])
KEPT = ("ndcg@10", "ndcg@100", "recall@10", "recall@100", "mrr", "auc")


def evaluate(methods: Sequence, task: Task, cache: FeatureCache, seed: int = 0,
             progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Score every method on every case of ``task``.

    Returns, per method name: its configuration, per-case metrics (``per_case``,
    in the order of ``task.cases``), their summary, the mean recall curve, and
    seconds per case (training and scoring) and for preparing features.
    """
    results = {}
    for method in methods:
        start = time.perf_counter()
        method.prepare(task, cache)
        prepare_s = time.perf_counter() - start
        rng = np.random.default_rng(seed)
        rows, curves = [], []
        start = time.perf_counter()
        for i, case in enumerate(task.cases):
            scores = method.scores(case)
            metrics = user_metrics(scores, case.relevant, rng)
            rows.append({"case": case.id, **{k: round(metrics[k], 5) for k in KEPT}})
            curves.append(recall_curve(scores, case.relevant, rng, CURVE_KS))
            if progress:
                progress(f"{task.protocol} {task.name} {method.name}", i + 1, len(task.cases))
        results[method.name] = {
            "config": method.config(),
            "summary": summarize([{k: r[k] for k in KEPT} for r in rows]),
            "recall_curve": {"k": CURVE_KS.tolist(), "recall": np.mean(curves, axis=0).round(4).tolist()},
            "seconds_per_case": round((time.perf_counter() - start) / len(task.cases), 4),
            "prepare_seconds": round(prepare_s, 2),
            "per_case": rows,
        }
    return results
