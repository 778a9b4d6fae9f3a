"""``paperfeed compute``: TF-IDF features and the similar-papers index, as a new generation."""
from __future__ import annotations

import dataclasses

from recommender.features import FeatureParams
from recommender.index import compute_generation
from recommender.store import PaperStore

from .output import emit
from .progress import steps


def add_arguments(parser) -> None:
    parser.add_argument("--max-features", type=int, help="vocabulary size (env PAPERFEED_MAX_FEATURES)")


def params_from(settings, args=None) -> FeatureParams:
    return FeatureParams.from_settings(settings, max_features=getattr(args, "max_features", None))


def run(args, settings) -> int:
    with PaperStore(settings.papers_path, readonly=True) as store:
        result = compute_generation(store, settings.models_dir, params_from(settings, args), steps("compute"))
    emit(args, dataclasses.asdict(result),
         f"generation {result.generation}: {result.papers} papers x {result.features} features ({result.nnz} non-zeros)")
    return 0
