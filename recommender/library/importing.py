"""Importing a library export into a user's tags: resolve ids, fetch the missing papers, tag, report.

The CLI (``paperfeed library import``), the ``/library`` upload form and ``POST /api/library/import`` all
call :func:`import_entries`. Every entry of the file ends in exactly one bucket of the :class:`ImportReport`:

- ``matched``: its paper was in the store; ``fetched``: fetched from the arXiv API for this import;
- ``not_found``: a well-formed id arXiv does not have; ``not_fetched``: missing and not fetched (arXiv
  unreachable, or past a web import's fetch cap): importing the same file again completes it;
- ``not_on_arxiv``: no arXiv id at all (a journal article, a book), listed with its title;
- ``malformed``: an entry that could not be read, or that points at arXiv with a broken id (key + reason).

Tagging is one transaction for every tag the import touches (the chosen tag, which gets every resolvable
paper, and each collection): a limit hit refuses the whole import, and a re-import changes nothing.
"""
from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable

from recommender.accounts.users import (TAG_MAX_LENGTH, RESERVED_TAG_PREFIX, LimitExceeded, User, UserStore,
                                        validate_tag)
from recommender.corpus.store import PaperStore
from recommender.harvest.arxiv_api import FetchError, FetchResult, Offline

from .formats import Entry, Parsed

DEFAULT_TAG = "imported"
BUCKETS = ("matched", "fetched", "not_found", "not_fetched", "not_on_arxiv", "malformed")
Fetch = Callable[[list[str]], FetchResult]


@dataclasses.dataclass
class ImportReport:
    """What one import did. Each bucket lists ``{key, title, id?, reason?}``; ``tagged`` maps each tag to
    the papers newly added to it (0 everywhere on a re-import)."""

    format: str
    tag: str
    matched: list[dict] = dataclasses.field(default_factory=list)
    fetched: list[dict] = dataclasses.field(default_factory=list)
    not_found: list[dict] = dataclasses.field(default_factory=list)
    not_fetched: list[dict] = dataclasses.field(default_factory=list)
    not_on_arxiv: list[dict] = dataclasses.field(default_factory=list)
    malformed: list[dict] = dataclasses.field(default_factory=list)
    tagged: dict[str, int] = dataclasses.field(default_factory=dict)
    tag_sizes: dict[str, int] = dataclasses.field(default_factory=dict)  # resolvable papers per tag
    fetch_error: str | None = None

    @property
    def entries(self) -> int:
        return sum(len(getattr(self, b)) for b in BUCKETS)

    @property
    def counts(self) -> dict[str, int]:
        return {b: len(getattr(self, b)) for b in BUCKETS}

    @property
    def changed(self) -> bool:
        return any(self.tagged.values())

    @property
    def complete(self) -> bool:
        """Nothing is left that a later run could still add (papers not fetched this time)."""
        return not self.not_fetched

    def to_dict(self) -> dict:
        return {"format": self.format, "tag": self.tag, "entries": self.entries, "counts": self.counts,
                "tagged": self.tagged, "tag_sizes": self.tag_sizes, "fetch_error": self.fetch_error,
                "complete": self.complete, **{b: getattr(self, b) for b in BUCKETS}}


def collection_tag(name: str) -> str | None:
    """A collection name made a valid tag (``ML / Vision`` -> ``ML - Vision``), or None if nothing is left."""
    text = re.sub(r"[^\w .+-]+", "-", name or "").strip(" -.+")
    text = re.sub(r"-{2,}", "-", text).lstrip("_")[:TAG_MAX_LENGTH].strip()
    if not text or text.startswith(RESERVED_TAG_PREFIX):
        return None
    try:
        return validate_tag(text)
    except ValueError:
        return None


