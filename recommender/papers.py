"""The one ``Paper`` type every source (Kaggle snapshot, arXiv API) is turned into."""
from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import re

from .ids import InvalidArxivId, parse_arxiv_id



class InvalidPaper(ValueError):
    """A record that cannot become a :class:`Paper`; the message says why."""


@dataclasses.dataclass(frozen=True)
class Paper:
    """One arXiv paper at its latest known version.

    ``published`` is the date of v1 and ``updated`` the date of the latest
    version, both ISO ``YYYY-MM-DD``. ``categories`` has the primary first.
    """

    id: str
    version: int
    title: str
    abstract: str
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    comments: str | None = None
    journal_ref: str | None = None
    doi: str | None = None
    published: str = ""
    updated: str = ""
    license: str | None = None

    def __post_init__(self):
        base, version = parse_arxiv_id(self.id)
        if base != self.id or version is not None:
            raise InvalidArxivId(f"Paper.id must be versionless, got {self.id!r}")
        if not isinstance(self.version, int) or self.version < 1:
            raise InvalidPaper(f"{self.id}: version must be an integer >= 1")
        for name in ("published", "updated"):
            _check_date(self.id, name, getattr(self, name))

    @property
    def primary_category(self) -> str | None:
        return self.categories[0] if self.categories else None

    @property
    def text(self) -> str:
        """What the TF-IDF features are built from: title and abstract."""
        return f"{self.title}. {self.abstract}"

    def to_dict(self) -> dict:
        d = {f: getattr(self, f) for f in _FIELDS}
        d["authors"] = list(self.authors)
        d["categories"] = list(self.categories)
        return d

    @classmethod
    def from_dict(cls, d: dict, trusted: bool = False) -> "Paper":
        """Rebuild from :meth:`to_dict`. ``trusted`` skips re-validation of records the store validated on write."""
        kw = {k: v for k, v in d.items() if k in _FIELDS}
        kw["authors"] = tuple(kw.get("authors") or ())
        kw["categories"] = tuple(kw.get("categories") or ())
        if not trusted:
            return cls(**kw)
        paper = object.__new__(cls)
        for name in _FIELDS:
            object.__setattr__(paper, name, kw.get(name, _DEFAULTS.get(name)))
        return paper

    def newer_than(self, other: "Paper") -> bool:
        return (self.version, self.updated) > (other.version, other.updated)


_FIELDS = tuple(f.name for f in dataclasses.fields(Paper))
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Paper) if f.default is not dataclasses.MISSING}


def _check_date(pid: str, name: str, value: str) -> None:
    try:
        dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidPaper(f"{pid}: {name} must be an ISO date, got {value!r}") from None


def clean_text(text: str | None) -> str:
    """Collapse arXiv's hard line wraps and runs of spaces; keep blank-line paragraphs."""
    if not text:
        return ""
    if "\n\n" not in text:  # the common case, and str.split is ~10x faster than a regex here
        return " ".join(text.split())
    paragraphs = re.split(r"\n[ \t]*\n", text.strip())
    return "\n\n".join(" ".join(p.split()) for p in paragraphs if p.strip())


def split_authors(authors: str | None) -> tuple[str, ...]:
    """Split Kaggle's one-string author list ("A, B and C")."""
    if not authors:
        return ()
    text = clean_text(authors)
    parts = re.split(r",\s*(?:and\s+)?|\s+and\s+", text)
    return tuple(p.strip() for p in parts if p.strip())


def rfc2822_date(value: str) -> str:
    """``"Tue, 18 Mar 2025 00:00:00 +0000"`` -> ``"2025-03-18"`` (UTC)."""
    try:
        stamp = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        raise InvalidPaper(f"unreadable date {value!r}") from None
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.timezone.utc)
    return stamp.date().isoformat()


def _optional(record: dict, key: str) -> str | None:
    value = record.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidPaper(f"field {key!r} must be text")
    return clean_text(value) or None


def _required_text(record: dict, key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str):
        raise InvalidPaper(f"missing field {key!r}" if value is None else f"field {key!r} must be text")
    return clean_text(value)


def _versions(record: dict) -> tuple[int, str, str]:
    """(latest version number, v1 date, latest version date) from a Kaggle record."""
    versions = record.get("versions") or []
    if not isinstance(versions, list):
        raise InvalidPaper("field 'versions' must be a list")
    numbered = []
    for v in versions:
        if not isinstance(v, dict) or not re.fullmatch(r"v[1-9][0-9]*", str(v.get("version", ""))):
            raise InvalidPaper(f"bad entry in 'versions': {v!r}"[:120])
        numbered.append((int(v["version"][1:]), rfc2822_date(v.get("created", ""))))
    if numbered:
        numbered.sort()
        return numbered[-1][0], numbered[0][1], numbered[-1][1]
    update = record.get("update_date")
    if not isinstance(update, str):
        raise InvalidPaper("missing field 'versions' and 'update_date'")
    _check_date(str(record.get("id")), "update_date", update)
    return 1, update, update


def paper_from_kaggle(record: dict) -> Paper:
    """Build a :class:`Paper` from one Kaggle-snapshot record, or raise ``ValueError``."""
    if not isinstance(record, dict):
        raise InvalidPaper("record is not a JSON object")
    raw_id = record.get("id")
    if not isinstance(raw_id, str):
        raise InvalidPaper("missing field 'id'")
    pid, id_version = parse_arxiv_id(raw_id)
    version, published, updated = _versions(record)
    parsed = record.get("authors_parsed")
    if isinstance(parsed, list) and parsed and all(isinstance(a, list) for a in parsed):
        authors = tuple(" ".join(p for p in (a[1:2] + a[:1] + a[2:3]) if p).strip() for a in parsed)
        authors = tuple(clean_text(a) for a in authors if a)
    else:
        authors = split_authors(record.get("authors"))
    categories = record.get("categories") or ""
    if not isinstance(categories, str):
        raise InvalidPaper("field 'categories' must be a space-separated string")
    title = _required_text(record, "title")
    if not title:
        raise InvalidPaper("empty title")
    return Paper(
        id=pid,
        version=max(version, id_version or 1),
        title=title,
        abstract=_required_text(record, "abstract"),
        authors=authors,
        categories=tuple(dict.fromkeys(categories.split())),
        comments=_optional(record, "comments"),
        journal_ref=_optional(record, "journal-ref"),
        doi=_optional(record, "doi"),
        published=published,
        updated=updated,
        license=_optional(record, "license"),
    )
