"""Fetch new papers from the arXiv API into the paper store.

The ``arxiv`` package builds the query (``arxiv.Search``, the client's URL
format) and parses each Atom entry into an ``arxiv.Result``. The HTTP is done
here because ``arxiv.Client`` sets no timeout, ignores ``Retry-After`` and
parses in lxml's recover mode, which turns a truncated page into a shorter
valid one. Pages are committed one at a time: a failure keeps the pages saved
before it and nothing of the page that failed.

Parsing never fails with anything but a ``ValueError``: :func:`parse_feed` raises
:class:`BrokenPage` or :class:`QueryRejected` for a body it cannot use, and
:func:`papers_from_entries` skips each bad entry with its reason. The XML parser
expands no entities, loads nothing from the network and keeps libxml2's limits
(no ``huge_tree``: depth 256, 10 MB per text node, entity amplification capped).
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import email.utils
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from urllib.parse import urlencode

import arxiv
import requests
from arxiv import _feed as arxiv_feed  # arxiv>=4: the client's own entry parser
from lxml import etree
from urllib3.exceptions import NewConnectionError

from recommender.corpus.ids import parse_arxiv_id
from recommender.corpus.papers import InvalidPaper, Paper, clean_text
from recommender.corpus.store import PaperStore
from recommender.storage.locks import waiting_lock

DEFAULT_CATEGORIES = ("cs.LG", "cs.CL", "cs.CV", "cs.AI", "cs.NE", "stat.ML")
PAGE_SIZE = 100
BACKOFF_BASE_S = 5.0
MAX_WAIT_S = 300.0
API_URL = "https://export.arxiv.org/api/query"  # the default of the arxiv_api_url setting
USER_AGENT = f"paperfeed (arxiv.py/{arxiv.__version__})"

_CATEGORY = re.compile(r"[a-z-]+(?:\.[A-Za-z-]+)?", re.ASCII)
_ATOM = "{http://www.w3.org/2005/Atom}"
_TOTAL = "{http://a9.com/-/spec/opensearch/1.1/}totalResults"
_API_ERROR = "arxiv.org/api/errors"
_COUNT = re.compile(r"[0-9]{1,9}", re.ASCII)
MAX_SHOWN_ID = 120

Progress = Callable[[int, int], None]


class FetchError(RuntimeError):
    """The fetch could not finish; the message says why and what to do.

    ``result`` counts what was committed before the failure."""

    def __init__(self, message: str, result: "FetchResult | None" = None):
        super().__init__(message)
        self.result = result


class BrokenPage(ValueError):
    """A response body that is not a whole Atom feed page; asking again may help."""


class QueryRejected(ValueError):
    """arXiv's error feed: the query itself was refused; the message is arXiv's."""


class Offline(FetchError):
    """No connection could be made at all (no network, no DNS): retrying would only wait, so fail at once."""

    def __init__(self, reason: str):
        super().__init__(f"{reason}. Offline? Import a snapshot instead (`paperfeed import FILE`, or "
                         "`paperfeed demo --from FILE`), or run `paperfeed demo` without --fetch: it uses the "
                         "2,500 recent papers shipped with Paperfeed")


def never_connected(exc: requests.ConnectionError) -> bool:
    """The request never reached a server (name resolution or connect failed), as opposed to a dropped answer."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError) or isinstance(exc.args[0] if exc.args else None, NewConnectionError)


def root_cause(exc: BaseException) -> str:
    reason = getattr(exc.args[0], "reason", exc) if exc.args else exc
    return str(reason).split(": ", 1)[-1][:160]


class Retryable(Exception):
    """A failed attempt worth repeating; ``wait`` is a server-requested delay."""

    def __init__(self, reason: str, wait: float | None = None):
        super().__init__(reason)
        self.wait = wait


@dataclasses.dataclass(frozen=True)
class SkippedEntry:
    entry_id: str
    reason: str

    def to_dict(self) -> dict:
        return {"id": self.entry_id, "reason": self.reason}