def import_entries(papers: PaperStore, users: UserStore, user: User, parsed: Parsed, *, tag: str | None = None,
                   collections: bool = True, fetch: Fetch | None = None, max_fetch: int | None = None,
                   not_fetched_hint: str = "") -> ImportReport:
    """Resolve, fetch what is missing (at most ``max_fetch`` ids, through ``fetch``), tag, and report.

    ``fetch(ids)`` fetches into the store ``papers`` reads (see :func:`arxiv_fetch`); None fetches nothing.
    Raises ``UserError`` for a bad tag name and ``LimitExceeded`` (nothing tagged) past a limit.
    """
    tag = validate_tag(tag if tag is not None else DEFAULT_TAG)
    report = ImportReport(parsed.format, tag)
    wanted = list(dict.fromkeys(e.arxiv_id for e in parsed.entries if e.arxiv_id))
    missing = [pid for pid in wanted if pid not in papers]
    todo = missing if max_fetch is None else missing[:max(0, max_fetch)]
    not_found, reasons = set(), {pid: f"not fetched: {not_fetched_hint}".rstrip(": ") for pid in missing[len(todo):]}
    if todo and fetch is not None:
        try:
            not_found = set(fetch(todo).not_found)
        except FetchError as exc:
            report.fetch_error = _fetch_reason(exc)
            reasons.update({pid: report.fetch_error for pid in todo})
    elif todo:
        reasons.update({pid: "not in the paper store, and this import does not fetch" for pid in todo})
    missing_set = set(missing)
    known = papers.get_many(wanted)
    for entry in parsed.entries:
        _file(report, entry, known, missing_set, not_found, reasons)
    _tag(report, users, user, parsed.entries, known, collections)
    return report


def _fetch_reason(exc: FetchError) -> str:
    if isinstance(exc, Offline):
        return "could not fetch (offline: the arXiv API cannot be reached); import again later"
    text = " ".join(str(exc).split())
    return f"could not fetch ({text[:200]}); import again later"


def _file(report: ImportReport, entry: Entry, known: dict, missing: set, not_found: set, reasons: dict) -> None:
    item = entry.to_dict()
    pid = entry.arxiv_id
    if pid is None:
        (report.malformed if entry.error else report.not_on_arxiv).append(item)
        return
    if pid in known:
        item["title"] = known[pid].title
        (report.fetched if pid in missing else report.matched).append(item)
    elif pid in not_found:
        report.not_found.append({**item, "reason": "arXiv has no paper with this id"})
    else:
        report.not_fetched.append({**item, "reason": reasons.get(pid) or "could not fetch; import again later"})


def _tag(report: ImportReport, users: UserStore, user: User, entries: list[Entry], known: dict,
         collections: bool) -> None:
    plan: dict[str, list[str]] = {report.tag: []}
    for entry in entries:
        if entry.arxiv_id not in known:
            continue
        plan[report.tag].append(entry.arxiv_id)
        for name in entry.collections if collections else ():
            col = collection_tag(name)
            if col:
                plan.setdefault(col, []).append(entry.arxiv_id)
    plan = {t: list(dict.fromkeys(ids)) for t, ids in plan.items() if ids}
    report.tag_sizes = {t: len(ids) for t, ids in plan.items()}
    try:
        report.tagged = users.add_tag_sets(user.id, plan) if plan else {}
    except LimitExceeded as exc:
        if len(plan) > 1:  # the collections made the tags: say how to import without them
            raise LimitExceeded(f"{exc}. This import would use {len(plan)} tags ({len(plan) - 1} from the file's "
                                "collections); nothing was tagged. Import without collections as tags, or split "
                                "the file") from None
        raise


def arxiv_fetch(store: PaperStore, settings, *, session=None, sleep=time.sleep, progress=None) -> Fetch:
    """A ``fetch`` for :func:`import_entries`: the arXiv API by id (``fetch_ids``: batches of 100, the fetch
    rate limit, timeouts, retries and page checks) into ``store``."""
    from recommender.harvest.arxiv_api import fetch_ids

    def fetch(ids: list[str]) -> FetchResult:
        return fetch_ids(store, settings, ids, session=session, sleep=sleep, progress=progress)
    return fetch
