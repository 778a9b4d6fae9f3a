"""``paperfeed compute``: TF-IDF features and the similar-papers index, as a new generation.

Damaged rows of the paper store are skipped (never a hang, never a failed run);
they are counted on stderr and in ``--json`` as ``skipped_rows``. ``paperfeed check
--repair`` moves them aside.
"""
from __future__ import annotations

import dataclasses

from recommender.storage.artifacts import remove_stale_temps
from recommender.features import FeatureParams
from recommender.features.index import compute_generation
from recommender.corpus.store import PaperStore

from .output import emit, warn
from .progress import steps

SHOW_BAD = 5


def add_arguments(parser) -> None:
    parser.add_argument("--max-features", type=int, help="vocabulary size (env PAPERFEED_MAX_FEATURES)")


def params_from(settings, args=None) -> FeatureParams:
    return FeatureParams.from_settings(settings, max_features=getattr(args, "max_features", None))


def run(args, settings) -> int:
    removed = remove_stale_temps(settings.models_dir) if settings.models_dir.is_dir() else []
    bad = []
    with PaperStore(settings.papers_path, readonly=True, on_corrupt=bad.append) as store:
        result = compute_generation(store, settings.models_dir, params_from(settings, args), steps("compute"),
                                    n_jobs=settings.n_jobs)
    if removed:
        warn(f"compute: removed {len(removed)} temp file(s) left by a killed run")
    if bad:
        shown = ", ".join(b.key for b in bad[:SHOW_BAD]) + (" ..." if len(bad) > SHOW_BAD else "")
        warn(f"compute: skipped {len(bad)} unreadable paper row(s) ({shown}): run `paperfeed check --repair`, "
             "then import or fetch them again")
    emit(args, {**dataclasses.asdict(result), "skipped_rows": [{"id": b.key, "reason": b.reason} for b in bad]},
         f"generation {result.generation}: {result.papers} papers x {result.features} features ({result.nnz} non-zeros)"
         + (f"; {len(bad)} unreadable rows skipped" if bad else ""))
    return 0