@dataclasses.dataclass
class FetchResult:
    """What one fetch did: pages committed, store changes, entries skipped."""

    pages: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[SkippedEntry] = dataclasses.field(default_factory=list)

    @property
    def changed(self) -> int:
        return self.added + self.updated

    not_found: list[str] = dataclasses.field(default_factory=list)  # ids asked for by `fetch_ids` that arXiv lacks

    def to_dict(self) -> dict:
        return {"added": self.added, "updated": self.updated, "unchanged": self.unchanged,
                "pages": self.pages, "skipped": [s.to_dict() for s in self.skipped], "not_found": self.not_found}

    def add(self, other: "FetchResult") -> None:
        self.pages += other.pages
        self.added += other.added
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.skipped += other.skipped


class RateLimiter:
    """At most one request per ``delay`` seconds, measured on a monotonic clock.

    A wall clock could jump (NTP, DST) and shorten the gap arXiv asks for.
    ``clock`` and ``sleep`` are injectable so tests never sleep.
    """

    def __init__(self, delay: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.delay = max(0.0, float(delay))
        self.clock, self.sleep = clock, sleep
        self._next: float | None = None

    def wait(self) -> None:
        """Block until a request is allowed, then count one as made."""
        if self._next is not None:
            remaining = self._next - self.clock()
            if remaining > 0:
                self.sleep(remaining)
        self._next = self.clock() + self.delay

    def defer(self, seconds: float) -> None:
        """Allow no request before ``seconds`` from now (backoff, ``Retry-After``)."""
        now = self.clock()
        self._next = max(now if self._next is None else self._next, now + seconds)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for, capped at ``MAX_WAIT_S``; None if absent or unreadable.

    ``value`` is delta-seconds (``"120"``) or an HTTP date, measured against
    ``now`` (Unix time, default the current time).
    """
    text = (value or "").strip()
    if re.fullmatch(r"[0-9]+", text, re.ASCII):
        seconds = float(text)
    else:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # HTTP dates are always GMT
            when = when.replace(tzinfo=dt.timezone.utc)
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), MAX_WAIT_S)


def category_search(categories: Iterable[str] = DEFAULT_CATEGORIES, max_results: int | None = None) -> arxiv.Search:
    """An ``arxiv.Search`` for the categories, newest submissions first.

    Raises ``ValueError`` for an empty list or a malformed category, which
    would otherwise reach arXiv as a silently different query.
    """
    cats = list(dict.fromkeys(categories))
    if not cats:
        raise ValueError("give at least one arXiv category")
    for cat in cats:
        if not _CATEGORY.fullmatch(cat):
            raise ValueError(f"{cat!r} is not an arXiv category (expected e.g. cs.LG, stat.ML or hep-th)")
    if max_results is not None and max_results < 1:
        raise ValueError("max_results must be a positive integer")
    return arxiv.Search(query=" OR ".join(f"cat:{c}" for c in cats), max_results=max_results,
                        sort_by=arxiv.SortCriterion.SubmittedDate, sort_order=arxiv.SortOrder.Descending)


def page_url(search: arxiv.Search, start: int, page_size: int, api_url: str = API_URL) -> str:
    """The API URL for one page, encoded exactly as ``arxiv.Client`` does (at ``api_url``)."""
    args = search._url_args()
    args.update(start=str(start), max_results=str(page_size))
    return f"{api_url}?{urlencode(args)}"


def paper_from_result(result: arxiv.Result) -> Paper:
    """Convert an ``arxiv.Result``; raises ``ValueError`` saying what is wrong."""
    pid, version = parse_arxiv_id(result.get_short_id())
    title = clean_text(result.title)
    if not title:
        raise InvalidPaper(f"{pid}: empty title")
    return Paper(
        id=pid, version=version or 1, title=title, abstract=clean_text(result.summary),
        authors=tuple(name for name in (clean_text(a.name) for a in result.authors) if name),
        categories=tuple(dict.fromkeys(c for c in (result.primary_category, *result.categories) if c)),
        comments=clean_text(result.comment) or None, journal_ref=clean_text(result.journal_ref) or None,
        doi=clean_text(result.doi) or None,
        published=result.published.date().isoformat(), updated=result.updated.date().isoformat(),
    )


def paper_from_entry(entry: etree._Element) -> Paper:
    """Convert one Atom ``<entry>`` element; raises ``ValueError`` saying what is wrong."""
    for tag in ("id", "updated", "published"):
        if not (entry.findtext(_ATOM + tag) or "").strip():
            raise InvalidPaper(f"entry has no <{tag}>")
    try:
        result = arxiv_feed._build_result(entry)
    except (ValueError, OverflowError) as exc:  # OverflowError: a year-9999 time moved to UTC
        raise InvalidPaper(f"unreadable date in entry: {str(exc)[:120]}") from None
    if result is None:
        raise InvalidPaper("entry lacks a required field")
    return paper_from_result(result)


def papers_from_entries(entries: Iterable[etree._Element]) -> tuple[list[Paper], list[SkippedEntry]]:
    """Convert ``<entry>`` elements; one that is not a valid paper is skipped with its id and reason."""
    papers, skipped = [], []
    for entry in entries:
        try:
            papers.append(paper_from_entry(entry))
        except ValueError as exc:
            skipped.append(SkippedEntry((entry.findtext(_ATOM + "id") or "").strip()[:MAX_SHOWN_ID], str(exc)))
    return papers, skipped


def parse_feed(body: bytes) -> tuple[int, list[etree._Element]]:
    """(totalResults, ``<entry>`` elements) of one API response body.

    Raises :class:`BrokenPage` for a body that is not a well-formed Atom feed with a
    result count, :class:`QueryRejected` for arXiv's error feed; both are ``ValueError``.
    """
    try:
        root = parse_xml_strict(body)
    except etree.LxmlError as exc:
        raise BrokenPage(f"body is not well-formed XML, probably truncated ({exc})") from None
    if root.tag != _ATOM + "feed":
        raise BrokenPage(f"got a <{etree.QName(root).localname}> document instead of an Atom feed")
    message = _api_error(root)
    if message:
        raise QueryRejected(message)
    total = (root.findtext(_TOTAL) or "").strip()
    if not _COUNT.fullmatch(total):
        raise BrokenPage("feed has no opensearch:totalResults")
    return int(total), root.findall(_ATOM + "entry")


def _api_error(root: etree._Element) -> str | None:
    """The message of arXiv's error feed (one entry whose id is an errors URL), if it is one."""
    for entry in root.iter(_ATOM + "entry"):
        if _API_ERROR in (entry.findtext(_ATOM + "id") or ""):
            return clean_text(entry.findtext(_ATOM + "summary")) or "unspecified error"
    return None


def parse_xml_strict(body: bytes) -> etree._Element:
    # Strict, unlike arxiv's recover-mode parser: a cut body must fail, not shrink.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    return etree.fromstring(body, parser)


def polite_get(session: requests.Session, url: str, timeout: float, service: str) -> requests.Response:
    """One GET with our User-Agent and a timeout. Raises :class:`Retryable` for a timeout, a dropped
    connection, 429 or 5xx (with the server's ``Retry-After``), and :class:`Offline` when no connection could
    be made at all (``service`` names what could not be reached). Other answers are returned as they are.
    The API client and the OAI-PMH harvester (:mod:`recommender.harvest.oaipmh`) both send through it."""
    try:
        resp = session.get(url, timeout=timeout, headers={"User-Agent": USER_AGENT})
    except requests.Timeout:  # connect timeouts too: a server that drops a SYN may answer the next one
        raise Retryable(f"no answer within {timeout:g} s") from None
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
        if never_connected(exc):
            raise Offline(f"cannot reach {service} ({root_cause(exc)})") from None
        raise Retryable(f"connection failed: {type(exc).__name__}") from None
    if resp.status_code == 429 or resp.status_code >= 500:
        raise Retryable(f"HTTP {resp.status_code}", retry_after_seconds(resp.headers.get("Retry-After")))
    return resp


def _get(session: requests.Session, url: str, timeout: float) -> requests.Response:
    resp = polite_get(session, url, timeout, "the arXiv API")
    if resp.status_code != 200:
        try:
            detail = _api_error(parse_xml_strict(resp.content))
        except etree.LxmlError:
            detail = None
        raise FetchError(f"arXiv API refused the request with HTTP {resp.status_code}"
                         f"{': ' + detail if detail else ''}; check the categories and options ({url})")
    return resp


def _entries(resp: requests.Response, start: int, page_size: int) -> tuple[int, list]:
    """(totalResults, entry elements) of a page that passed every check, else ``Retryable``."""
    ctype = resp.headers.get("Content-Type", "")
    if "html" in ctype.lower():
        raise Retryable(f"got an HTML page ({ctype}) instead of an Atom feed")
    try:
        total, entries = parse_feed(resp.content)
    except QueryRejected as exc:
        raise FetchError(f"arXiv API rejected the query: {exc}") from None
    except BrokenPage as exc:
        raise Retryable(str(exc)) from None
    expected = max(0, min(page_size, total - start))
    if len(entries) < expected:
        raise Retryable(f"short page: {len(entries)} entries where {expected} were expected")
    return total, entries


class ArxivFetcher:
    """Pages through an arXiv search politely and commits each page to a store.

    Parameters
    ----------
    session : the ``requests.Session`` to use (tests mount a fake adapter on it).
    delay : minimum seconds between two requests.
    timeout : seconds for each HTTP request.
    retries : extra attempts for a failed request or broken page.
    page_size : entries asked for per request.
    api_url : the API endpoint (the ``arxiv_api_url`` setting).
    sleep, clock : injectable for tests.
    """

    def __init__(self, session: requests.Session, *, delay: float = 3.0, timeout: float = 30.0,
                 retries: int = 4, page_size: int = PAGE_SIZE, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, api_url: str = API_URL):
        self.session, self.timeout, self.page_size, self.api_url = session, timeout, page_size, api_url
        self.retries = max(0, int(retries))
        self.limiter = RateLimiter(delay, clock=clock, sleep=sleep)

    def fetch_page(self, url: str, start: int) -> tuple[int, list]:
        """(totalResults, entries) of one page, retried with exponential backoff.

        Raises :class:`FetchError` when every attempt failed or arXiv refused the query.
        """
        for attempt in range(self.retries + 1):
            self.limiter.wait()
            try:
                return _entries(_get(self.session, url, self.timeout), start, self.page_size)
            except Retryable as exc:
                reason = str(exc)
                self.limiter.defer(min(max(BACKOFF_BASE_S * 2 ** attempt, exc.wait or 0.0), MAX_WAIT_S))
        raise FetchError(f"arXiv API failed {self.retries + 1} times ({reason}) for {url}; "
                         "nothing from that page was saved; try again later")

    def fetch(self, store: PaperStore, search: arxiv.Search, since: dt.date | None = None,
              progress: Progress | None = None) -> FetchResult:
        """Fetch ``search`` page by page into ``store``.

        Stops after ``search.max_results`` entries, at the last result, or (the
        search being sorted newest first) after the first page that reaches a
        paper submitted before ``since``. Only papers submitted or updated on or
        after ``since`` are kept. ``progress(done, total)`` runs after each page.
        Raises :class:`FetchError` with ``.result`` set to what was committed.
        """
        result, start, limit = FetchResult(), 0, search.max_results
        try:
            while limit is None or start < limit:
                total, entries = self.fetch_page(page_url(search, start, self.page_size, self.api_url), start)
                entries = entries if limit is None else entries[:limit - start]
                reached_since = self._commit(store, entries, since, result)
                result.pages += 1
                start += len(entries)
                if progress is not None:
                    progress(start, total if limit is None else min(total, limit))
                if reached_since or not entries or start >= total:
                    break
        except FetchError as exc:
            exc.result = result
            raise
        return result

    @staticmethod
    def _commit(store: PaperStore, entries: list, since: dt.date | None, result: FetchResult) -> bool:
        """Convert and upsert one page; True if it holds a paper submitted before ``since``."""
        cutoff = since.isoformat() if since else ""
        papers, skipped = papers_from_entries(entries)
        result.skipped += skipped
        reached = any(paper.published < cutoff for paper in papers)
        papers = [paper for paper in papers if max(paper.published, paper.updated) >= cutoff]
        known = store.get_many(p.id for p in papers)
        # The API has no license field: keep the one a snapshot import stored.
        papers = [dataclasses.replace(p, license=known[p.id].license) if p.id in known else p for p in papers]
        counts = store.upsert_many(papers)
        result.added += counts.added
        result.updated += counts.updated
        result.unchanged += counts.unchanged
        return reached


def fetch_new(store: PaperStore, settings, categories: Iterable[str] = DEFAULT_CATEGORIES,
              since: dt.date | None = None, max_results: int | None = None, *,
              session: requests.Session | None = None, sleep: Callable[[float], None] = time.sleep,
              progress: Progress | None = None) -> FetchResult:
    """Fetch papers in ``categories`` submitted or updated since ``since`` into ``store``.

    Delay, timeout and retries come from ``settings`` (``fetch_delay``,
    ``fetch_timeout``, ``fetch_retries``). A session is created (and closed)
    unless one is given. Raises :class:`FetchError` or ``ValueError`` (bad category).
    """
    search = category_search(categories, max_results)
    own = session is None
    session = requests.Session() if own else session
    try:
        fetcher = ArxivFetcher(session, delay=settings.fetch_delay, timeout=settings.fetch_timeout,
                               retries=settings.fetch_retries, sleep=sleep,
                               api_url=getattr(settings, "arxiv_api_url", API_URL))
        return fetcher.fetch(store, search, since=since, progress=progress)
    finally:
        if own:
            session.close()


ID_BATCH = 100  # ids per `id_list` request (one page each)


def fetch_ids(store: PaperStore, settings, ids: Iterable[str], *, session: requests.Session | None = None,
              sleep: Callable[[float], None] = time.sleep, progress: Progress | None = None) -> FetchResult:
    """Fetch papers by arXiv id (the API's ``id_list``), ``ID_BATCH`` per request, under the same rate limit,
    timeouts, retries and page checks as :func:`fetch_new`. Ids may carry versions; the newest version is
    fetched. Ids arXiv does not know are listed in ``not_found``, not an error. Raises :class:`FetchError`
    with ``.result`` set to what earlier batches committed, or ``ValueError`` for a malformed id."""
    wanted = list(dict.fromkeys(parse_arxiv_id(raw)[0] for raw in ids))
    own = session is None
    session = requests.Session() if own else session
    total = FetchResult()
    try:
        fetcher = ArxivFetcher(session, delay=settings.fetch_delay, timeout=settings.fetch_timeout,
                               retries=settings.fetch_retries, sleep=sleep,
                               api_url=getattr(settings, "arxiv_api_url", API_URL))
        for start in range(0, len(wanted), ID_BATCH):
            batch = wanted[start:start + ID_BATCH]
            try:
                total.add(fetcher.fetch(store, arxiv.Search(id_list=batch)))
            except FetchError as exc:
                if exc.result is not None:
                    total.add(exc.result)
                exc.result = total
                raise
            if progress is not None:
                progress(min(start + ID_BATCH, len(wanted)), len(wanted))
    finally:
        if own:
            session.close()
    total.not_found = [pid for pid in wanted if pid not in store]
    return total


@contextlib.contextmanager
def shared_pacing(path: Path, delay: float, timeout: float = 60.0) -> Iterator[None]:
    """Space arXiv requests made by several processes (web workers) at least ``delay`` seconds apart: one
    holder at a time (``flock``), and the lock file's mtime remembers when the last one finished."""
    with waiting_lock(path, timeout, "the arXiv API (another web fetch or import is using it)"):
        try:
            wait = delay - (time.time() - path.stat().st_mtime)
        except OSError:
            wait = 0.0
        if wait > 0:
            time.sleep(min(wait, delay))
        try:
            yield
        finally:
            os.utime(path)

