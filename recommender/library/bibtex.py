"""BibTeX (Zotero, Better BibTeX, Mendeley, Google Scholar, arXiv) read with bibtexparser 2; titles made readable."""
from __future__ import annotations

import functools
import logging
import re
import unicodedata

from .entries import MAX_KEY, Entry, FormatError, make_entry, short, too_many

MAX_BRACE_DEPTH = 64  # real BibTeX nests a few levels; bibtexparser takes seconds on thousands
BIB_START = re.compile(r"^[ \t]*@[ \t]*([A-Za-z]+)[ \t]*[{(]", re.MULTILINE)
BIB_COMMENTS = {"comment", "string", "preamble"}
_BIB_KEY = re.compile(r"@\s*[A-Za-z]+\s*[{(]\s*([^,\s]*)")
_BIB_EXPLICIT = ("eprint", "arxivid", "arxiv", "arxiv_id")
_BIB_MARKED = ("doi", "url", "howpublished", "journal", "journaltitle", "note", "number", "volume", "booktitle",
               "pdf", "eprint", "annote", "publisher", "series", "archiveprefix")


def parse_bibtex(text: str, max_entries: int) -> list[Entry]:
    import bibtexparser
    from bibtexparser import model

    n = sum(1 for m in BIB_START.finditer(text) if m.group(1).lower() not in BIB_COMMENTS)
    if n > max_entries:  # refuse before parsing: bibtexparser is pure Python
        raise too_many(n, max_entries)
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
            if raw.lstrip()[1:].lstrip().lower().startswith(tuple(BIB_COMMENTS)):
                continue
            error = block.error
            reason = getattr(error, "abort_reason", None) or str(error or "").split("\n")[0] or \
                "unreadable BibTeX (an unclosed brace or quote?)"
            out.append(Entry(short(key or f"line {(block.start_line or 0) + 1}", MAX_KEY),
                             "", error=f"line {(block.start_line or 0) + 1}: {short(reason, 160)}"))
    return out


def _brace_depth(text: str) -> tuple[int, int]:
    """(deepest brace nesting within one entry, that entry's line), in numpy: no Python loop per character."""
    import numpy as np

    starts = [m.start() for m in BIB_START.finditer(text)] + [len(text)]
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
    return make_entry(entry.key, latex_to_text(fields.get("title", "")), explicit, marked, [g for g in groups if g])


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


