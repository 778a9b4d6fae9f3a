"""Harvest arXiv's OAI-PMH interface (``ListRecords``) into the paper store: all of arXiv, or whole sets.

A small client on ``requests`` and lxml, with the same manners as the API client
(:mod:`recommender.harvest.arxiv_api`, whose helpers it shares): one request per
``fetch_delay`` seconds, a timeout on every request, bounded retries with backoff,
and a ``503``'s ``Retry-After`` obeyed (capped at ``arxiv_api.MAX_WAIT_S``). Bodies
are parsed strictly (no entities, no network): a truncated, HTML or otherwise broken
page is retried and, if it stays broken, commits nothing.

Metadata formats: ``arXiv`` (parsed authors, created/updated dates, no version
numbers: a paper with an ``updated`` date is taken to be at least v2, and a stored
higher version is kept) and ``arXivRaw`` (every version with its date; authors as
one string, split like the Kaggle snapshot's). Both go through :class:`Paper`'s
checks; ``arXivRaw`` through :func:`paper_from_kaggle` itself, the import's parser.
A record that is not a valid paper is skipped and reported with its identifier
and reason; it never sinks the page.

Deleted records (``<header status="deleted">``) are never imported. They are
counted and listed; a paper already in the store is **kept** (readers may have
tagged it) and listed as such, so an operator can see it.

State (:class:`HarvestState`, ``<data dir>/harvest_state.json``, written atomically)
holds per set the date the next harvest starts from (the ``responseDate`` of the
first page of the last complete harvest; OAI-PMH ``from`` is inclusive, so nothing
changed during a harvest is missed) and, while a harvest runs, its resumption
token. Each page's papers are committed before the token that follows them, so a
kill at any point re-fetches at most one page (upserts are idempotent). A token
the server refuses (``badResumptionToken``, e.g. expired) restarts that set from
the harvest's ``from`` date, once per run.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import urlencode

import requests
from lxml import etree

from recommender.corpus.ids import parse_arxiv_id
from recommender.corpus.papers import InvalidPaper, Paper, clean_text, paper_from_kaggle
from recommender.corpus.store import PaperStore
from recommender.harvest.arxiv_api import (BACKOFF_BASE_S, MAX_SHOWN_ID, MAX_WAIT_S, BrokenPage, FetchError,
                                           RateLimiter, Retryable, SkippedEntry, parse_xml_strict, polite_get)

OAI_URL = "https://oaipmh.arxiv.org/oai"  # the default of the oai_base_url setting
FORMATS = ("arXiv", "arXivRaw")
ALL = ""  # the state key of a harvest with no set: all of arXiv
STATE_FILE = "harvest_state.json"
MAX_REPORTED = 1000  # skipped and deleted records listed per set (all are counted)

_OAI = "{http://www.openarchives.org/OAI/2.0/}"
_META = {"arXiv": "{http://arxiv.org/OAI/arXiv/}", "arXivRaw": "{http://arxiv.org/OAI/arXivRaw/}"}
_SET = re.compile(r"[a-z][a-z-]*(?::[A-Za-z][A-Za-z.-]*){0,2}", re.ASCII)
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_OAI_PREFIX = re.compile(r"oai:arxiv\.org:", re.IGNORECASE)

Progress = Callable[[str, int, int | None], None]


class TokenRefused(ValueError):
    """The server answered ``badResumptionToken``: the token expired or was never valid."""


class OaiError(ValueError):
    """An OAI-PMH ``<error>`` other than ``noRecordsMatch``: the request itself was refused."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code


def check_set(spec: str) -> str:
    """``spec`` if it looks like an arXiv OAI set (``cs``, ``math``, ``physics:hep-th``), else ``ValueError``."""
    if not isinstance(spec, str) or not _SET.fullmatch(spec):
        raise ValueError(f"{spec!r} is not an arXiv OAI-PMH set (expected e.g. cs, math, stat or physics:hep-th)")
    return spec


def set_label(spec: str) -> str:
    return spec or "(all of arXiv)"


# --- pages ------------------------------------------------------------------------------------
@dataclasses.dataclass
class Page:
    """One parsed ``ListRecords`` response."""

    response_date: str  # YYYY-MM-DD (UTC) of the server's responseDate
    records: list  # <record> elements
    token: str | None = None  # None: this was the last page
    complete_size: int | None = None
    cursor: int | None = None


