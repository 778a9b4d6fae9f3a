"""Turning request parameters into ``recommender`` calls, for the pages and the JSON API alike.

Nothing here ranks: it validates parameters (a clear 400 for anything odd),
picks the ``recommender`` function and shapes its ``(ids, scores)`` for display.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from urllib.parse import unquote_to_bytes, urlsplit

from flask import abort, request
from werkzeug.datastructures import MultiDict

import numpy as np

from recommender.accounts import popular
from recommender.learning import ranking, service
from recommender.features import AUTHORS, CATEGORIES, TEXT
from recommender.corpus import links
from recommender.corpus.ids import InvalidArxivId, parse_arxiv_id
from recommender.features.index import FeatureIndex, from_day
from recommender.learning.models import ALL
from recommender.corpus.store import PaperStore

from .feedurls import short_args

PAGE_SIZE = 25
MAX_FEED_TAGS = 50  # the most tags a user may have (the max_tags setting's default)
MAX_PAGE = ranking.MAX_N * 100 // PAGE_SIZE
WINDOWS = {"new": None, "day": 1, "week": 7, "month": 31, "year": 365, "all": None}  # "new": since the last visit
MODES = ("rec", "recent", "random", "popular")
POPULAR_WINDOWS = tuple(popular.WINDOWS)  # tags are counted back from now, over these windows only


MAX_JSON_DEPTH = 20
_WHOLE = re.compile(r"[+-]?[0-9]+", re.ASCII)
_SURROGATE = re.compile("[\ud800-\udfff]")
_PATH_CONTROL = re.compile("[\x00-\x1f\x7f]")
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def bad_request(message: str):
    abort(400, description=message)


def _int(args: MultiDict, name: str, default: int, lo: int, hi: int) -> int:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    if not _WHOLE.fullmatch(raw):
        bad_request(f"{name} must be a whole number")
    digits = raw.lstrip("+-").lstrip("0") or "0"
    if len(digits) > 18:  # int() of thousands of digits is slow or refused; anything this long is out of range
        bad_request(f"{name} must be between {lo} and {hi}")
    value = int(raw)
    if not lo <= value <= hi:
        bad_request(f"{name} must be between {lo} and {hi}")
    return value


# Raw input -------------------------------------------------------------------
def check_request_input() -> None:
    """Before every request: the URL must be valid UTF-8 without NUL bytes (and the path without control
    characters), so no handler ever sees text it cannot store, compare or print. A clear 400 otherwise.

    The path is judged as the client sent it (``REQUEST_URI``/``RAW_URI`` when the server gives it), since
    some servers and the test client already replaced undecodable bytes in ``PATH_INFO``.
    """
    environ = request.environ
    try:
        raw_uri = environ.get("REQUEST_URI") or environ.get("RAW_URI")
        if raw_uri:
            raw_path = urlsplit(raw_uri).path if "://" in raw_uri[:12] else raw_uri.split("?", 1)[0]
            path_bytes = unquote_to_bytes(raw_path.encode("latin-1"))
        else:
            path_bytes = environ.get("PATH_INFO", "").encode("latin-1")
        path = path_bytes.decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError, ValueError):
        bad_request("the URL path is not valid UTF-8")
    if _PATH_CONTROL.search(path) or _SURROGATE.search(path):
        bad_request("the URL path contains control characters")
    query = environ.get("QUERY_STRING", "")
    if query:
        try:
            for part in query.encode("latin-1").split(b"&"):
                if "\x00" in unquote_to_bytes(part.replace(b"+", b" ")).decode("utf-8"):
                    bad_request("the query string contains a NUL character")
        except (UnicodeEncodeError, UnicodeDecodeError):
            bad_request("the query string is not valid UTF-8")


def _depth_ok(text: str, limit: int) -> bool:
    depth = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub('""', text)):
        depth += 1 if match.group() in "[{" else -1
        if depth > limit:
            return False
    return True


def _clean(value) -> bool:
    """No lone surrogates anywhere in the parsed body (they cannot be stored or encoded)."""
    if isinstance(value, str):
        return not _SURROGATE.search(value)
    if isinstance(value, dict):
        return all(_clean(k) and _clean(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_clean(v) for v in value)
    return True


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):  # ambiguous: parsers differ on which value wins
        seen = set()
        raise _DuplicateKey(next(k for k, _ in pairs if k in seen or seen.add(k)))
    return out


def json_object() -> dict:
    """The request's JSON object body, or a 400 saying what is wrong: wrong type, not UTF-8, not JSON,
    nested deeper than ``MAX_JSON_DEPTH``, a key given twice, a lone surrogate in a string, or not an object."""
    message = "send a JSON object body with Content-Type: application/json"
    if not request.is_json:
        bad_request(message)
    try:
        text = request.get_data(cache=True).decode("utf-8")
    except UnicodeDecodeError:
        bad_request("the JSON body is not valid UTF-8")
    if not _depth_ok(text, MAX_JSON_DEPTH):
        bad_request(f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        bad_request(f"the JSON body names {str(exc)[:40]!r} twice")
    except (ValueError, RecursionError):
        bad_request(message)
    if not isinstance(data, dict):
        bad_request(message)
    if not _clean(data):
        bad_request("the JSON body contains text that is not valid Unicode (a lone surrogate)")
    return data


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
    previous_visit: dt.datetime | None = None  # for window "new": when the user's previous visit ended (UTC)
    hide_seen: bool = False  # leave out papers already shown or opened (``s=1``)
    as_of: int | None = None  # hide-seen cutoff in unix seconds (``as_of=``); else the start of this visit
    seen: frozenset[str] = frozenset()  # the papers hide-seen leaves out (the view reads them, see seen_cutoff)

    @property
    def page(self) -> int:
        return self.offset // self.limit + 1


def default_window(mode: str, logged_in: bool, api: bool) -> str:
    """The recommended page opens on what is new since the last visit, Popular on the past week;
    everything else on all papers."""
    if mode == "popular":
        return "week"
    return "new" if mode == "rec" and logged_in and not api else "all"


def parse_feed(args: MultiDict, index: FeatureIndex, logged_in: bool, api: bool,
               previous_visit: float | None = None) -> FeedQuery:
    """Validate feed parameters (short names ``m t w c h`` or the long ones, see :data:`LONG_NAMES`).
    Pages use ``page``; the API uses ``limit`` and ``offset``."""
    args = short_args(args)
    tags = list(dict.fromkeys(t for t in args.getlist("t") if t))  # a tag named twice counts once
    if len(tags) > MAX_FEED_TAGS:
        bad_request(f"a feed combines at most {MAX_FEED_TAGS} tags")
    mode = args.get("m") or ("rec" if logged_in else "recent")
    if mode not in MODES:
        bad_request(f"mode must be one of {', '.join(MODES)}")
    if mode == "rec" and not logged_in:
        abort(401, description="log in to see recommendations")
    if mode == "popular":
        return _parse_popular(args, api)
    since, until = _date(args, "since"), _date(args, "until")
    # explicit dates replace the default window (an opening "since your last visit" would contradict them)
    window = args.get("w") or ("all" if since or until else default_window(mode, logged_in, api))
    if window not in WINDOWS:
        bad_request(f"window must be one of {', '.join(WINDOWS)}")
    if window == "new" and not logged_in:
        window = "week"  # a shared "since your last visit" link, opened by someone without one
    visit = None
    if window == "new" and since is None:
        visit = dt.datetime.fromtimestamp(previous_visit, dt.timezone.utc) if previous_visit else None
        if visit is not None and index.first_seen is None:
            since = visit.date()  # a generation that predates first_seen: by published date, as before
        # otherwise build_feed filters by arrival; no previous visit: it falls back to the past week
    elif WINDOWS[window] and since is None:
        since = _days_back(index, WINDOWS[window])
    category = (args.get("c") or "").strip()
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
    hide = args.get("h", "1" if mode == "rec" else "0") not in ("0", "", "false", "off")
    hide_seen = logged_in and args.get("s", "0") not in ("0", "", "false", "off")
    as_of = _int(args, "as_of", 0, 0, 2**40) or None
    return FeedQuery(mode, tags, filters, window, category, hide, limit, offset, visit, hide_seen, as_of)


def seen_cutoff(q: FeedQuery, previous_visit: float | None, visit_gap_s: float | None, now: float) -> int | None:
    """Hide-seen leaves out papers marked before this time: ``as_of`` when the URL gives one, else the
    start of the current visit for a page (so this visit's own pages, and paging through them, stay put:
    every mark of the previous visit is within minutes of its end, and this visit began more than
    ``visit_gap_s`` after it); the API (``visit_gap_s`` None) uses now. None: nothing to hide (a first visit)."""
    if q.as_of is not None:
        return q.as_of
    if visit_gap_s is None:
        return int(now) + 1
    return None if previous_visit is None else int(previous_visit) + int(visit_gap_s)


def _parse_popular(args: MultiDict, api: bool) -> FeedQuery:
    """Popular counts every reader's tags over the past day, week or month: tags, category and "hide tagged"
    do not apply (they are ignored, as tags are by Newest), and neither do paper dates (a 400)."""
    if args.get("since") or args.get("until"):
        bad_request("since and until do not apply to the popular feed: use window day, week or month")
    window = args.get("w") or "week"
    if window == "new":
        window = "week"  # the default window of another feed, carried over by the form
    if window not in POPULAR_WINDOWS:
        if api:
            bad_request(f"the popular feed counts tags over a window of {', '.join(POPULAR_WINDOWS)}; "
                        f"not {window[:20]!r}")
        window = "week"  # the page's form carries the window of the feed it came from
    if api:
        limit, offset = _int(args, "limit", PAGE_SIZE, 1, 200), _int(args, "offset", 0, 0, 100 * ranking.MAX_N - 200)
    else:
        limit, offset = PAGE_SIZE, (_int(args, "page", 1, 1, MAX_PAGE) - 1) * PAGE_SIZE
    return FeedQuery("popular", [], ranking.Filters(), window, "", False, limit, offset)


def popular_feed(users, papers: PaperStore, q: FeedQuery, min_users: int,
                 cache: popular.PopularCache | None = None) -> FeedPage:
    """The popular page: only counts of readers, for papers at least ``min_users`` of them tagged."""
    found = popular.popular(users, papers, q.window, min_users=min_users, n=q.limit, offset=q.offset, cache=cache)
    return FeedPage(found.ids, [float(r) for r in found.readers], found.total, "popular", offset=q.offset,
                    readers=found.readers)


def _days_back(index: FeatureIndex, days: int) -> dt.date | None:
    """The first day of a window of ``days`` ending on the newest paper in the index."""
    return dt.date.fromisoformat(from_day(int(index.dates[-1]) - days + 1)) if len(index) else None


@dataclasses.dataclass
class FeedPage:
    ids: list[str]
    scores: list[float]
    total: int
    mode: str
    notice: str | None = None
    scored: bool = False  # a model ranked these papers (percentiles and "why" mean something)
    offset: int = 0
    since: dt.date | None = None  # the first day shown when the window is "new" (after any fallback)
    since_visit: bool = False  # the window is "new" and shows what came since the previous visit (no fallback)
    arrived_after: dt.datetime | None = None  # ... by arrival in the index: after this time (UTC)
    readers: list[int] | None = None  # popular: how many readers tagged each paper in the window

    def percentiles(self) -> list[float | None]:
        """Each paper's rank as a percentile of the papers the model scored in this window: 99.5 means
        it ranks above 99.5% of them. None when no model scored the page (newest, random)."""
        if not self.scored or not self.total:
            return [None] * len(self.ids)
        return [round(100.0 * (self.total - (self.offset + i + 1)) / self.total, 1) for i in range(len(self.ids))]


def build_feed(index: FeatureIndex, q: FeedQuery, lib=None) -> FeedPage:
    """Run the query for ``lib`` (the user's :class:`~webapp.context.Library`, or None when anonymous).

    A recommended feed without a usable model falls back to the newest papers, with a notice, and
    "since your last visit" with nothing new (or no last visit) falls back to the past week.
    "Since your last visit" means papers that entered the index after the previous visit ended (their
    ``first_seen``), not papers dated since then: arXiv announces papers days after their date. An index
    from before ``first_seen`` was recorded falls back to the published date.
    """
    notice = None
    if q.window == "new":
        q, notice = _new_or_week(index, q, lib)
    page = _run(index, q, lib)
    page.offset, page.since = q.offset, q.filters.since if q.window == "new" else None
    page.since_visit = q.window == "new" and notice is None and q.previous_visit is not None
    if page.since_visit and q.filters.arrived_after is not None:
        page.arrived_after = q.previous_visit
    if notice:
        page.notice = notice if not page.notice else f"{notice} {page.notice}"
    return page


def _new_or_week(index: FeatureIndex, q: FeedQuery, lib):
    if q.previous_visit is None and q.filters.since is not None:
        return q, None  # an explicit since= wins
    tagged = (lib.papers | set(lib.hidden)) if lib and q.hide_tagged else set()
    tagged |= q.seen if q.hide_seen else set()
    if q.previous_visit is not None:
        if index.first_seen is not None:
            q = dataclasses.replace(q, filters=dataclasses.replace(q.filters,
                                                                   arrived_after=q.previous_visit.timestamp()))
        f = dataclasses.replace(q.filters, exclude=frozenset(tagged))
        if ranking.count(index, f) > 0:
            return q, None
        notice = f"Nothing new since your last visit ({visit_label(q.previous_visit)}): here is the past week."
    else:
        notice = "Here is the past week. Next time, this feed opens on what is new since this visit."
    week = _days_back(index, WINDOWS["week"])
    if q.filters.until and week and week > q.filters.until:
        week = q.filters.until
    return dataclasses.replace(q, filters=dataclasses.replace(q.filters, since=week, arrived_after=None)), notice


def visit_label(when: dt.datetime) -> str:
    """A visit time as people read it: ``2026-03-13 17:05 UTC``."""
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _run(index: FeatureIndex, q: FeedQuery, lib) -> FeedPage:
    library, model, hidden = (lib.tags, lib.model, lib.hidden) if lib else ({}, None, ())
    tagged = {p for ids in library.values() for p in ids}
    excluded = (frozenset(tagged) if q.hide_tagged else frozenset()) | (q.seen if q.hide_seen else frozenset())
    filters = dataclasses.replace(q.filters, exclude=excluded)
    if q.mode == "rec":
        unknown = [t for t in q.tags if t not in library]
        if unknown:
            abort(404, description=f"you have no tag {unknown[0][:40]!r}")
        try:
            ids, scores = service.recommend(index, model, tagged, q.tags or None, filters, q.limit, q.offset,
                                            not_interested=hidden)
            f = dataclasses.replace(filters, exclude=filters.exclude | frozenset(hidden))
            return FeedPage(ids, scores, ranking.count(index, f), "rec", scored=True)
        except (service.NoModel, KeyError):
            note = ("Tag a few papers to get recommendations; until then, here are the newest papers."
                    if not tagged else "Your model is being trained; here are the newest papers meanwhile.")
            page = _run(index, dataclasses.replace(q, mode="recent"), lib)
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
          with_abstract: bool = False, percentiles: list | None = None, readers: list | None = None,
          seen_of: dict | None = None) -> list[dict]:
    """Display records for a page of ids (O(page) store reads), with the links found in each abstract.
    ``seen_of`` (``{id: 1 shown, 2 opened}``) adds ``seen``: "seen", "read" or None."""
    found = papers.get_many(ids)
    out = []
    for i, (pid, score) in enumerate(zip(ids, scores)):
        p = found.get(pid)
        if p is None:
            continue  # in the features but gone from the store: skip rather than fail the page
        found_links = links.find_links(p.abstract, p.comments)
        card = {"id": p.id, "title": p.title, "authors": list(p.authors), "categories": list(p.categories),
                "date": p.published, "score": round(float(score), 6),
                "percentile": percentiles[i] if percentiles else None,
                "code_url": links.code_url(found_links),
                "links": [{"url": link.url, "kind": link.kind} for link in found_links]}
        if readers is not None:
            card["readers"] = readers[i]
        if with_abstract:
            card["abstract"] = p.abstract
        if tags_of is not None:
            card["tags"] = tags_of.get(pid, [])
        if seen_of is not None:
            card["seen"] = {1: "seen", 2: "read"}.get(seen_of.get(pid))
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
    # One mat-vec: where this paper stands among every indexed paper for that model, in words a person reads.
    everyone = ranking.window_matvec(idx.X, 0, len(idx), np.asarray(model.W[best], dtype=np.float32))
    below = int(np.count_nonzero(everyone + model.b[best] < scores[best]))
    return {"tag": None if tag == ALL else tag, "score": float(scores[best]),
            "percentile": round(100.0 * below / max(1, len(idx)), 1), "out_of": len(idx),
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
