"""One reference read from a library file, and how its arXiv id is found in its fields (shared by the readers)."""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from recommender.corpus.ids import InvalidArxivId, find_arxiv_id, find_bare_arxiv_id, parse_arxiv_id

MAX_TITLE = 300
MAX_KEY = 120


class FormatError(ValueError):
    """The file as a whole cannot be imported; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class Entry:
    """One reference from the file: its key (citation key, CSL id, ``line N``), a readable title, and either
    an arXiv id (versionless; ``version`` if the file named one), nothing (not on arXiv), or ``error``."""

    key: str
    title: str = ""
    arxiv_id: str | None = None
    version: int | None = None
    collections: tuple[str, ...] = ()
    error: str | None = None

    def to_dict(self) -> dict:
        out = {"key": self.key, "title": self.title}
        if self.arxiv_id:
            out["id"] = self.arxiv_id
        if self.error:
            out["reason"] = self.error
        if self.collections:
            out["collections"] = list(self.collections)
        return out




def too_many(n: int, limit: int) -> FormatError:
    return FormatError(f"the file holds {n:,} entries; one import takes at most {limit:,}: "
                       "split it (e.g. one collection at a time)")


def arxiv_from_fields(explicit: Iterable[tuple[str, str]], marked: Iterable[tuple[str, str]]) -> tuple:
    """``(id, version, error)`` from an entry's fields. ``explicit`` hold only an id (eprint, arxivId);
    ``marked`` are searched for an arXiv URL, DOI or ``arXiv:`` label (url, doi, journal, note...)."""
    error = None
    for name, value in explicit:
        try:
            pid, version = parse_arxiv_id(value)
            return pid, version, None
        except InvalidArxivId:
            found = find_bare_arxiv_id(value) or _marked(value)
            if found:
                return found[0], found[1], None
            error = error or f"{name} {short(value)!r} is not an arXiv id"
    for name, value in marked:
        try:
            found = find_arxiv_id(value)
        except InvalidArxivId:
            error = error or f"{name} {short(value)!r} points at arXiv but holds no valid arXiv id"
            continue
        if found:
            return found[0], found[1], None
    return None, None, error


def _marked(value: str):
    try:
        return find_arxiv_id(value)
    except InvalidArxivId:
        return None


def short(value: str, n: int = 60) -> str:
    value = " ".join(str(value).split())
    return value if len(value) <= n else value[:n - 1] + "…"


def clean_title(value) -> str:
    text = " ".join(str(value).split()) if isinstance(value, str) else ""
    text = "".join(ch for ch in text if ch.isprintable())
    return text if len(text) <= MAX_TITLE else text[:MAX_TITLE - 1] + "…"


def make_entry(key, title, explicit, marked, collections=()) -> Entry:
    pid, version, error = arxiv_from_fields(explicit, marked)
    key = short(key or "", MAX_KEY) or "(no key)"
    title = clean_title(title)
    cols = tuple(dict.fromkeys(c for c in (clean_title(c) for c in collections) if c))
    if pid:
        return Entry(key, title, pid, version, cols)
    return Entry(key, title, None, None, cols, error)