def _day_of(stamp: str) -> str:
    """``2026-07-02T10:11:12Z`` or ``2026-07-02`` -> ``2026-07-02``; ``ValueError`` otherwise."""
    text = (stamp or "").strip()
    try:
        if _DAY.fullmatch(text):
            return dt.date.fromisoformat(text).isoformat()
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BrokenPage(f"unreadable responseDate {text[:40]!r}") from None
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc)
    return when.date().isoformat()


def _int_attr(element, name: str) -> int | None:
    value = (element.get(name) or "").strip()
    return int(value) if re.fullmatch(r"[0-9]{1,12}", value, re.ASCII) else None


def parse_page(body: bytes) -> Page:
    """Parse one ``ListRecords`` body.

    ``noRecordsMatch`` is an empty last page. Raises :class:`BrokenPage` (not a whole OAI-PMH
    document), :class:`TokenRefused` or :class:`OaiError`; all are ``ValueError``.
    """
    try:
        root = parse_xml_strict(body)
    except etree.LxmlError as exc:
        raise BrokenPage(f"body is not well-formed XML, probably truncated ({exc})") from None
    if root.tag != _OAI + "OAI-PMH":
        raise BrokenPage(f"got a <{etree.QName(root).localname}> document instead of an OAI-PMH response")
    response_date = _day_of(root.findtext(_OAI + "responseDate") or "")
    errors = root.findall(_OAI + "error")
    if errors:
        code = (errors[0].get("code") or "").strip()
        message = clean_text(errors[0].text)[:300]
        if code == "noRecordsMatch":
            return Page(response_date, [])
        if code == "badResumptionToken":
            raise TokenRefused(message or "the resumption token was refused")
        raise OaiError(code or "unknown", message)
    listing = root.find(_OAI + "ListRecords")
    if listing is None:
        raise BrokenPage("response has neither <ListRecords> nor <error>")
    page = Page(response_date, listing.findall(_OAI + "record"))
    token = listing.find(_OAI + "resumptionToken")
    if token is not None:
        page.token = (token.text or "").strip() or None
        page.complete_size = _int_attr(token, "completeListSize")
        page.cursor = _int_attr(token, "cursor")
    return page


# --- records ----------------------------------------------------------------------------------
@dataclasses.dataclass
class Deleted:
    """A record the server marks deleted: its id (or raw identifier) and datestamp."""

    paper_id: str
    datestamp: str


def _text(element, ns: str, tag: str) -> str:
    return clean_text(element.findtext(ns + tag))


def _identifier_id(header) -> str:
    """The arXiv id in ``oai:arXiv.org:2503.01234``; ``ValueError`` if there is none."""
    identifier = (header.findtext(_OAI + "identifier") or "").strip()
    return parse_arxiv_id(_OAI_PREFIX.sub("", identifier, count=1))[0]


def paper_from_arxiv(meta) -> Paper:
    """An ``arXiv``-format ``<arXiv>`` element -> :class:`Paper`; ``ValueError`` saying what is wrong."""
    ns = _META["arXiv"]
    raw_id = meta.findtext(ns + "id")
    if not raw_id:
        raise InvalidPaper("record has no <id>")
    pid, version = parse_arxiv_id(raw_id.strip())
    title = _text(meta, ns, "title")
    if not title:
        raise InvalidPaper(f"{pid}: empty title")
    created = _text(meta, ns, "created")
    updated = _text(meta, ns, "updated")
    if not created:
        raise InvalidPaper(f"{pid}: no <created> date")
    authors = []
    for author in meta.iterfind(f"{ns}authors/{ns}author"):
        parts = [_text(author, ns, tag) for tag in ("forenames", "keyname", "suffix")]
        name = " ".join(part for part in parts if part)
        if name:
            authors.append(name)
    return Paper(
        id=pid, version=version or (2 if updated and updated != created else 1), title=title,
        abstract=_text(meta, ns, "abstract"), authors=tuple(authors),
        categories=tuple(dict.fromkeys(_text(meta, ns, "categories").split())),
        comments=_text(meta, ns, "comments") or None, journal_ref=_text(meta, ns, "journal-ref") or None,
        doi=_text(meta, ns, "doi") or None, published=created, updated=updated or created,
        license=_text(meta, ns, "license") or None,
    )


