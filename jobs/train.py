"""``paperfeed train``: per-user, per-tag LinearSVCs and their ranked recommendations."""
from __future__ import annotations

import dataclasses

from recommender.storage.artifacts import remove_stale_temps
from recommender.learning.distributed import trainer
from recommender.learning.service import train_current
from recommender.accounts import seen, subscriptions
from recommender.accounts.users import UserStore

from .output import emit
from .progress import bar


def add_arguments(parser) -> None:
    parser.add_argument("--all", action="store_true", help="retrain every user, not only those whose tags changed")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="fit the users on the Dask cluster of this scheduler, e.g. tcp://host:8786; workers need "
                             "the models directory at the same path (env PAPERFEED_DASK_SCHEDULER; default: here)")


def run(args, settings) -> int:
    remove_stale_temps(settings.models_dir / "users")  # what a killed train left behind
    # daily and demo pass no --scheduler: the dask_scheduler setting decides for them.
    with (trainer(settings, getattr(args, "scheduler", None)) as fit,
          UserStore(settings.users_path, settings.limits) as users, bar("train", unit="user") as progress):
        def advance(done, total):
            progress.total = total
            progress.update(done - progress.n)

        summary = train_current(settings, users, everyone=args.all, progress=advance, trainer=fit)
        pruned = seen.prune_all(users, users.limits.seen_retention_s)  # retention of the seen records
        subscriptions.prune_sends(users, users.limits.seen_retention_s)  # and of the digest's send log
    text = (f"trained {len(summary.trained)} users, {summary.skipped} up to date"
            + (f", {len(summary.empty)} with no tagged paper in the features" if summary.empty else "")
            + (f"; largest model {summary.max_bytes_per_model / 1024:.0f} KB per tag" if summary.trained else "")
            + (f"; compute published {summary.generation} meanwhile, so its users were retrained on it"
               if summary.passes > 1 else "")
            + (f"; deleted {pruned} seen records older than {settings.seen_retention_days} days" if pruned else ""))
    emit(args, dataclasses.asdict(summary), text)
    return 0
