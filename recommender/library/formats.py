"""Reading library exports: BibTeX, CSL JSON, Zotero RDF and plain id lists, into one :class:`Entry` list.

Every entry ends as exactly one of: an arXiv id, no arXiv id (a journal article or a book: listed with its
title so the user sees what was skipped), or malformed (with its key and the reason). A whole file that
cannot be read at all (not UTF-8, binary, too large, too many entries, no known format) raises
:class:`FormatError`, a ``ValueError`` whose message says what to do.

The format is judged by content; the file name's extension is a hint that breaks ties (a ``.txt`` of
ids, a ``.bib`` with no entries). Parsing is done by maintained parsers: bibtexparser 2 for BibTeX,
rdflib for RDF/XML, the standard library for JSON.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import logging
import re
import unicodedata
from collections.abc import Iterable

from recommender.corpus.ids import InvalidArxivId, find_arxiv_id, find_bare_arxiv_id, parse_arxiv_id

FORMATS = ("bibtex", "csl-json", "zotero-rdf", "ids")
EXTENSIONS = {".bib": "bibtex", ".bibtex": "bibtex", ".json": "csl-json", ".rdf": "zotero-rdf", ".xml": "zotero-rdf",
              ".txt": "ids", ".list": "ids"}
MAX_TITLE = 300
MAX_KEY = 120
MAX_JSON_DEPTH = 20
MAX_BRACE_DEPTH = 64  # real BibTeX nests a few levels; bibtexparser takes seconds on thousands

_BIB_START = re.compile(r"^[ \t]*@[ \t]*([A-Za-z]+)[ \t]*[{(]", re.MULTILINE)
_BIB_COMMENTS = {"comment", "string", "preamble"}
_BIB_KEY = re.compile(r"@\s*[A-Za-z]+\s*[{(]\s*([^,\s]*)")


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
        raise FormatError(f"the file is {_size(len(data))}; imports take at most {_size(max_bytes)}: "
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
    if any(m.group(1).lower() not in _BIB_COMMENTS for m in _BIB_START.finditer(text)):
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
          max_bytes: int = 5 * 2**20, max_entries: int = 5000) -> Parsed:
    """Read a library export into entries. ``fmt`` forces one of :data:`FORMATS`; ``filename`` is a hint.

    Raises :class:`FormatError` for a file that cannot be read as a whole; a bad entry is an ``Entry``
    with ``error`` set instead.
    """
    text = decode(data, max_bytes)
    hint = EXTENSIONS.get(_suffix(filename)) if filename else None
    if fmt is not None and fmt not in FORMATS:
        raise FormatError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    fmt = fmt or detect(text, hint)
    reader = {"bibtex": parse_bibtex, "csl-json": parse_csl_json, "zotero-rdf": parse_zotero_rdf,
              "ids": parse_id_list}[fmt]
    entries = reader(text, max_entries)
    if len(entries) > max_entries:
        raise _too_many(len(entries), max_entries)
    return Parsed(fmt, entries)


def _suffix(filename: str) -> str:
    name = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1].lower()
    return name[name.rfind("."):] if "." in name else ""


def _too_many(n: int, limit: int) -> FormatError:
    return FormatError(f"the file holds {n:,} entries; one import takes at most {limit:,}: "
                       "split it (e.g. one collection at a time)")


# --- arXiv ids inside fields -----------------------------------------------------------------
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
            error = error or f"{name} {_short(value)!r} is not an arXiv id"
    for name, value in marked:
        try:
            found = find_arxiv_id(value)
        except InvalidArxivId:
            error = error or f"{name} {_short(value)!r} points at arXiv but holds no valid arXiv id"
            continue
        if found:
            return found[0], found[1], None
    return None, None, error


def _marked(value: str):
    try:
        return find_arxiv_id(value)
    except InvalidArxivId:
        return None


def _short(value: str, n: int = 60) -> str:
    value = " ".join(str(value).split())
    return value if len(value) <= n else value[:n - 1] + "…"


def clean_title(value) -> str:
    text = " ".join(str(value).split()) if isinstance(value, str) else ""
    text = "".join(ch for ch in text if ch.isprintable())
    return text if len(text) <= MAX_TITLE else text[:MAX_TITLE - 1] + "…"


def _entry(key, title, explicit, marked, collections=()) -> Entry:
    pid, version, error = arxiv_from_fields(explicit, marked)
    key = _short(key or "", MAX_KEY) or "(no key)"
    title = clean_title(title)
    cols = tuple(dict.fromkeys(c for c in (clean_title(c) for c in collections) if c))
    if pid:
        return Entry(key, title, pid, version, cols)
    return Entry(key, title, None, None, cols, error)


# --- BibTeX ----------------------------------------------------------------------------------
_BIB_EXPLICIT = ("eprint", "arxivid", "arxiv", "arxiv_id")
_BIB_MARKED = ("doi", "url", "howpublished", "journal", "journaltitle", "note", "number", "volume", "booktitle",
               "pdf", "eprint", "annote", "publisher", "series", "archiveprefix")


def parse_bibtex(text: str, max_entries: int) -> list[Entry]:
    import bibtexparser
    from bibtexparser import model

    n = sum(1 for m in _BIB_START.finditer(text) if m.group(1).lower() not in _BIB_COMMENTS)
    if n > max_entries:  # refuse before parsing: bibtexparser is pure Python
        raise _too_many(n, max_entries)
    if n == 0:
        raise FormatError("no BibTeX entries found (an entry starts with @article{key, ...)")
    depth, line = _brace_depth(text)
    if depth > MAX_BRACE_DEPTH:
        raise FormatError(f"braces nest {depth} deep in the entry at line {line} (real exports nest a few levels; "
                          f"at most {MAX_BRACE_DEPTH}): not an export Paperfeed can read")
    logging.getLogger("bibtexparser").setLevel(logging.ERROR)  # it logs every failed block; we report them
    library = bibtexparser.parse_string(text)
    blocks = sorted([*library.entries, *library.failed_blocks], key=lambda b: b.start_line or 0)
    out = []
    for block in blocks:
        if isinstance(block, (model.DuplicateBlockKeyBlock, model.DuplicateFieldKeyBlock)):
            block = block.ignore_error_block  # a repeated key or field is still a usable entry
        if isinstance(block, model.Entry):
            out.append(_bib_entry(block))
        elif isinstance(block, model.ParsingFailedBlock):
            raw = block.raw or ""
            key = (_BIB_KEY.match(raw.lstrip()) or [None, ""])[1]
            if raw.lstrip()[1:].lstrip().lower().startswith(tuple(_BIB_COMMENTS)):
                continue
            error = block.error
            reason = getattr(error, "abort_reason", None) or str(error or "").split("\n")[0] or \
                "unreadable BibTeX (an unclosed brace or quote?)"
            out.append(Entry(_short(key or f"line {(block.start_line or 0) + 1}", MAX_KEY),
                             "", error=f"line {(block.start_line or 0) + 1}: {_short(reason, 160)}"))
    return out


def _brace_depth(text: str) -> tuple[int, int]:
    """(deepest brace nesting within one entry, that entry's line), in numpy: no Python loop per character."""
    import numpy as np

    starts = [m.start() for m in _BIB_START.finditer(text)] + [len(text)]
    worst, where = 0, 0
    for a, b in zip(starts, starts[1:]):
        chunk = np.frombuffer(text[a:b].encode("utf-8", "surrogatepass"), dtype=np.uint8)
        if chunk.size:
            depth = int(np.cumsum((chunk == 123).astype(np.int32) - (chunk == 125)).max())
            if depth > worst:
                worst, where = depth, a
    return worst, text.count("\n", 0, where) + 1


def _bib_entry(entry) -> Entry:
    fields = {}
    for field in entry.fields:
        if isinstance(field.value, str):  # a duplicate's fields keep their enclosing braces or quotes
            value = field.value.strip()
            if len(value) > 1 and (value[0], value[-1]) in (("{", "}"), ('"', '"')):
                value = value[1:-1]
            fields.setdefault(field.key.lower(), value)
    prefix = (fields.get("archiveprefix") or fields.get("eprinttype") or "arxiv").strip().lower()
    explicit = [(k, fields[k]) for k in _BIB_EXPLICIT if k in fields and (k != "eprint" or prefix == "arxiv")]
    marked = [(k, fields[k]) for k in _BIB_MARKED if k in fields]
    groups = [g.strip() for k in ("groups", "mendeley-groups") for g in fields.get(k, "").split(",")]
    return _entry(entry.key, latex_to_text(fields.get("title", "")), explicit, marked, [g for g in groups if g])


_ACCENTS = {'"': "\u0308", "'": "\u0301", "`": "\u0300", "^": "\u0302", "~": "\u0303", "=": "\u0304",
            ".": "\u0307", "c": "\u0327", "v": "\u030c", "u": "\u0306", "H": "\u030b", "r": "\u030a"}
_ACCENT = re.compile(r"\{?\\([\"'`^~=.]|[cvuHr](?= |\{))\s*\{?([A-Za-z])\}?\}?")
_ESCAPED = re.compile(r"\\([&%$#_{}])")


def latex_to_text(value: str) -> str:
    """A LaTeX title made readable: ``{\\"o}`` -> ö, ``\\&`` -> &, braces gone, ``$\\times$`` -> ×.

    The common forms (accents, escaped characters, case-protecting braces) are done here; pylatexenc (slow:
    milliseconds a title) only sees titles with other macros or math."""
    text = _ESCAPED.sub(r"\1", _ACCENT.sub(lambda m: unicodedata.normalize(
        "NFC", m[2] + _ACCENTS[m[1]]), value)) if "\\" in value else value
    if "\\" not in text and "$" not in text:
        return text.replace("{", "").replace("}", "")
    try:  # the original: pylatexenc knows that \% is a percent sign and % a comment
        return _latex_decoder().latex_to_text(value[:2000])
    except Exception:  # noqa: BLE001 -- pylatexenc on hostile input: show the raw title rather than fail
        return value.replace("{", "").replace("}", "")


@functools.lru_cache(maxsize=1)
def _latex_decoder():
    from pylatexenc.latex2text import LatexNodes2Text  # bibtexparser's own LaTeX dependency

    return LatexNodes2Text(math_mode="text")


# --- CSL JSON --------------------------------------------------------------------------------
_CSL_MARKED = ("URL", "DOI", "number", "note", "container-title", "archive_location", "archive", "publisher",
               "source", "id")


def parse_csl_json(text: str, max_entries: int) -> list[Entry]:
    if not _depth_ok(text):  # before json.loads, whose recursion a deep file could exhaust
        raise FormatError(f"the JSON is nested deeper than {MAX_JSON_DEPTH} levels: not a CSL JSON export")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"not valid JSON ({_short(str(exc), 100)}): export CSL JSON again") from None
    if isinstance(data, dict):
        data = data.get("items", [data]) if isinstance(data.get("items", [data]), list) else [data]
    if not isinstance(data, list):
        raise FormatError("CSL JSON is a list of items; this JSON is not")
    if len(data) > max_entries:
        raise _too_many(len(data), max_entries)
    return [_csl_entry(i, item) for i, item in enumerate(data, 1)]


