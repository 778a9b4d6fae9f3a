"""``paperfeed recommend|similar|search|stats``: ranked results on the command line."""
from __future__ import annotations

import argparse
import datetime as dt

from recommender import ranking, service
from recommender.artifacts import Generations, read_json
from recommender.index import FeatureIndex
from recommender.models import load_user_model
from recommender.store import PaperStore
from recommender.users import UserError, UserStore

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
    index = FeatureIndex.load(settings.models_dir)
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
    with UserStore(settings.users_path) as users:
        user = users.get_user(args.username)
        if user is None:
            raise UserError(f"no user {args.username!r}")
        library = {p for ids in users.tags(user.id).values() for p in ids}
        hidden = users.not_interested(user.id)
    filters = ranking.Filters(since=args.since, until=args.until, categories=tuple(args.category),
                              exclude=frozenset() if args.include_tagged else frozenset(library))
    model = load_user_model(settings.models_dir, user.id)
    return service.recommend(index, model, library, args.tag, filters, n=args.limit, not_interested=hidden)


def _stats(args, settings) -> int:
    with PaperStore(settings.papers_path) as papers:
        count = len(papers)
    with UserStore(settings.users_path) as users:
        n_users = len(users.list_users())
    gens = Generations(settings.models_dir)
    current = gens.current()
    meta = read_json(gens.path(current) / "meta.json") if current else {}
    data = {"papers": count, "users": n_users, "generation": current,
            "indexed_papers": meta.get("papers", 0), "features": meta.get("features", 0),
            "first_date": meta.get("first_date"), "last_date": meta.get("last_date"),
            "data_dir": str(settings.data_dir), "models_dir": str(settings.models_dir)}
    text = "\n".join(f"{k}: {v}" for k, v in data.items())
    emit(args, data, text)
    return 0
