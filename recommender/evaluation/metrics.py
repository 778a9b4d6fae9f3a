"""Ranking metrics for one user, and their summary over users."""
from __future__ import annotations

import numpy as np

KS = (10, 50, 100)


def ranks_of(scores: np.ndarray, relevant: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """1-based ranks of the relevant candidates when sorting by score, ties broken at random.

    Random tie-breaking keeps a constant-score method at chance level instead of
    rewarding whatever order the candidates happen to be in.
    """
    jitter = rng.random(len(scores))
    order = np.lexsort((jitter, -np.asarray(scores, dtype=np.float64)))
    position = np.empty(len(scores), dtype=np.int64)
    position[order] = np.arange(1, len(scores) + 1)
    return np.sort(position[relevant])


def user_metrics(scores: np.ndarray, relevant: np.ndarray, rng: np.random.Generator, ks=KS) -> dict[str, float]:
    """recall@k, nDCG@k (binary gains), MRR and AUC for one ranking of candidates.

    ``relevant`` holds candidate indices; there must be at least one and fewer than all.
    """
    n, r = len(scores), len(relevant)
    if not 0 < r < n:
        raise ValueError("need at least one relevant and one non-relevant candidate")
    ranks = ranks_of(scores, relevant, rng)
    out = {}
    for k in ks:
        hits = ranks[ranks <= k]
        ideal = np.sum(1.0 / np.log2(np.arange(2, min(r, k) + 2)))
        out[f"recall@{k}"] = len(hits) / r
        out[f"ndcg@{k}"] = float(np.sum(1.0 / np.log2(hits + 1)) / ideal)
    out["mrr"] = 1.0 / ranks[0]
    # AUC: the share of (relevant, non-relevant) pairs ranked the right way round.
    below = (n - ranks) - (r - 1 - np.arange(r))
    out["auc"] = float(below.sum() / (r * (n - r)))
    return out


def summarize(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean, standard deviation and 95% confidence half-width of each metric over users."""
    keys = rows[0].keys()
    out = {}
    for key in keys:
        values = np.array([row[key] for row in rows])
        std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        out[key] = {"mean": float(values.mean()), "std": std, "ci95": 1.96 * std / np.sqrt(len(values)),
                    "n": len(values)}
    return out


def recall_curve(scores: np.ndarray, relevant: np.ndarray, rng: np.random.Generator, ks: np.ndarray) -> np.ndarray:
    ranks = ranks_of(scores, relevant, rng)
    return np.searchsorted(ranks, ks, side="right") / len(relevant)


def paired(a, b, n_boot: int = 10000, seed: int = 0, tie: float = 1e-9, clusters=None) -> dict:
    """Paired comparison of method A against baseline B over the same cases.

    Returns the means, their difference with a percentile-bootstrap 95% interval,
    the relative change of the means with its interval from the same resamples
    (resamples whose baseline mean is 0 have none and are left out of that
    interval), and the wins, losses and ties of A. The bootstrap resamples cases
    with replacement, or whole ``clusters`` (one label per case): cases that are
    not independent, such as one author at several overlapping cutoffs, are
    drawn together so the interval is not too narrow.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError("paired values need two equal-length, non-empty lists")
    labels = np.arange(len(a)) if clusters is None else np.unique(np.asarray(clusters), return_inverse=True)[1]
    if len(labels) != len(a):
        raise ValueError("one cluster label per case")
    k = int(labels.max()) + 1
    sum_a, sum_b = np.bincount(labels, a, k), np.bincount(labels, b, k)
    size = np.bincount(labels, minlength=k).astype(np.float64)
    picks = np.random.default_rng(seed).integers(0, k, size=(n_boot, k))
    n = size[picks].sum(axis=1)
    mean_a, mean_b = sum_a[picks].sum(axis=1) / n, sum_b[picks].sum(axis=1) / n
    diff = a - b
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = mean_a / mean_b - 1
    rel[~np.isfinite(rel)] = np.nan  # a resample whose baseline mean is 0 has no relative change
    return {
        "n": len(a), "clusters": k, "mean_a": float(a.mean()), "mean_b": float(b.mean()),
        "diff": float(diff.mean()), "diff_ci": [float(v) for v in np.percentile(mean_a - mean_b, [2.5, 97.5])],
        "rel": float(a.mean() / b.mean() - 1) if b.mean() else float("nan"),
        "rel_ci": [float(v) for v in np.nanpercentile(rel, [2.5, 97.5])] if b.mean() else [float("nan")] * 2,
        "wins": int((diff > tie).sum()), "losses": int((diff < -tie).sum()), "ties": int((np.abs(diff) <= tie).sum()),
    }
