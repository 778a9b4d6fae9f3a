"""Similar papers and search with bounded postings against exact search: recall and time, in-process.

Usage:
  python benchmarks/bench_similar_recall.py --models-dir M [--queries 200] [--budgets 250000 1000000 4000000]
         [--out FILE.json]

For ``--queries`` papers drawn with a fixed seed, and for the keyword queries of benchmarks/bench_http.py, it
ranks the top 25 with ``ranking.relevance_top`` at each postings budget and exactly (every posting read, as
before the budget existed), and reports recall@25 of the bounded answer against the exact one (mean, 5th
percentile, minimum), the time of each (p50, p99), and how many queries exceeded the budget. The shipped
budget is ``ranking.POSTINGS_BUDGET``.

``--feeds`` also ranks the all-time feed of every tag model saved under ``<models dir>/users`` (e.g. after
``paperfeed train``) with ``ranking.rank_linear``: exactly (one mat-vec over every paper) and as served (past
``MATVEC_BUDGET`` non-zeros, through the inverted index with ``FEED_POSTINGS_BUDGET`` and ``FEED_RESCORE``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.bench_http import QUERIES  # noqa: E402
from recommender.features.index import FeatureIndex  # noqa: E402
from recommender.learning import ranking  # noqa: E402

EXACT = 10 ** 15


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, (time.perf_counter() - start) * 1000


def summary(recalls, times, over) -> dict:
    return {"recall@25_mean": round(float(np.mean(recalls)), 4), "recall@25_p5": round(float(np.percentile(recalls, 5)), 4),
            "recall@25_min": round(float(np.min(recalls)), 4), "p50_ms": round(float(np.percentile(times, 50)), 2),
            "p99_ms": round(float(np.percentile(times, 99)), 2), "queries_over_budget": int(over), "n": len(recalls)}


def feeds(index: FeatureIndex, models_dir: Path) -> dict:
    """Recall@25 and time of each saved tag model's all-time feed as served, against the exact mat-vec."""
    from recommender.learning.models import UserModel

    recalls, served, exact_ms = [], [], []
    for path in sorted((models_dir / "users").glob("*.npz")):
        model = UserModel.load(path)
        for tag in model.tags:
            w, b = model.weights([tag])
            (truth, _), ms = timed(lambda: ranking.rank_linear(index, w, b, n=25, budget_nnz=EXACT))
            exact_ms.append(ms)
            (got, _), ms = timed(lambda: ranking.rank_linear(index, w, b, n=25))
            served.append(ms)
            recalls.append(len(set(truth) & set(got)) / max(1, len(truth)))
    if not recalls:
        return {"models": 0}
    return {"models": len(recalls), "recall@25": [round(r, 2) for r in recalls],
            "recall@25_mean": round(float(np.mean(recalls)), 4),
            "served_ms": [round(t, 1) for t in served], "exact_ms": [round(t, 1) for t in exact_ms]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models-dir", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--budgets", type=int, nargs="+", default=[250_000, ranking.POSTINGS_BUDGET, 4_000_000])
    parser.add_argument("--feeds", action="store_true", help="also the all-time feed of every saved user model")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    index, load_ms = timed(lambda: FeatureIndex.load(args.models_dir))
    n_rows = len(index)
    lengths = np.diff(index.XT.indptr)
    rows = np.random.default_rng(0).choice(n_rows, args.queries, replace=False)
    cases = []  # (kind, query vector, mask, positive_only)
    for row in rows:
        mask = np.ones(n_rows, dtype=bool)
        mask[row] = False
        cases.append(("similar", ranking.similar_query(index.X, int(row), index.similar_scale), mask, False))
    for text in QUERIES:
        vector = index.encoder.encode(text)
        if vector.nnz:
            cases.append(("search", sp.csr_matrix((vector.data, vector.indices, vector.indptr),
                                                  shape=(1, index.X.shape[1])), None, True))
    report = {"papers": n_rows, "nnz": int(index.X.nnz), "load_s": round(load_ms / 1000, 2),
              "postings_per_query": {}, "exact": {}, "budgets": {}}
    exact = {}
    for kind in ("similar", "search"):
        mine = [c for c in cases if c[0] == kind]
        report["postings_per_query"][kind] = {
            p: int(np.percentile([lengths[q.indices].sum() for _, q, _, _ in mine], p)) for p in (50, 90, 100)}
        answers, times = [], []
        for _, query, mask, positive in mine:
            (got, _), ms = timed(lambda: ranking.relevance_top(index, query, 0, n_rows, mask, 25, 0, positive, budget=EXACT))
            answers.append(set(got.tolist()))
            times.append(ms)
        exact[kind] = answers
        report["exact"][kind] = {"p50_ms": round(float(np.percentile(times, 50)), 2),
                                 "p99_ms": round(float(np.percentile(times, 99)), 2)}
    for budget in args.budgets:
        report["budgets"][str(budget)] = {}
        for kind in ("similar", "search"):
            mine = [c for c in cases if c[0] == kind]
            recalls, times, over = [], [], 0
            for (_, query, mask, positive), truth in zip(mine, exact[kind]):
                (got, _), ms = timed(lambda: ranking.relevance_top(index, query, 0, n_rows, mask, 25, 0, positive,
                                                                   budget=budget))
                over += lengths[query.indices].sum() > budget
                recalls.append(len(truth & set(got.tolist())) / max(1, len(truth)))
                times.append(ms)
            report["budgets"][str(budget)][kind] = summary(recalls, times, over)
        print(json.dumps({budget: report["budgets"][str(budget)]}), flush=True)
    if args.feeds:
        report["feeds"] = feeds(index, args.models_dir)
        print(json.dumps({"feeds": report["feeds"]}), flush=True)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