def paper_from_arxivraw(meta) -> Paper:
    """An ``arXivRaw`` element -> :class:`Paper`, through the snapshot import's own parser."""
    ns = _META["arXivRaw"]
    record = {key: meta.findtext(ns + key) for key in ("id", "submitter", "title", "authors", "categories",
                                                       "comments", "journal-ref", "doi", "report-no", "license",
                                                       "abstract")}
    if record["title"] is None:
        raise InvalidPaper("record has no <title>")
    if record["abstract"] is None:
        record["abstract"] = ""
    record["versions"] = [{"version": v.get("version"), "created": (v.findtext(ns + "date") or "").strip()}
                          for v in meta.iterfind(ns + "version")]
    if not record["versions"]:
        raise InvalidPaper("record has no <version>")
    return paper_from_kaggle(record)


_PARSERS = {"arXiv": paper_from_arxiv, "arXivRaw": paper_from_arxivraw}


def read_records(records: Iterable, fmt: str) -> tuple[list[Paper], list[Deleted], list[SkippedEntry]]:
    """Split ``<record>`` elements into papers, deleted records and skipped ones (identifier and reason)."""
    papers, deleted, skipped = [], [], []
    parse = _PARSERS[fmt]
    for record in records:
        header = record.find(_OAI + "header")
        identifier = (header.findtext(_OAI + "identifier") or "").strip() if header is not None else ""
        shown = identifier[:MAX_SHOWN_ID]
        try:
            if header is None:
                raise InvalidPaper("record has no <header>")
            if header.get("status") == "deleted":
                try:
                    pid = _identifier_id(header)
                except ValueError:
                    pid = shown
                deleted.append(Deleted(pid, (header.findtext(_OAI + "datestamp") or "").strip()[:10]))
                continue
            meta = record.find(f"{_OAI}metadata/{_META[fmt]}{fmt}")
            if meta is None:
                raise InvalidPaper(f"record has no <{fmt}> metadata")
            papers.append(parse(meta))
        except ValueError as exc:
            skipped.append(SkippedEntry(shown, str(exc)[:300]))
    return papers, deleted, skipped


