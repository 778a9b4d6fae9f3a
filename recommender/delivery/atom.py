"""A user's private Atom feed: which papers (the feed's ranking) and the document (made by ``feedgen``).

The papers are the user's recommendations of the past week, for the whole library or one tag, with the
tagged and "not interested" papers left out: the saved ranking or one sparse mat-vec, never a retrain.
A user without a usable model gets the newest papers, and the subtitle says so.

The document is deterministic for the same data (no "now" in it), so an ETag over its bytes lets feed
readers poll with conditional GETs. Entry ids are arXiv abs URLs: the same for a paper in every feed,
on every fetch, whoever's token fetched it; a new version updates the entry instead of adding one.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Iterable

from feedgen.feed import FeedGenerator

from recommender.corpus.papers import Paper
from recommender.features.index import FeatureIndex, from_day
from recommender.learning import ranking, service
from recommender.learning.models import UserModel

FEED_SIZE = 50
FEED_DAYS = 7
NO_AUTHORS = "(no authors listed)"  # a few arXiv records have none
ARXIV_ABS = "https://arxiv.org/abs/"
ARXIV_PDF = "https://arxiv.org/pdf/"
# Characters XML 1.0 cannot carry at all (lxml refuses them); the store keeps them out, this is a last guard.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


@dataclasses.dataclass(frozen=True)
class FeedPapers:
    ids: list[str]
    scored: bool  # a model ranked them; False: the newest papers (no model yet)
    since: str | None  # the first day of the window (YYYY-MM-DD), None for an empty index
    newest: str | None  # the newest paper date in the index


def feed_papers(index: FeatureIndex, model: UserModel | None, tags: dict[str, list[str]], hidden: Iterable[str],
                tag: str | None = None, n: int = FEED_SIZE, days: int = FEED_DAYS) -> FeedPapers:
    """The top ``n`` recommendations of the ``days`` up to the newest paper in the index, for one tag or
    (``tag`` None) the whole library; tagged and ``hidden`` papers left out. Without a model that covers
    the request, the newest papers of that window."""
    if not len(index):
        return FeedPapers([], False, None, None)
    newest = int(index.dates[-1])
    since = dt.date.fromisoformat(from_day(newest - days + 1))
    library = {p for ids in tags.values() for p in ids}
    hidden = frozenset(hidden)
    filters = ranking.Filters(since=since, exclude=frozenset(library))
    try:
        ids, _ = service.recommend(index, model, library, [tag] if tag else None, filters, n,
                                   not_interested=hidden)
        scored = True
    except (service.NoModel, KeyError, ValueError):  # no model yet, or none for this tag yet
        ids, _ = ranking.recent(index, ranking.Filters(since=since, exclude=frozenset(library | hidden)), n)
        scored = False
    return FeedPapers(list(ids), scored, since.isoformat(), from_day(newest))


@dataclasses.dataclass(frozen=True)
class FeedInfo:
    """The feed-level fields. ``fallback_updated`` is the feed's date when it has no entries."""

    feed_id: str
    title: str
    subtitle: str
    self_url: str
    site_url: str
    fallback_updated: dt.datetime


def _clean(text: str) -> str:
    return _NOT_XML.sub("", text or "")


def _day(date: str) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(date), dt.time(), dt.timezone.utc)


class _RelatedLinks:
    """feedgen 1.0 drops the ``rel`` of entry links, and two links without one are two "alternate" links
    of the same type, which RFC 4287 (4.1.1) forbids. This extension writes the arXiv links itself."""

    def __init__(self):
        self.links: list[tuple[str, str, str]] = []

    def extend_ns(self):
        return {}

    def extend_atom(self, entry):
        from lxml import etree
        for href, kind, title in self.links:
            etree.SubElement(entry, "link", href=href, rel="related", type=kind, title=title)
        return entry

    def extend_rss(self, item):  # pragma: no cover - the feed is Atom only
        return item


class _NoFeedExtension:
    def extend_ns(self):
        return {}

    def extend_atom(self, feed):
        return feed

    def extend_rss(self, feed):  # pragma: no cover - the feed is Atom only
        return feed


def atom_document(info: FeedInfo, papers: list[Paper], paper_url: Callable[[str], str]) -> tuple[bytes, dt.datetime]:
    """The Atom XML of ``papers`` in order, and the feed's ``updated`` time (the newest entry's date).

    Every text is plain text (``type="text"``) escaped by lxml, so a title with ``<script>`` or ``&`` stays text.
    """
    fg = FeedGenerator()
    fg.register_extension("paperfeed", _NoFeedExtension, _RelatedLinks, atom=True, rss=False)
    fg.id(info.feed_id)
    fg.title(_clean(info.title))
    fg.author({"name": "Paperfeed"})
    fg.subtitle(_clean(info.subtitle))
    fg.link(href=info.self_url, rel="self", type="application/atom+xml")
    fg.link(href=info.site_url, rel="alternate", type="text/html")
    updated = max((_day(p.updated or p.published) for p in papers), default=info.fallback_updated)
    fg.updated(updated)
    for p in papers:
        entry = fg.add_entry(order="append")
        entry.id(ARXIV_ABS + p.id)
        entry.title(_clean(p.title))
        entry.updated(_day(p.updated or p.published))
        entry.published(_day(p.published))
        names = [_clean(name) for name in p.authors if _clean(name).strip()]
        for name in names or [NO_AUTHORS]:  # RFC 4287 4.1.2: every entry has an author
            entry.author({"name": name})
        entry.link(href=paper_url(p.id), rel="alternate", type="text/html")
        entry.paperfeed.links = [(ARXIV_ABS + p.id, "text/html", "arXiv abstract"),
                                 (ARXIV_PDF + p.id, "application/pdf", "PDF")]
        entry.summary(_clean(p.abstract) or _clean(p.title), type="text")
        for category in p.categories:
            entry.category(term=category)
    return fg.atom_str(pretty=True, encoding="UTF-8"), updated
