"""Reading library exports: BibTeX, CSL JSON, Zotero RDF and plain id lists, into one :class:`Entry` list.

Every entry ends as exactly one of: an arXiv id, no arXiv id (a journal article or a book: listed with its
title so the user sees what was skipped), or malformed (with its key and the reason). A whole file that
cannot be read at all (not UTF-8, binary, too large, too many entries, no known format) raises
:class:`FormatError`, a ``ValueError`` whose message says what to do.

The format is judged by content; the file name's extension is a hint that breaks ties (a ``.txt`` of
ids, a ``.bib`` with no entries). Parsing is done by maintained parsers: bibtexparser 2 for BibTeX
(:mod:`.bibtex`), rdflib for Zotero RDF and the standard library for CSL JSON (:mod:`.zotero`); how an arXiv
id is found in an entry's fields is in :mod:`.entries`.
"""
from __future__ import annotations

import dataclasses

from recommender.corpus.ids import InvalidArxivId, find_arxiv_id, find_bare_arxiv_id, parse_arxiv_id

from .bibtex import BIB_COMMENTS, BIB_START, latex_to_text, parse_bibtex
from .entries import Entry, FormatError, clean_title, short, too_many
from .zotero import parse_csl_json, parse_zotero_rdf

__all__ = ["FORMATS", "Entry", "FormatError", "Parsed", "decode", "detect", "latex_to_text", "parse"]

FORMATS = ("bibtex", "csl-json", "zotero-rdf", "ids")
#: Other spellings people (and ``paperfeed library export``) use for the same formats.
ALIASES = {"bib": "bibtex", "csljson": "csl-json", "csl": "csl-json", "json": "csl-json", "rdf": "zotero-rdf",
           "txt": "ids", "list": "ids"}


def format_name(name: str) -> str:
    """The canonical name of an import format, or the name unchanged (then not one of :data:`FORMATS`)."""
    return ALIASES.get(name.strip().lower(), name.strip().lower()) if isinstance(name, str) else name
EXTENSIONS = {".bib": "bibtex", ".bibtex": "bibtex", ".json": "csl-json", ".rdf": "zotero-rdf", ".xml": "zotero-rdf",
              ".txt": "ids", ".list": "ids"}


@dataclasses.dataclass
class Parsed:
    format: str
    entries: list[Entry]


# --- reading and detecting -------------------------------------------------------------------
def decode(data: bytes | str, max_bytes: int) -> str:
    """The file's text, or :class:`FormatError` for a file too large, binary or not UTF-8."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    if len(data) > max_bytes:
        raise FormatError(f"the file is larger than {_size(max_bytes)}, the most an import takes: "
                          "split the export (e.g. one collection at a time)")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16 with a byte-order mark (some Windows exports)
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise FormatError("the file starts like UTF-16 but is not: export it again as UTF-8") from None
    if data.startswith(b"%PDF") or data.startswith(b"PK\x03\x04") or b"\x00" in data[:8192]:
        raise FormatError("this is a binary file (a PDF, a zip or similar), not a library export: export BibTeX, "
                          "CSL JSON or Zotero RDF from your reference manager, or a text file of arXiv ids")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(f"the file is not valid UTF-8 text (byte {exc.start}): export it again as UTF-8 "
                          "(Zotero, Mendeley and JabRef all offer it)") from None
    if "\x00" in text:
        raise FormatError("the file contains NUL characters: it is not a text export")
    return text


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB" if n >= 1024 else f"{n} bytes"


def detect(text: str, hint: str | None = None) -> str:
    """The format of ``text``: by content first, the extension-derived ``hint`` for ties."""
    head = text.lstrip()[:512]
    if head.startswith(("[", "{")):
        return "csl-json"
    if head.startswith("<"):
        return "zotero-rdf"
    if any(m.group(1).lower() not in BIB_COMMENTS for m in BIB_START.finditer(text)):
        return "bibtex"
    lines = [ln for ln in text.splitlines()[:200] if ln.strip() and not ln.lstrip().startswith("#")]
    if hint == "ids" or (lines and any(_line_id(ln)[0] for ln in lines)):
        return "ids"
    if hint == "bibtex":
        raise FormatError("this .bib file holds no BibTeX entries (an entry starts with @article{key, ...): "
                          "export BibTeX again from your reference manager")
    raise FormatError("this file is not BibTeX, CSL JSON, Zotero RDF or a list of arXiv ids: export your library "
                      "as BibTeX (.bib), CSL JSON (.json) or Zotero RDF (.rdf), or give one arXiv id or URL a line")


def parse(data: bytes | str, *, filename: str | None = None, fmt: str | None = None,
          max_bytes: int = 16 * 2**20, max_entries: int = 5000) -> Parsed:
    """Read a library export into entries. ``fmt`` forces one of :data:`FORMATS`; ``filename`` is a hint.

    Raises :class:`FormatError` for a file that cannot be read as a whole; a bad entry is an ``Entry``
    with ``error`` set instead.
    """
    text = decode(data, max_bytes)
    hint = EXTENSIONS.get(_suffix(filename)) if filename else None
    fmt = format_name(fmt) if fmt is not None else None
    if fmt is not None and fmt not in FORMATS:
        raise FormatError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    fmt = fmt or detect(text, hint)
    reader = {"bibtex": parse_bibtex, "csl-json": parse_csl_json, "zotero-rdf": parse_zotero_rdf,
              "ids": parse_id_list}[fmt]
    entries = reader(text, max_entries)
    if len(entries) > max_entries:
        raise too_many(len(entries), max_entries)
    return Parsed(fmt, entries)


def _suffix(filename: str) -> str:
    name = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1].lower()
    return name[name.rfind("."):] if "." in name else ""


# --- plain id lists --------------------------------------------------------------------------
def _line_id(line: str) -> tuple:
    text = line.strip()
    try:
        return (*parse_arxiv_id(text), None)
    except InvalidArxivId as exc:
        try:
            found = find_arxiv_id(text) or find_bare_arxiv_id(text)
        except InvalidArxivId as marked:
            return None, None, str(marked)
        return (*found, None) if found else (None, None, str(exc))


def parse_id_list(text: str, max_entries: int) -> list[Entry]:
    """One arXiv id or URL a line; blank lines and ``#`` comments are skipped."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if len(out) >= max_entries:
            raise too_many(sum(1 for ln in text.splitlines() if ln.strip()), max_entries)
        pid, version, error = _line_id(line)
        key = f"line {number}"
        out.append(Entry(key, clean_title(short(line, 100)), pid, version) if pid
                   else Entry(key, clean_title(short(line, 100)), error=error))
    return out
