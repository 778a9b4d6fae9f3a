"""``paperfeed evaluate``: offline quality of the ranking methods on real data.

Writes ``quality.json``, one recall@k plot per protocol, and the generated
tables inside ``quality.md`` (hand-written text around them is kept).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path

from recommender.evaluation import authors, citations, methods, report
from recommender.evaluation.run import evaluate

from .output import emit
from .progress import bar

SHARED = Path(os.environ.get("PAPERFEED_SHARED", "../shared"))
RECIPE = methods.RecipeMethod.name


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad date {text!r}: use YYYY-MM-DD") from None


def add_arguments(parser) -> None:
    parser.add_argument("--protocol", choices=("authors", "citations", "all"), default="all")
    parser.add_argument("--corpus", type=Path, default=SHARED / "arxiv/corpus/arxiv-metadata-2025-2026.jsonl.xz",
                        help="Kaggle-format snapshot for the author protocol (default: the full shared corpus)")
    parser.add_argument("--cutoff", type=_date, default=dt.date(2026, 2, 1),
                        help="time split for the author protocol (default 2026-02-01, the test cutoff)")
    parser.add_argument("--window-days", type=int, default=90, help="days after the cutoff that hold the candidates")
    parser.add_argument("--users", type=int, default=200, help="author pseudo-users sampled (fixed seed)")
    parser.add_argument("--citations", type=Path, default=SHARED / "arxiv/citations/paperscape_1991_1996.jsonl.gz")
    parser.add_argument("--queries", type=int, default=300, help="query papers for the citation protocol")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("docs"), help="folder for quality.md/json and plots")


def run(args, settings) -> int:
    payload = {"args": {k: str(v) for k, v in vars(args).items() if not k.startswith("_")}}
    if args.protocol in ("authors", "all"):
        payload["authors"] = _authors(args)
    if args.protocol in ("citations", "all"):
        payload["citations"] = _citations(args)
    args.out.mkdir(parents=True, exist_ok=True)
    for key in ("authors", "citations"):
        if key in payload:
            report.plot(payload[key], args.out / f"quality_{key}.png", f"recall@k, {key} protocol")
            report.splice(args.out / "quality.md", key, report.table(payload[key], RECIPE) +
                          f"\n\n![recall@k, {key} protocol](quality_{key}.png)")
    report.write_json(args.out / f"quality_{args.protocol}.json", payload)
    summary = {p: {m: round(r["summary"]["ndcg@100"]["mean"], 4) for m, r in payload[p].items()}
               for p in ("authors", "citations") if p in payload}
    emit(args, summary, "\n".join(f"{p}: " + ", ".join(f"{m} nDCG@100={v}" for m, v in s.items())
                                  for p, s in summary.items()))
    return 0


def _progress(handle):
    def advance(name, done, total):
        handle.set_description(f"evaluate {name}")
        handle.total = total
        handle.n = done
        handle.refresh()
    return advance


def _authors(args) -> dict:
    papers = authors.load_corpus(args.corpus)
    task = authors.build_task(papers, args.cutoff, args.window_days, args.users, args.seed)
    chosen = [methods.RandomMethod(), methods.RecentMethod(), methods.CentroidMethod(), methods.RecipeMethod(),
              methods.PaperfeedMethod()]
    with bar("evaluate", unit="user") as handle:
        return evaluate(chosen, task, task.users, lambda u: u.relevant, args.seed, _progress(handle))


def _citations(args) -> dict:
    task = citations.load_task(args.citations, args.queries, seed=args.seed)
    chosen = [citations.CitationRandom(), citations.CitationRecent(), citations.CitationRecipe(),
              citations.CitationPaperfeed()]
    with bar("evaluate", unit="query") as handle:
        return evaluate(chosen, task, task.users, lambda q: task.links[q], args.seed, _progress(handle))
