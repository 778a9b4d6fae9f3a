"""Turning request parameters into ``recommender`` calls, for the pages and the JSON API alike.

Nothing here ranks: it validates parameters (a clear 400 for anything odd),
picks the ``recommender`` function and shapes its ``(ids, scores)`` for display.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

from flask import abort
from werkzeug.datastructures import MultiDict

import numpy as np

from recommender import ranking, service
from recommender.features import AUTHORS, CATEGORIES, TEXT
from recommender.ids import InvalidArxivId, parse_arxiv_id
from recommender.index import FeatureIndex, from_day
from recommender.models import ALL
from recommender.store import PaperStore

PAGE_SIZE = 25
MAX_PAGE = ranking.MAX_N * 100 // PAGE_SIZE
WINDOWS = {"day": 1, "week": 7, "month": 31, "year": 365, "all": None}
MODES = ("rec", "recent", "random")


def bad_request(message: str):
    abort(400, description=message)


def _int(args: MultiDict, name: str, default: int, lo: int, hi: int) -> int:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.lstrip("-").isdigit():
        bad_request(f"{name} must be a whole number")
    value = int(raw)
    if not lo <= value <= hi:
        bad_request(f"{name} must be between {lo} and {hi}")
    return value


def _date(args: MultiDict, name: str) -> dt.date | None:
    raw = args.get(name)
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        bad_request(f"{name} must be a date like 2026-01-31")


@dataclasses.dataclass
class FeedQuery:
    mode: str
    tags: list[str]
    filters: ranking.Filters
    window: str
    category: str
    hide_tagged: bool
    limit: int
    offset: int

    @property
    def page(self) -> int:
        return self.offset // self.limit + 1


def parse_feed(args: MultiDict, index: FeatureIndex, logged_in: bool, api: bool) -> FeedQuery:
    """Validate feed parameters. Pages use ``page``; the API uses ``limit`` and ``offset``."""
    tags = [t for t in args.getlist("tag") if t]
    mode = args.get("mode") or ("rec" if logged_in else "recent")
    if mode not in MODES:
        bad_request(f"mode must be one of {', '.join(MODES)}")
    if mode == "rec" and not logged_in:
        abort(401, description="log in to see recommendations")
    window = args.get("window") or "all"
    if window not in WINDOWS:
        bad_request(f"window must be one of {', '.join(WINDOWS)}")
    since, until = _date(args, "since"), _date(args, "until")
    if WINDOWS[window] and since is None:
        since = dt.date.fromisoformat(from_day(int(index.dates[-1]) - WINDOWS[window] + 1)) if len(index) else None
    category = (args.get("category") or "").strip()
    if category and category not in index.category_rows:
        bad_request(f"unknown category {category[:40]!r}")
    if api:
        limit, offset = _int(args, "limit", PAGE_SIZE, 1, 200), _int(args, "offset", 0, 0, 100 * ranking.MAX_N - 200)
    else:
        limit, offset = PAGE_SIZE, (_int(args, "page", 1, 1, MAX_PAGE) - 1) * PAGE_SIZE
    try:
        filters = ranking.Filters(since=since, until=until, categories=(category,) if category else ())
    except ValueError as exc:
        bad_request(str(exc))
    hide = args.get("hide_tagged", "1" if mode == "rec" else "0") not in ("0", "", "false", "off")
    return FeedQuery(mode, tags, filters, window, category, hide, limit, offset)


@dataclasses.dataclass
class FeedPage:
    ids: list[str]
    scores: list[float]
    total: int
    mode: str
    notice: str | None = None


def build_feed(index: FeatureIndex, q: FeedQuery, lib=None) -> FeedPage:
    """Run the query for ``lib`` (the user's :class:`~webapp.context.Library`, or None when anonymous).

    A recommended feed without a usable model falls back to the newest papers, with a notice.
    """
    library, model, hidden = (lib.tags, lib.model, lib.hidden) if lib else ({}, None, ())
    tagged = {p for ids in library.values() for p in ids}
    filters = dataclasses.replace(q.filters, exclude=frozenset(tagged) if q.hide_tagged else frozenset())
    if q.mode == "rec":
        unknown = [t for t in q.tags if t not in library]
        if unknown:
            abort(404, description=f"you have no tag {unknown[0][:40]!r}")
        try:
            ids, scores = service.recommend(index, model, tagged, q.tags or None, filters, q.limit, q.offset,
                                            not_interested=hidden)
            f = dataclasses.replace(filters, exclude=filters.exclude | frozenset(hidden))
            return FeedPage(ids, scores, ranking.count(index, f), "rec")
        except (service.NoModel, KeyError):
            note = ("Tag a few papers to get recommendations; until then, here are the newest papers."
                    if not tagged else "Your model is being trained; here are the newest papers meanwhile.")
            q = dataclasses.replace(q, mode="recent")
            page = build_feed(index, q, lib)
            page.notice = note
            return page
    if q.mode == "random":
        ids, scores = ranking.random_papers(index, filters, n=q.limit)
    else:
        ids, scores = ranking.recent(index, filters, n=q.limit, offset=q.offset)
    return FeedPage(ids, scores, ranking.count(index, filters), q.mode)


def stored_paper(papers: PaperStore, raw: str):
    """``(id, Paper)`` for a URL segment: 400 if malformed, 404 if not in the store."""
    pid = paper_id(raw)
    found = papers.get(pid)
    if found is None:
        abort(404, description=f"No paper {pid} here. It may not be imported yet.")
    return pid, found


def paper_id(raw: str) -> str:
    """Versionless id from a URL segment, or a 400 saying what is wrong."""
    try:
        return parse_arxiv_id(raw)[0]
    except InvalidArxivId as exc:
        bad_request(str(exc))


def cards(papers: PaperStore, ids: list[str], scores: list[float], tags_of: dict | None = None,
          with_abstract: bool = False) -> list[dict]:
    """Display records for a page of ids (O(page) store reads)."""
    found = papers.get_many(ids)
    out = []
    for pid, score in zip(ids, scores):
        p = found.get(pid)
        if p is None:
            continue  # in the features but gone from the store: skip rather than fail the page
        card = {"id": p.id, "title": p.title, "authors": list(p.authors), "categories": list(p.categories),
                "date": p.published, "score": round(float(score), 6)}
        if with_abstract:
            card["abstract"] = p.abstract
        if tags_of is not None:
            card["tags"] = tags_of.get(pid, [])
        out.append(card)
    return out


def model_tags(model) -> list[str]:
    return [t for t in (model.tags if model else []) if t != ALL]


def explanation(idx, lib, pid):
    """The model (tag) that scores this paper highest, its score, and the terms, authors and categories
    that drove it (authors and categories with how many of the user's papers share them)."""
    if lib is None or lib.model is None or lib.model.generation != idx.generation:
        return None
    model = lib.model
    row = idx.X[idx.row_of[pid]]
    scores = np.asarray(row @ model.W.T).ravel() + model.b
    best = int(np.argmax(scores))
    library = {p for ids in lib.tags.values() for p in ids}
    reasons = ranking.explain(idx, pid, model.W[best], n=8, library=library)
    tag = model.tags[best]
    return {"tag": None if tag == ALL else tag, "score": float(scores[best]),
            "terms": [(r.label, r.contribution) for r in reasons.get(TEXT, [])],
            "authors": [r for r in reasons.get(AUTHORS, [])[:3] if r.in_library],
            "categories": _distinct_categories(reasons.get(CATEGORIES, []))}


def _distinct_categories(reasons, n=2):
    """Category reasons by name (the primary and listed columns of one category count once)."""
    seen = {}
    for r in reasons:
        name = r.label.removesuffix(" (primary)")
        if r.in_library and name not in seen and len(seen) < n:
            seen[name] = dataclasses.replace(r, label=name)
    return list(seen.values())
