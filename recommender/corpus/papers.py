"""The one ``Paper`` type every source (Kaggle snapshot, arXiv API) is turned into.

Every field is checked once, in :meth:`Paper.__post_init__`, whatever the source, so
nothing the store or the web pages cannot handle gets in:

- ``id`` is a versionless arXiv id and ``version`` a whole number from 1 to ``MAX_VERSION``.
- Text fields are ``str``; ``authors`` and ``categories`` are tuples of ``str`` (a category
  is one non-empty word: no whitespace).
- Text holds no NUL and no lone surrogate (U+D800 to U+DFFF, which UTF-8 cannot encode):
  such a record is rejected with the field named, never silently repaired.
- ``published`` and ``updated`` are ``YYYY-MM-DD`` exactly, from ``MIN_DATE`` to ``MAX_DATE``.

A violation raises :class:`InvalidPaper` (a ``ValueError``) saying what is wrong.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import re

from recommender.corpus.ids import MAX_VERSION, InvalidArxivId, parse_arxiv_id, parse_version

MIN_DATE = dt.date(1980, 1, 1)
MAX_DATE = dt.date(2099, 12, 31)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_UNSAFE = re.compile(r"[\x00\ud800-\udfff]")
_JSON_TYPES = {str: "text", int: "a number", float: "a number", bool: "true/false", list: "a list",
               dict: "an object", type(None): "null"}


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
        if type(self.version) is not int or not 1 <= self.version <= MAX_VERSION:
            raise InvalidPaper(f"{self.id}: version must be a whole number from 1 to {MAX_VERSION}")
        for name in ("title", "abstract"):
            _check_text(self.id, name, getattr(self, name))
        for name in _OPTIONAL_TEXT:
            if getattr(self, name) is not None:
                _check_text(self.id, name, getattr(self, name))
        _check_names(self.id, "authors", self.authors)
        _check_names(self.id, "categories", self.categories)
        if any(c.split() != [c] for c in self.categories):
            raise InvalidPaper(f"{self.id}: a category is empty or contains whitespace")
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
        """Rebuild from :meth:`to_dict`. ``trusted`` skips re-validation of records the store validated on write.

        Untrusted input that is not a valid paper raises :class:`InvalidPaper`, whatever its shape.
        """
        if not isinstance(d, dict):
            raise InvalidPaper(f"a paper must be an object, got {json_type(d)}")
        kw = {k: v for k, v in d.items() if k in _FIELDS}
        for name in ("authors", "categories"):
            value = kw.get(name) or ()
            kw[name] = tuple(value) if isinstance(value, (list, tuple)) else value  # anything else fails the check
        if not trusted:
            missing = [name for name in _REQUIRED if name not in kw]
            if missing:
                raise InvalidPaper(f"missing field {missing[0]!r}")
            return cls(**kw)
        paper = object.__new__(cls)
        for name in _FIELDS:
            object.__setattr__(paper, name, kw.get(name, _DEFAULTS.get(name)))
        return paper

    def newer_than(self, other: "Paper") -> bool:
        return (self.version, self.updated) > (other.version, other.updated)


_FIELDS = tuple(f.name for f in dataclasses.fields(Paper))
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Paper) if f.default is not dataclasses.MISSING}
_REQUIRED = tuple(name for name in _FIELDS if name not in _DEFAULTS)
_OPTIONAL_TEXT = ("comments", "journal_ref", "doi", "license")


def json_type(value) -> str:
    """How JSON would name the type of ``value``: "text", "a number", "a list", ..."""
    return _JSON_TYPES.get(type(value), type(value).__name__)


def shown(value, limit: int = 40) -> str:
    """A short printable rendering for an error message: repr of (the start of) text, else its type."""
    if isinstance(value, str):
        return repr(value if len(value) <= limit else value[:limit] + "...")
    return json_type(value)


def _check_text(pid: str, name: str, value) -> None:
    if not isinstance(value, str):
        raise InvalidPaper(f"{pid}: {name} must be text, got {json_type(value)}")
    bad = ("\x00" in value or not value.isascii()) and _UNSAFE.search(value)  # isascii: the fast common case
    if bad:
        what = "a NUL character" if bad.group() == "\x00" else "a lone surrogate (invalid Unicode)"
        raise InvalidPaper(f"{pid}: {name} contains {what} at position {bad.start()}")


def _check_names(pid: str, name: str, values) -> None:
    if not isinstance(values, tuple) or not all(isinstance(value, str) for value in values):
        raise InvalidPaper(f"{pid}: {name} must be a list of names (text)")
    _check_text(pid, name, "\n".join(values))  # one scan for the whole list


def _check_date(pid: str, name: str, value) -> None:
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise InvalidPaper(f"{pid}: {name} must be a date like 2025-03-18, got {shown(value)}")
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidPaper(f"{pid}: {name} {value} is not a calendar date") from None
    if not MIN_DATE <= day <= MAX_DATE:
        raise InvalidPaper(f"{pid}: {name} {value} is outside {MIN_DATE}..{MAX_DATE}")


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


def rfc2822_date(value) -> str:
    """``"Tue, 18 Mar 2025 00:00:00 +0000"`` -> ``"2025-03-18"`` (UTC)."""
    if not isinstance(value, str):
        raise InvalidPaper(f"unreadable date: expected text like 'Tue, 18 Mar 2025 00:00:00 GMT', "
                           f"got {json_type(value)}")
    try:
        stamp = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        raise InvalidPaper(f"unreadable date {shown(value)}") from None
    try:
        return stamp.astimezone(dt.timezone.utc).date().isoformat() if stamp.tzinfo else stamp.date().isoformat()
    except OverflowError:  # e.g. 9999-12-31 23:00 -0100 is past the last date Python has
        raise InvalidPaper(f"date {shown(value)} is out of range") from None


# --- the Kaggle snapshot format ---------------------------------------------------------------
_KAGGLE_TEXT = ("id", "submitter", "authors", "title", "comments", "journal-ref", "doi", "report-no",
                "categories", "license", "abstract", "update_date")
_KAGGLE_LISTS = ("versions", "authors_parsed")


def _check_kaggle_shape(record) -> None:
    """Each known field is null or of its JSON type (unknown fields are ignored); else ``InvalidPaper``."""
    if not isinstance(record, dict):
        raise InvalidPaper("record is not a JSON object")
    for keys, kind, types in ((_KAGGLE_TEXT, "text", str), (_KAGGLE_LISTS, "a list", list)):
        for key in keys:
            value = record.get(key)
            if value is not None and not isinstance(value, types):
                raise InvalidPaper(f"field {key!r} must be {kind}, got {json_type(value)}")


def _required(record: dict, key: str) -> str:
    value = record.get(key)
    if value is None:
        raise InvalidPaper(f"missing field {key!r}")
    return value


def _optional(record: dict, key: str) -> str | None:
    return clean_text(record.get(key)) or None


def _version_entry(entry) -> tuple[int, str]:
    """One ``{"version": "v2", "created": RFC 2822 date}`` -> (2, ISO date)."""
    if not isinstance(entry, dict):
        raise InvalidPaper(f"bad entry in 'versions': expected an object, got {json_type(entry)}")
    try:
        number = parse_version(entry.get("version"))
    except InvalidArxivId as exc:
        raise InvalidPaper(f"bad entry in 'versions': {exc}") from None
    return number, rfc2822_date(entry.get("created"))


def _versions(record: dict, pid: str) -> tuple[int, str, str]:
    """(latest version number, v1 date, latest version date) from a Kaggle record."""
    numbered = sorted(_version_entry(v) for v in record.get("versions") or ())
    update = record.get("update_date")
    if update is not None:
        _check_date(pid, "update_date", update)
    if numbered:
        return numbered[-1][0], numbered[0][1], numbered[-1][1]
    if update is None:
        raise InvalidPaper("missing field 'versions' and 'update_date'")
    return 1, update, update


def _parsed_name(entry) -> str:
    """One ``authors_parsed`` entry ``[last, first, suffix]`` -> "first last suffix" (later parts are ignored)."""
    if not isinstance(entry, list):
        raise InvalidPaper(f"entries of 'authors_parsed' must be [last, first, suffix] lists, got {json_type(entry)}")
    parts = entry[1:2] + entry[:1] + entry[2:3]
    if not all(isinstance(part, str) or part is None for part in parts):
        raise InvalidPaper("entries of 'authors_parsed' must hold text or null")
    return clean_text(" ".join(part for part in parts if part))


def _kaggle_authors(record: dict) -> tuple[str, ...]:
    """Names from ``authors_parsed`` when it is given, else split from the ``authors`` string."""
    parsed = record.get("authors_parsed")
    if not parsed:
        return split_authors(record.get("authors"))
    return tuple(name for name in map(_parsed_name, parsed) if name)


def paper_from_kaggle(record: dict) -> Paper:
    """Build a :class:`Paper` from one Kaggle-snapshot record, or raise ``ValueError`` saying why."""
    _check_kaggle_shape(record)
    pid, id_version = parse_arxiv_id(_required(record, "id"))
    version, published, updated = _versions(record, pid)
    title = clean_text(_required(record, "title"))
    if not title:
        raise InvalidPaper("empty title")
    return Paper(
        id=pid,
        version=max(version, id_version or 1),
        title=title,
        abstract=clean_text(_required(record, "abstract")),
        authors=_kaggle_authors(record),
        categories=tuple(dict.fromkeys((record.get("categories") or "").split())),
        comments=_optional(record, "comments"),
        journal_ref=_optional(record, "journal-ref"),
        doi=_optional(record, "doi"),
        published=published,
        updated=updated,
        license=_optional(record, "license"),
    )
