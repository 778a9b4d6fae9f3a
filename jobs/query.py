"""``paperfeed recommend|similar|search|stats``: ranked results on the command line.

These commands only read, so they work on a read-only data directory (the stores are
opened read-only, see ``recommender.corpus.store.connect``), and ``stats`` reports the paper
store even when the features are missing or damaged.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import sqlite3

from recommender.learning import ranking, service
from recommender.storage.artifacts import Generations, read_json
from recommender.storage.check import load_index
from recommender.corpus.store import PaperStore, not_writable, read_only_fs
from recommender.accounts.users import UserError, UserStore

from .output import emit

MULTI_COMMAND = True


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad date {text!r}: use YYYY-MM-DD") from None


def _limit(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= ranking.MAX_N:
        raise argparse.ArgumentTypeError(f"limit must be a whole number from 1 to {ranking.MAX_N}")
    return int(text)


def add_arguments(parser, name: str) -> None:
    if name == "recommend":
        parser.add_argument("username")
        parser.add_argument("--tag", action="append", help="rank for this tag (repeat to combine); default: whole library")
        parser.add_argument("--since", type=_date, help="only papers published on or after YYYY-MM-DD")
        parser.add_argument("--until", type=_date, help="only papers published on or before YYYY-MM-DD")
        parser.add_argument("--category", action="append", default=[], help="only papers in this arXiv category")
        parser.add_argument("--include-tagged", action="store_true", help="also list papers already in the library")
    elif name == "similar":
        parser.add_argument("id", help="arXiv id")
    elif name == "search":
        parser.add_argument("query", help="keywords or an arXiv id")
    if name != "stats":
        parser.add_argument("--limit", type=_limit, default=10, help="how many results (1-1000, default 10)")


def run(args, settings) -> int:
    if args.command == "stats":
        return _stats(args, settings)
    index = load_index(settings.models_dir)
    if args.command == "recommend":
        ids, scores = _recommend(args, settings, index)
    elif args.command == "similar":
        ids, scores = ranking.similar(index, args.id, n=args.limit)
    else:
        ids, scores = ranking.search(index, args.query, n=args.limit)
    with PaperStore(settings.papers_path, readonly=True) as papers:
        found = papers.get_many(ids)
    rows = [{"id": pid, "title": found[pid].title if pid in found else "", "score": round(score, 6),
             "date": found[pid].published if pid in found else None,
             "categories": list(found[pid].categories) if pid in found else []}
            for pid, score in zip(ids, scores)]
    text = "\n".join(f"{r['score']:8.4f}  {r['id']:<18} {r['title']}" for r in rows) or "no results"
    emit(args, rows, text)
    return 0


def _recommend(args, settings, index):
    with _users(settings) as users:
        if users is None:
            raise UserError(f"no user {args.username!r}: there is no user database yet")
        user = users.get_user(args.username)
        if user is None:
            raise UserError(f"no user {args.username!r}")
        library = {p for ids in users.tags(user.id).values() for p in ids}
        hidden = users.not_interested(user.id)
    filters = ranking.Filters(since=args.since, until=args.until, categories=tuple(args.category),
                              exclude=frozenset() if args.include_tagged else frozenset(library))
    model = service.current_model(settings, index, user.id)  # moved to this generation by feature name if need be
    return service.recommend(index, model, library, args.tag, filters, n=args.limit, not_interested=hidden)


def _stats(args, settings) -> int:
    count = 0
    if settings.papers_path.exists():
        with PaperStore(settings.papers_path, readonly=True) as papers:
            count = len(papers)
    with _users(settings) as users:
        n_users = len(users.list_users()) if users is not None else 0
    gens = Generations(settings.models_dir)
    current = gens.current()
    meta, problem = {}, None
    if current:
        try:
            meta = read_json(gens.path(current) / "meta.json")
        except (OSError, ValueError) as exc:  # report the store anyway; `check` says more
            problem = f"cannot read {current}/meta.json ({exc}): run `paperfeed check`"
    data = {"papers": count, "users": n_users, "generation": current,
            "indexed_papers": meta.get("papers", 0), "features": meta.get("features", 0),
            "first_date": meta.get("first_date"), "last_date": meta.get("last_date"),
            "data_dir": str(settings.data_dir), "models_dir": str(settings.models_dir)}
    if problem:
        data["generation_error"] = problem
    text = "\n".join(f"{k}: {v}" for k, v in data.items())
    emit(args, data, text)
    return 0


@contextlib.contextmanager
def _users(settings):
    """The user database for reading: None if there is none yet; read-only on a read-only file system.

    ``UserStore`` always opens for writing (it sets WAL and creates the schema), which SQLite
    refuses on a read-only file system. Then the queries go through a read-only connection instead.
    """
    path = settings.users_path
    if not path.exists():
        yield None
        return
    try:
        users = UserStore(path, settings.limits)
        try:
            users.conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # the first read opens the WAL
        except sqlite3.OperationalError:
            users.close()
            raise
    except sqlite3.OperationalError as exc:
        if not read_only_fs(path.parent):
            if os.access(path.parent, os.W_OK):
                raise
            raise not_writable(path) from exc
        users = UserStore(path, settings.limits, readonly=True)
    with users:
        yield users
