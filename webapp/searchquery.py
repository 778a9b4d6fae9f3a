"""Search parameters: the query, a date range and a category, validated like the feed's filters."""
from __future__ import annotations

import dataclasses
import datetime as dt

from werkzeug.datastructures import MultiDict

from recommender.features import text as textfeatures
from recommender.features.index import FeatureIndex
from recommender.learning import ranking

from .feeds import PAGE_SIZE, _date, _int, bad_request


@dataclasses.dataclass
class SearchQuery:
    text: str
    filters: ranking.Filters
    category: str
    date_from: dt.date | None
    date_to: dt.date | None
    limit: int
    offset: int

    @property
    def page(self) -> int:
        return self.offset // self.limit + 1

    @property
    def filtered(self) -> bool:
        return bool(self.category or self.date_from or self.date_to)


def parse_search(args: MultiDict, index: FeatureIndex, api: bool) -> SearchQuery:
    """Validate search parameters: ``q``, a date range ``from``/``to`` (``since``/``until`` too) and a
    category ``c`` (or ``category``), validated like the feed's. Pages use ``page``; the API ``limit``/``offset``."""
    text = args.get("q", "").strip()
    date_from = _date(args, "from") if args.get("from") else _date(args, "since")
    date_to = _date(args, "to") if args.get("to") else _date(args, "until")
    category = (args.get("c") or args.get("category") or "").strip()
    if category and category not in index.category_rows:
        bad_request(f"unknown category {category[:40]!r}")
    if api:
        limit, offset = _int(args, "limit", 20, 1, 200), _int(args, "offset", 0, 0, 10000)
    else:
        limit, offset = PAGE_SIZE, (_int(args, "page", 1, 1, 40) - 1) * PAGE_SIZE
    try:
        filters = ranking.Filters(since=date_from, until=date_to, categories=(category,) if category else ())
    except ValueError as exc:
        bad_request(str(exc).replace("since", "from").replace("until", "to"))
    return SearchQuery(text, filters, category, date_from, date_to, limit, offset)


def latex_message(text: str) -> str:
    """What to tell someone whose query is only LaTeX (the index has no words for it)."""
    words = textfeatures.latex_words(text)
    hint = f" such as {words!r}" if words else " (the name of the method, object or result)"
    return ("Search finds words, and LaTeX is left out of the index, so a query of only math finds nothing. "
            f"Search for the words instead{hint}.")
