"""The feed's URLs and remembered filters.

Feed URLs are short (``/?w=week&c=cs.CV``): the filter form submits long or empty fields, and old
bookmarks use the long names (``window=``, ``category=``), so the feed page redirects both to the
short form without the defaults. A logged-in user's filters are remembered: a feed URL that names a
filter saves the whole set, and a URL that names none (``/``, ``/?page=2``, ``/?m=recent``) uses the
saved set. Explicit URL parameters always win, so a shared link shows what it says.
"""
from __future__ import annotations

from urllib.parse import urlencode

from werkzeug.datastructures import MultiDict

#: Short name of each long parameter name that older links use.
LONG_NAMES = {"mode": "m", "tag": "t", "window": "w", "category": "c", "hide_tagged": "h", "hide_seen": "s"}
#: Parameters that are filters (remembered per user); ``m`` (the feed) and ``page`` are not.
FILTERS = ("t", "w", "c", "h", "s", "since", "until")
REMEMBERED = ("t", "w", "c", "h", "s")


def short_args(args: MultiDict) -> MultiDict:
    """``args`` with long parameter names turned into short ones (a short name given too comes first)."""
    if not any(name in args for name in LONG_NAMES):
        return args
    out = MultiDict()
    for key, values in args.lists():
        if key not in LONG_NAMES:
            out.setlist(key, values)
    for long, short in LONG_NAMES.items():
        values = args.getlist(short) + args.getlist(long)
        if values:
            out.setlist(short, values)
    return out


def names_a_filter(args: MultiDict) -> bool:
    return any(name in args for name in FILTERS)


def with_prefs(args: MultiDict, prefs: dict, tags: set[str], windows, categories) -> MultiDict:
    """``args`` (which name no filter) plus the remembered filters that are still valid: a deleted tag,
    a category no longer in the index or anything malformed is dropped, never an error."""
    out = MultiDict(args)
    picked = prefs.get("t")
    if isinstance(picked, list):
        out.setlist("t", [t for t in picked if isinstance(t, str) and t in tags][:50])
    if prefs.get("w") in windows:
        out["w"] = prefs["w"]
    if isinstance(prefs.get("c"), str) and prefs["c"] in categories:
        out["c"] = prefs["c"]
    for name in ("h", "s"):
        if prefs.get(name) in ("0", "1"):
            out[name] = prefs[name]
    return out


def prefs_of(q) -> dict:
    """The filters of a parsed :class:`~webapp.feeds.FeedQuery` as they are remembered."""
    return {"t": list(q.tags), "w": q.window, "c": q.category, "h": "1" if q.hide_tagged else "0",
            "s": "1" if q.hide_seen else "0"}


def canonical(q, args: MultiDict, default_mode: str, default_window: str) -> list[tuple[str, str]]:
    """The short query of a parsed feed: short names, the defaults left out, pages past the first."""
    pairs: list[tuple[str, str]] = []
    if q.mode != default_mode or args.get("m"):  # a feed named in the link stays named
        pairs.append(("m", q.mode))
    pairs += [("t", t) for t in q.tags]
    if q.window != default_window:
        pairs.append(("w", q.window))
    if q.category:
        pairs.append(("c", q.category))
    if q.hide_tagged != (q.mode == "rec"):
        pairs.append(("h", "1" if q.hide_tagged else "0"))
    if q.hide_seen:
        pairs.append(("s", "1"))
    for name in ("since", "until", "as_of"):
        if args.get(name):
            pairs.append((name, args[name]))
    if q.page > 1:
        pairs.append(("page", str(q.page)))
    return pairs


def redirect_to(args: MultiDict, pairs: list[tuple[str, str]]) -> str | None:
    """The short URL's query string when the request should be redirected to it (long names, empty
    fields, spelled-out defaults), else None. A request that names no filter is left alone."""
    if not names_a_filter(args) and not any(name in args for name in LONG_NAMES):
        return None
    given = sorted((k, v) for k, values in args.lists() for v in values)
    return None if given == sorted(pairs) else urlencode(pairs)
