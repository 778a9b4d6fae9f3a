"""``paperfeed demo``: the one command a new user runs.

Fetches recent papers from the arXiv API (or imports ``--from FILE``), computes
features, creates a demo user with a small library so the feed is personal from
the first page, and trains.
"""
from __future__ import annotations

import argparse

from recommender.demo import seed_demo_user

from . import compute, fetch, import_snapshot, train
from .output import warn


def add_arguments(parser) -> None:
    parser.add_argument("--from", dest="source", metavar="FILE", help="import this snapshot instead of fetching")
    parser.add_argument("--max-results", type=int, default=300, help="papers to fetch when not using --from")


def run(args, settings) -> int:
    if args.source:
        warn(f"demo: importing {args.source}")
        import_snapshot.run(argparse.Namespace(json=False, files=[args.source]), settings)
    else:
        warn(f"demo: fetching up to {args.max_results} recent papers from the arXiv API")
        code = fetch.run(argparse.Namespace(json=False, category=None, since=None, max_results=args.max_results),
                         settings)
        if code == 2:
            return 2
    warn("demo: computing features")
    compute.run(argparse.Namespace(json=False, max_features=None), settings)
    user = seed_demo_user(settings)
    if user:
        warn(f"demo: created user {user[0]!r} with password {user[1]!r} and a small library")
    train.run(argparse.Namespace(json=False, all=False), settings)
    warn("demo: done. Try `paperfeed recommend demo` or `paperfeed search 'graph neural networks'`")
    return 0
