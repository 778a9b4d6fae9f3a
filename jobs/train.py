"""``paperfeed train``: per-user, per-tag LinearSVCs and their ranked recommendations."""
from __future__ import annotations

import dataclasses

from recommender.index import FeatureIndex
from recommender.service import train_users
from recommender.users import UserStore

from .output import emit
from .progress import bar


def add_arguments(parser) -> None:
    parser.add_argument("--all", action="store_true", help="retrain every user, not only those whose tags changed")


def run(args, settings) -> int:
    index = FeatureIndex.load(settings.models_dir)
    with UserStore(settings.users_path) as users, bar("train", unit="user") as progress:
        def advance(done, total):
            progress.total = total
            progress.update(done - progress.n)

        summary = train_users(settings, index, users, everyone=args.all, progress=advance)
    text = (f"trained {len(summary.trained)} users, {summary.skipped} up to date"
            + (f", {len(summary.empty)} with no tagged paper in the features" if summary.empty else ""))
    emit(args, {**dataclasses.asdict(summary), "generation": index.generation}, text)
    return 0