def _depth_ok(text: str) -> bool:
    depth = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def _csl_entry(i: int, item) -> Entry:
    if not isinstance(item, dict):
        return Entry(f"item {i}", error=f"item {i} is not a JSON object")
    key = item.get("citation-key") or item.get("id")
    key = key if isinstance(key, str) else str(key) if isinstance(key, int) and not isinstance(key, bool) else None
    strings = {k: v for k, v in item.items() if isinstance(k, str) and isinstance(v, str)}
    explicit = [(k, strings[k]) for k in ("arxiv", "arxiv_id") if k in strings]
    return _entry(key or f"item {i}", strings.get("title", ""), explicit,
                  [(k, strings[k]) for k in _CSL_MARKED if k in strings])


# --- Zotero RDF ------------------------------------------------------------------------------
_Z = "http://www.zotero.org/namespaces/export#"
_DC = "http://purl.org/dc/elements/1.1/"
_DCTERMS = "http://purl.org/dc/terms/"
_RDF_VALUE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#value"
_SKIP_PREDICATES = {_DCTERMS + "abstract", _DC + "subject", _DCTERMS + "hasPart", _Z + "itemType"}


def parse_zotero_rdf(text: str, max_entries: int) -> list[Entry]:
    import rdflib
    from rdflib import Literal, Namespace, URIRef

    if re.search(r"<!(?:DOCTYPE|ENTITY)", text, re.IGNORECASE):
        # Zotero never writes one; entity expansion ("billion laughs") is a way to exhaust memory.
        raise FormatError("this RDF declares a DOCTYPE or entities, which Zotero RDF never does: refused")
    graph = rdflib.Graph()
    try:
        graph.parse(data=text, format="xml")
    except Exception as exc:  # noqa: BLE001 -- rdflib and SAX raise many types for a bad file
        raise FormatError(f"not a readable RDF/XML file ({_short(str(exc), 120)}): export \"Zotero RDF\" "
                          "again") from None
    z, dc, dcterms = Namespace(_Z), Namespace(_DC), Namespace(_DCTERMS)
    items = [s for s, kind in graph.subject_objects(z.itemType)
             if str(kind) not in ("attachment", "note")]
    if not items:
        raise FormatError("no Zotero items in this RDF file (Zotero marks each with z:itemType): export "
                          "\"Zotero RDF\" from Zotero")
    if len(items) > max_entries:
        raise _too_many(len(items), max_entries)
    collections: dict = {}
    for col in graph.subjects(rdflib.RDF.type, z.Collection):
        name = str(graph.value(col, dc.title) or "")
        for part in graph.objects(col, dcterms.hasPart):
            collections.setdefault(part, []).append(name)
    out = []
    for i, item in enumerate(sorted(items, key=str), 1):
        texts = [("about", str(item))] if isinstance(item, URIRef) else []
        for pred, obj in graph.predicate_objects(item):
            if str(pred) in _SKIP_PREDICATES:
                continue
            if isinstance(obj, Literal):
                texts.append((pred.split("/")[-1].split("#")[-1], str(obj)))
            else:
                value = graph.value(obj, URIRef(_RDF_VALUE))
                if value is not None:
                    texts.append((pred.split("/")[-1].split("#")[-1], str(value)))
        key = str(item) if isinstance(item, URIRef) else f"item {i}"
        out.append(_entry(key, str(graph.value(item, dc.title) or ""), [], texts, collections.get(item, ())))
    return out


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
            raise _too_many(sum(1 for ln in text.splitlines() if ln.strip()), max_entries)
        pid, version, error = _line_id(line)
        key = f"line {number}"
        out.append(Entry(key, clean_title(_short(line, 100)), pid, version) if pid
                   else Entry(key, clean_title(_short(line, 100)), error=error))
    return out
