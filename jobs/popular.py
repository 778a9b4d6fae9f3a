"""``paperfeed popular``: the papers the most readers tagged in the past day, week or month (counts only)."""
from __future__ import annotations

import argparse

from recommender.accounts.popular import WINDOWS, popular
from recommender.accounts.users import UserStore
from recommender.corpus.store import PaperStore

from .output import emit


def _limit(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 1000:
        raise argparse.ArgumentTypeError("limit must be a whole number from 1 to 1000")
    return int(text)


def add_arguments(parser) -> None:
    parser.add_argument("--window", choices=tuple(WINDOWS), default="week", help="count tags from the past "
                        "day, week (default) or month")
    parser.add_argument("--limit", type=_limit, default=20, help="how many papers (1-1000, default 20)")


def run(args, settings) -> int:
    rows, total = [], 0
    if settings.users_path.exists() and settings.papers_path.exists():
        with UserStore(settings.users_path, settings.limits) as users, \
                PaperStore(settings.papers_path, readonly=True) as papers:
            found = popular(users, papers, args.window, min_users=settings.popular_min_users, n=args.limit)
            titles = papers.get_many(found.ids)
            total = found.total
            rows = [{"id": pid, "readers": n, "title": titles[pid].title if pid in titles else ""}
                    for pid, n in zip(found.ids, found.readers)]
    least = max(2, settings.popular_min_users)
    text = ("\n".join(f"{r['readers']:4d}  {r['id']:<18} {r['title']}" for r in rows)
            or f"nothing is popular in the past {args.window} yet: a paper needs tags from {least} readers")
    emit(args, {"window": args.window, "total": total, "papers": rows}, text)
    return 0
