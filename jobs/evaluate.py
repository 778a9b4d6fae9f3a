"""``paperfeed evaluate``: offline quality on real data, against arxiv-sanity-lite, paired per reader.

``--tune`` runs the tuning grid on the development cutoffs; without it the
test cutoffs are run once with the configured settings. Every case's result is
kept in ``<out>/quality/*.json`` and ``<out>/quality.md`` is regenerated from
those files (``--report`` only regenerates).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from recommender.storage import artifacts
from recommender.evaluation import grid, report, runner
from recommender.evaluation.cache import FeatureCache
from recommender.evaluation.tasks import load_corpus
from recommender.features import FeatureParams
from recommender.learning.models import TrainParams

from .output import emit
from .progress import bar

SHARED = Path(os.environ.get("PAPERFEED_SHARED", "../shared"))


def add_arguments(parser) -> None:
    parser.add_argument("--protocol", action="append", choices=(*runner.PROTOCOLS, "all"),
                        help="protocol to run (repeatable; default all)")
    parser.add_argument("--split", choices=("test", "dev"), default="test",
                        help="test cutoffs (reported once) or development cutoffs (choose settings)")
    parser.add_argument("--tune", action="store_true", help="run the tuning grid on the development cutoffs")
    parser.add_argument("--report", action="store_true", help="only regenerate quality.md from the saved JSON")
    parser.add_argument("--users", type=int, default=150, help="pseudo-users per cutoff (fixed seed)")
    parser.add_argument("--queries", type=int, default=100, help="query papers per citation fold")
    parser.add_argument("--corpus", type=Path, default=SHARED / "arxiv/corpus/arxiv-metadata-2025-2026.jsonl.xz")
    parser.add_argument("--citations", type=Path, default=SHARED / "arxiv/citations/paperscape_1991_1996.jsonl.gz")
    parser.add_argument("--curator", type=Path,
                        default=SHARED / "arxiv/ground_truth/dairai_ml_papers_of_the_week.jsonl")
    parser.add_argument("--embeddings", action="store_true",
                        help="also measure the optional embedding block: its tuning rows with --tune, the defaults "
                             "plus the block on the test cutoffs otherwise (needs the embeddings extra; encodes "
                             "every paper once, kept in --cache-dir). A run without it drops those rows.")
    parser.add_argument("--model-weights", type=_weight_counts, metavar="K,K,...",
                        help="only compare the defaults keeping K weights per model (0: dense), paired per reader, "
                             "e.g. 0,2000,4000,8000 (setting model_max_weights); use another --out, as the saved "
                             "rows of that folder are replaced by these")
    parser.add_argument("--vocabulary-sample", type=_weight_counts, metavar="N,N,...",
                        help="only compare the defaults with the vocabulary fitted on N papers (0: every paper), "
                             "paired per reader, e.g. 0,8000 (setting vocabulary_sample); use another --out")
    parser.add_argument("--cache-dir", type=Path, help="keep fitted text features (and embeddings) here between runs")
    parser.add_argument("--out", type=Path, default=Path("docs"), help="folder of quality.md (JSON in quality/)")


def _weight_counts(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(int(k) for k in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None
    if any(k < 0 for k in ks) or len(set(ks)) != len(ks):
        raise argparse.ArgumentTypeError(f"expected distinct numbers, 0 or more, got {text!r}")
    return ks


def _progress(handle):
    def advance(name, done, total):
        handle.set_description(name[:60])
        handle.total = total
        handle.n = done
        handle.refresh()
    return advance


def run(args, settings) -> int:
    data = args.out / "quality"
    protocols = runner.PROTOCOLS if not args.protocol or "all" in args.protocol else tuple(args.protocol)
    summary = {}
    if not args.report:
        for path in (args.corpus, args.citations, args.curator):
            if not path.exists():
                raise FileNotFoundError(f"evaluation data missing: {path} (set PAPERFEED_SHARED or pass the path)")
        features, train = FeatureParams.from_settings(settings), TrainParams.from_settings(settings)
        cache = FeatureCache(args.cache_dir)
        sources = runner.Sources(args.corpus, args.citations, args.curator)
        split = "dev" if args.tune else args.split
        corpus = load_corpus(args.corpus) if {"authors", "curator"} & set(protocols) else None
        for protocol in protocols:
            tasks = runner.build_tasks(protocol, split, sources, args.users, args.queries, corpus)
            if args.model_weights:
                variants = grid.weight_variants(args.model_weights)
            elif args.vocabulary_sample:
                variants = grid.sample_variants(args.vocabulary_sample)
            elif args.tune:
                variants = runner.variants_for(protocol, embeddings=args.embeddings)
            else:
                dev_path = data / f"dev-{protocol}.json"
                tuned = runner.best_lite(artifacts.read_json(dev_path)) if dev_path.exists() else None
                variants = runner.test_variants(protocol, tuned, embeddings=args.embeddings)
            with bar("evaluate", unit="case") as handle:
                results = runner.run_protocol(protocol, split, variants, tasks, features, train, cache, data,
                                              _progress(handle))
            summary[protocol] = report.headline(results)
    written = report.write_quality_md(args.out / "quality.md", data)
    emit(args, {"protocols": summary, "report": str(written)},
         "\n".join(f"{p}: {line}" for p, line in summary.items()) + f"\nwrote {written}")
    return 0