# --- state ------------------------------------------------------------------------------------
class HarvestState:
    """Per set: ``datestamp`` (where the next harvest starts) and ``resume`` (an unfinished harvest:
    ``token``, ``format``, ``from``, ``until``, ``started``, ``pages``, ``done``).

    One JSON file, rewritten atomically (a temporary file, fsync, rename) after every page."""

    VERSION = 1

    def __init__(self, path: Path):
        self.path = Path(path)
        self.sets: dict[str, dict] = {}
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        try:
            data = json.loads(raw.decode("utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("sets"), dict):
                raise ValueError("no 'sets' object")
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"harvest state {self.path} is unreadable ({str(exc)[:80]}): delete it and harvest "
                             "again with --from (records already stored are kept)") from None
        self.sets = {key: value for key, value in data["sets"].items() if isinstance(value, dict)}

    def get(self, spec: str) -> dict:
        return self.sets.setdefault(spec, {})

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"version": self.VERSION, "sets": self.sets}, indent=1, sort_keys=True)
        fd, tmp = tempfile.mkstemp(prefix=".harvest_state.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# --- results ----------------------------------------------------------------------------------
@dataclasses.dataclass
class SetResult:
    """What harvesting one set did."""

    set: str
    format: str
    from_date: str | None
    until: str | None
    pages: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    deleted_kept: int = 0  # deleted upstream but in the store: kept
    deleted_ids: list[str] = dataclasses.field(default_factory=list)
    deleted_kept_ids: list[str] = dataclasses.field(default_factory=list)
    skipped: int = 0
    skipped_records: list[SkippedEntry] = dataclasses.field(default_factory=list)
    resumed: bool = False
    notes: list[str] = dataclasses.field(default_factory=list)
    next_from: str | None = None  # the stored datestamp after a complete harvest
    complete: bool = False

    @property
    def changed(self) -> int:
        return self.added + self.updated

    def to_dict(self) -> dict:
        return {"set": self.set, "format": self.format, "from": self.from_date, "until": self.until,
                "pages": self.pages, "added": self.added, "updated": self.updated, "unchanged": self.unchanged,
                "deleted": self.deleted, "deleted_ids": self.deleted_ids, "deleted_kept": self.deleted_kept,
                "deleted_kept_ids": self.deleted_kept_ids, "skipped": self.skipped,
                "skipped_records": [s.to_dict() for s in self.skipped_records], "resumed": self.resumed,
                "notes": self.notes, "next_from": self.next_from, "complete": self.complete}


@dataclasses.dataclass
class HarvestResult:
    sets: list[SetResult] = dataclasses.field(default_factory=list)

    @property
    def changed(self) -> int:
        return sum(s.changed for s in self.sets)

    def to_dict(self) -> dict:
        totals = {key: sum(getattr(s, key) for s in self.sets)
                  for key in ("pages", "added", "updated", "unchanged", "deleted", "deleted_kept", "skipped")}
        return {**totals, "sets": [s.to_dict() for s in self.sets]}


class HarvestError(FetchError):
    """A harvest that could not finish; ``result`` holds what was committed (tokens are stored: rerun to resume)."""


# --- the harvester ----------------------------------------------------------------------------
class Harvester:
    """Pages through ``ListRecords`` politely, committing each page, then its resumption token."""

    def __init__(self, session: requests.Session, *, base_url: str = OAI_URL, delay: float = 3.0,
                 timeout: float = 30.0, retries: int = 4, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self.session, self.base_url, self.timeout = session, base_url, timeout
        self.retries = max(0, int(retries))
        self.limiter = RateLimiter(delay, clock=clock, sleep=sleep)

    def url(self, params: dict) -> str:
        return f"{self.base_url}?{urlencode(params)}"

    def _get(self, url: str) -> requests.Response:
        resp = polite_get(self.session, url, self.timeout, f"the OAI-PMH service at {self.base_url}")
        if resp.status_code != 200:
            raise HarvestError(f"the OAI-PMH service refused the request with HTTP {resp.status_code} ({url}); "
                               "check the oai_base_url setting")
        return resp

    def fetch_page(self, params: dict) -> Page:
        """One parsed page, retried: timeouts, 429/5xx (waiting ``Retry-After`` when given, capped at
        ``MAX_WAIT_S``), HTML and broken bodies. Raises :class:`HarvestError` when every attempt failed
        or the server refused the request, :class:`TokenRefused` for an expired token."""
        url = self.url(params)
        reason = ""
        for attempt in range(self.retries + 1):
            self.limiter.wait()
            try:
                resp = self._get(url)
                ctype = resp.headers.get("Content-Type", "")
                if "html" in ctype.lower():
                    raise Retryable(f"got an HTML page ({ctype}) instead of OAI-PMH XML")
                try:
                    return parse_page(resp.content)
                except BrokenPage as exc:
                    raise Retryable(str(exc)) from None
                except OaiError as exc:
                    raise HarvestError(f"the OAI-PMH service refused the request: {exc} ({url})") from None
            except Retryable as exc:
                reason = str(exc)
                self.limiter.defer(min(max(BACKOFF_BASE_S * 2 ** attempt, exc.wait or 0.0), MAX_WAIT_S))
        raise HarvestError(f"the OAI-PMH service failed {self.retries + 1} times ({reason}) for {url}; "
                           "nothing from that page was saved; run again to resume")

    def harvest_set(self, store: PaperStore, state: HarvestState, spec: str, *, fmt: str = "arXiv",
                    from_date: str | None = None, until: str | None = None,
                    progress: Progress | None = None) -> SetResult:
        """Harvest one set (``ALL`` for every record) into ``store``.

        ``from_date`` overrides the stored datestamp. An unfinished harvest of the set with the same
        format, ``from`` and ``until`` is resumed from its stored token; a different one is dropped.
        Raises :class:`HarvestError` with ``.result`` set to this set's :class:`SetResult`.
        """
        if fmt not in FORMATS:
            raise ValueError(f"metadata format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        entry = state.get(spec)
        start = from_date or entry.get("datestamp")
        resume = entry.get("resume")
        result = SetResult(spec, fmt, start, until)
        token = None
        if resume:
            same = (resume.get("format"), resume.get("until")) == (fmt, until) and \
                (from_date is None or resume.get("from") == from_date)
            if same and resume.get("token"):
                token, start = resume["token"], resume.get("from")
                result.from_date, result.resumed = start, True
                result.notes.append(f"resumed an unfinished harvest from {start or 'the beginning'} after "
                                    f"{resume.get('pages', 0)} page(s)")
            else:
                result.notes.append("dropped an unfinished harvest with other options")
                resume = None
        if not resume:
            resume = {"format": fmt, "from": start, "until": until, "started": None, "pages": 0, "done": 0}
        restarted = False
        try:
            while True:
                params = {"verb": "ListRecords", "resumptionToken": token} if token else \
                    {"verb": "ListRecords", "metadataPrefix": fmt,
                     **({"set": spec} if spec else {}), **({"from": start} if start else {}),
                     **({"until": until} if until else {})}
                try:
                    page = self.fetch_page(params)
                except TokenRefused as exc:
                    if restarted or not token:
                        raise HarvestError(f"the OAI-PMH service refused a resumption token again ({exc})") \
                            from None
                    restarted, token = True, None
                    result.notes.append(f"the server refused the resumption token ({exc}): restarted from "
                                        f"{start or 'the beginning'}")
                    continue
                resume["started"] = min(filter(None, (resume.get("started"), page.response_date)))
                self._commit(store, page, fmt, result)
                result.pages += 1
                resume["pages"] = resume.get("pages", 0) + 1
                resume["done"] = resume.get("done", 0) + len(page.records)
                if progress is not None:
                    progress(spec, resume["done"], page.complete_size)
                if page.token is None:
                    break
                if page.token == token:
                    raise HarvestError(f"the OAI-PMH service returned the same resumption token twice ({token[:80]}): "
                                       "stopped so as not to loop; run again later")
                token = resume["token"] = page.token
                entry["resume"] = resume
                state.save()  # after the page's papers: a kill re-fetches at most this one page
        except HarvestError as exc:
            exc.result = result
            raise
        except FetchError as exc:  # Offline
            raise HarvestError(str(exc), result) from None
        entry.pop("resume", None)
        if until is None:
            entry["datestamp"] = result.next_from = resume["started"]
        result.complete = True
        state.save()
        return result

    @staticmethod
    def _commit(store: PaperStore, page: Page, fmt: str, result: SetResult) -> None:
        papers, deleted, skipped = read_records(page.records, fmt)
        result.skipped += len(skipped)
        result.skipped_records += skipped[:max(0, MAX_REPORTED - len(result.skipped_records))]
        known = store.get_many([p.id for p in papers] + [d.paper_id for d in deleted])  # malformed ids are left out
        result.deleted += len(deleted)
        for gone in deleted:
            if len(result.deleted_ids) < MAX_REPORTED:
                result.deleted_ids.append(gone.paper_id)
            if gone.paper_id in known:
                result.deleted_kept += 1
                if len(result.deleted_kept_ids) < MAX_REPORTED:
                    result.deleted_kept_ids.append(gone.paper_id)
        # The arXiv format has no version numbers: never let it lower a version the store knows.
        papers = [dataclasses.replace(p, version=known[p.id].version)
                  if p.id in known and known[p.id].version > p.version else p for p in papers]
        counts = store.upsert_many(papers)
        result.added += counts.added
        result.updated += counts.updated
        result.unchanged += counts.unchanged


def harvest(store: PaperStore, settings, sets: Iterable[str], *, fmt: str = "arXiv", from_date: str | None = None,
            until: str | None = None, session: requests.Session | None = None,
            sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
            progress: Progress | None = None) -> HarvestResult:
    """Harvest each set in turn (``ALL``, the empty string, for all of arXiv) under ``settings``'
    ``oai_base_url``, ``fetch_delay``, ``fetch_timeout`` and ``fetch_retries``. State lives in
    ``<data_dir>/harvest_state.json``. Raises :class:`HarvestError` with ``.result`` holding every
    set harvested so far (the failing one last)."""
    specs = list(dict.fromkeys(check_set(s) if s else ALL for s in sets))
    state = HarvestState(Path(settings.data_dir) / STATE_FILE)
    own = session is None
    session = requests.Session() if own else session
    total = HarvestResult()
    try:
        harvester = Harvester(session, base_url=getattr(settings, "oai_base_url", OAI_URL),
                              delay=settings.fetch_delay, timeout=settings.fetch_timeout,
                              retries=settings.fetch_retries, sleep=sleep, clock=clock)
        for spec in specs:
            try:
                total.sets.append(harvester.harvest_set(store, state, spec, fmt=fmt, from_date=from_date,
                                                        until=until, progress=progress))
            except HarvestError as exc:
                if exc.result is not None:
                    total.sets.append(exc.result)
                exc.result = total
                raise
    finally:
        if own:
            session.close()
    return total
