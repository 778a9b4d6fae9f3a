"""Export a user's library, or one tag, as BibTeX, CSL JSON or CSV.

Pure functions over :class:`~recommender.corpus.papers.Paper` objects and the user's tags: the CLI
(``paperfeed library export``) and the web app (``/library/export.bib``, ``/api/library/export``) call
:func:`export_library` with what they read from their stores.

- **BibTeX**: one ``@misc`` per paper with ``eprint``, ``archivePrefix = {arXiv}``, ``primaryClass``, ``url``,
  ``author`` ("Last, First and ..."), ``year``, ``month``, ``doi`` when known and ``keywords`` (the paper's tags).
  arXiv metadata is TeX-like: ``$...$`` math is kept as written (braces balanced, ``%`` escaped), and outside
  math ``{ } % & # _ $ \\ ~ ^`` are escaped, except arXiv's own escapes (``\\%``, ``\\&``...), which are already
  LaTeX. Words with an inner capital (``BERT``, ``ImageNet``) are braced so styles keep their case. Every
  value therefore has balanced braces: no value can end its field early. Non-ASCII stays UTF-8 (biber reads it).
- **CSL JSON**: items Zotero imports as preprints (``type``: ``article``).
- **CSV**: one row per paper; a cell that a spreadsheet would run as a formula is prefixed with ``'``.

A tagged paper missing from the paper store is still exported, with its id and URL and a note saying so.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping

from recommender.corpus.papers import Paper

FORMATS = ("bibtex", "csljson", "csv")
#: Other spellings (the importer says ``csl-json``).
ALIASES = {"bib": "bibtex", "csl-json": "csljson", "csl": "csljson", "json": "csljson"}


def format_name(name: str) -> str:
    """The canonical name of an export format, or the name unchanged (then not one of :data:`FORMATS`)."""
    return ALIASES.get(name.strip().lower(), name.strip().lower()) if isinstance(name, str) else name
CONTENT_TYPES = {"bibtex": "application/x-bibtex; charset=utf-8",
                 "csljson": "application/vnd.citationstyles.csl+json; charset=utf-8",
                 "csv": "text/csv; charset=utf-8"}
EXTENSIONS = {"bibtex": "bib", "csljson": "json", "csv": "csv"}
MISSING_NOTE = "not in this Paperfeed's paper store: title and authors unknown here"
CSV_COLUMNS = ("id", "title", "authors", "primary_category", "published", "tags", "url")

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_STOPWORDS = frozenset("a an the on of in for to and with from by at via is are do does towards toward".split())
_SUFFIXES = frozenset({"jr", "jr.", "sr", "sr.", "ii", "iii", "iv"})
_CORPORATE = re.compile(r"\b(collaboration|consortium|team|group|project|collective|association|society)\b", re.I)
_MATH = re.compile(r"(?<!\\)\$[^$\n]+?(?<!\\)\$")
# LaTeX that arXiv's TeX-like metadata already holds, kept as written: escapes (\%, \&), commands (\emph, \textsc)
# and accents (\' \" \^ ...). Any other backslash is text.
_ESCAPED = re.compile(r"\\(?:[%&#_${}]|[A-Za-z]+|['\"^`~=.])")
_SPECIAL = {"%": r"\%", "&": r"\&", "#": r"\#", "_": r"\_", "$": r"\$",
            "\\": r"\textbackslash{}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
# For text whose braces do not balance: a lone \{ would unbalance BibTeX, which counts every brace.
_SPECIAL_UNBALANCED = {**_SPECIAL, "{": r"\textbraceleft{}", "}": r"\textbraceright{}"}
# Braces are kept as LaTeX grouping ({\it x}, \textsc{X}); a value whose braces do not balance is escaped whole
# with _SPECIAL_UNBALANCED instead, so no value can close its field early.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class UnknownTag(LookupError):
    """The user has no tag of that name."""


@dataclasses.dataclass(frozen=True)
class Item:
    """One exported paper: its id, its metadata (None when missing from the store) and the user's tags on it."""

    id: str
    paper: Paper | None
    tags: tuple[str, ...]

    @property
    def url(self) -> str:
        return f"https://arxiv.org/abs/{self.id}"


def select(tags: Mapping[str, list[str]], tag: str | None = None) -> dict[str, tuple[str, ...]]:
    """``{paper id: its tags}`` for one tag or (``tag=None``) every paper of every tag once, sorted by id.

    Raises :class:`UnknownTag` for a tag the user does not have.
    """
    if tag is not None and tag not in tags:
        raise UnknownTag(f"no tag {tag!r}")
    tags_of: dict[str, list[str]] = {}
    for name in sorted(tags):
        for pid in tags[name]:
            tags_of.setdefault(pid, []).append(name)
    wanted = tags[tag] if tag is not None else tags_of
    return {pid: tuple(tags_of[pid]) for pid in sorted(set(wanted))}


def items(tags: Mapping[str, list[str]], papers: Mapping[str, Paper], tag: str | None = None) -> list[Item]:
    """The :class:`Item` list to export; ``papers`` maps ids to the papers the store has."""
    return [Item(pid, papers.get(pid), its) for pid, its in select(tags, tag).items()]


def export_library(fmt: str, tags: Mapping[str, list[str]], papers: Mapping[str, Paper],
                   tag: str | None = None) -> str:
    """The library (or one tag) as text in ``fmt`` (one of :data:`FORMATS` or :data:`ALIASES`)."""
    writer = WRITERS.get(format_name(fmt))
    if writer is None:
        raise ValueError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    return writer(items(tags, papers, tag))


@dataclasses.dataclass(frozen=True)
class Export:
    text: str
    papers: int  # exported
    missing: int  # of which not in the paper store (id and URL only)


def export_user(users, papers, user_id: int, fmt: str, tag: str | None = None) -> Export:
    """Export from the stores (a ``UserStore``, and a ``PaperStore`` or anything with ``get_many``).

    Reads only the exported papers. Raises :class:`UnknownTag` or ``ValueError`` (unknown format).
    """
    fmt = format_name(fmt)
    if fmt not in WRITERS:
        raise ValueError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")
    chosen = select(users.tags(user_id), tag)
    found = papers.get_many(chosen)
    entries = [Item(pid, found.get(pid), its) for pid, its in chosen.items()]
    return Export(WRITERS[fmt](entries), len(entries), sum(item.paper is None for item in entries))


def filename(fmt: str, tag: str | None = None) -> str:
    """A safe download name: ``paperfeed-library.bib`` or ``paperfeed-<tag>.bib`` (ASCII letters, digits, -)."""
    slug = re.sub(r"[^a-z0-9]+", "-", _ascii(tag or "library").lower()).strip("-")[:40] or "tag"
    return f"paperfeed-{slug}.{EXTENSIONS[fmt]}"


# --- names ------------------------------------------------------------------------------------
def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def clean_name(name: str) -> str:
    """arXiv's TeX-like author text as a name: a ``~`` tie is a space, a stray trailing comma goes."""
    return " ".join(name.replace("~", " ").split()).strip(" ,")


def corporate(name: str) -> bool:
    """A collaboration or team rather than a person: kept whole, never split into first and last name."""
    return bool(_CORPORATE.search(name)) or " " not in name.strip()


def split_name(name: str) -> tuple[str, str, str]:
    """``"Ashish Vaswani"`` -> ``("Vaswani", "Ashish", "")``: (family, given, suffix). Lower-case particles join
    the family name (``"Ludwig van Beethoven"`` -> ``("van Beethoven", "Ludwig", "")``); ``Jr.``, ``III`` are the
    suffix."""
    words = name.split()
    suffix = []
    while len(words) > 2 and words[-1].lower().rstrip(",") in _SUFFIXES:
        suffix.insert(0, words.pop())
    start = len(words) - 1
    while start > 1 and words[start - 1][:1].islower():
        start -= 1
    return " ".join(words[start:]), " ".join(words[:start]), " ".join(suffix)


def _key_part(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", _ascii(text).lower())


def _base_key(item: Item) -> str:
    paper = item.paper
    if paper is None:
        return "arxiv" + re.sub(r"[^a-z0-9]", "", item.id.lower())
    first = clean_name(paper.authors[0]) if paper.authors else ""
    words = (first.split()[:1] if corporate(first) else split_name(first)[0].split()[-1:]) or [""]
    surname = _key_part(words[0])[:20] or "anon"
    words = [_key_part(w) for w in re.split(r"[\s\-:/]+", _ascii(re.sub(_MATH, " ", paper.title)))]
    word = next((w for w in words if w and w not in _STOPWORDS and not w.isdigit()), "")
    return f"{surname}{paper.published[:4]}{word[:20]}"


def citation_keys(papers: Iterable[Item]) -> dict[str, str]:
    """``{paper id: key}``: ``vaswani2017attention`` style (first author's surname, year, first title word),
    ASCII only. Papers sharing a key are told apart by ``b``, ``c``... in id order (ids grow with time, so an
    existing key keeps its letter when a newer paper joins)."""
    keys, used = {}, set()
    for item in sorted(papers, key=lambda i: i.id):
        base = _base_key(item)
        key, n = base, 1
        while key in used:
            n += 1
            key = base + _letters(n)
        used.add(key)
        keys[item.id] = key
    return keys


def _letters(n: int) -> str:
    """The suffix of the n-th paper sharing a key: 2 -> b ... 26 -> z, then 27, 28 ..."""
    return "abcdefghijklmnopqrstuvwxyz"[n - 1] if n <= 26 else str(n)


# --- BibTeX -----------------------------------------------------------------------------------
def _escape_plain(text: str) -> str:
    out, pos = [], 0
    for match in _ESCAPED.finditer(text):
        out.append("".join(_SPECIAL.get(c, c) for c in text[pos:match.start()]))
        out.append(match.group())
        pos = match.end()
    out.append("".join(_SPECIAL.get(c, c) for c in text[pos:]))
    return "".join(out)


def _balanced(text: str) -> bool:
    """Balanced for LaTeX (escaped braces left out) and for BibTeX, which counts every brace."""
    for pattern in (r"(?<!\\)[{}]", r"[{}]"):
        depth = 0
        for match in re.finditer(pattern, text):
            depth += 1 if match.group() == "{" else -1
            if depth < 0:
                return False
        if depth:
            return False
    return True


def _protect(text: str) -> str:
    """Brace words with an inner capital so bibliography styles keep their case (``{BERT}``)."""
    return re.sub(r"\S+", lambda m: "{" + m.group() + "}" if any(c.isupper() for c in m.group()[1:])
                  and not re.search(r"[\\{}]", m.group()) else m.group(), text)


def latex(text: str, protect: bool = False) -> str:
    """``text`` as a BibTeX value body: math kept, specials escaped, braces always balanced."""
    out, pos = [], 0
    for match in _MATH.finditer(text):
        plain = _escape_plain(text[pos:match.start()])
        out.append(_protect(plain) if protect else plain)
        math = re.sub(r"(?<!\\)%", r"\\%", match.group())
        out.append(math if _balanced(math) else _escape_plain(match.group()))
        pos = match.end()
    plain = _escape_plain(text[pos:])
    out.append(_protect(plain) if protect else plain)
    value = "".join(out)
    return value if _balanced(value) else "".join(_SPECIAL_UNBALANCED.get(c, c) for c in text)


def bibtex_name(name: str) -> str:
    name = clean_name(name)
    if corporate(name) or "," in name:  # kept whole: BibTeX would read a comma as "Last, First"
        return "{" + latex(name) + "}"
    family, given, suffix = (latex(part) for part in split_name(name))
    if re.search(r"\band\b", family, re.I):
        family = "{" + family + "}"  # a name part "and" must not split the author list
    given = "{" + given + "}" if re.search(r"\band\b", given, re.I) else given
    # BibTeX's "von Last, Jr, First" form: "van Beethoven, Ludwig" sorts under B, as BibTeX intends.
    return ", ".join(part for part in (family, suffix, given) if part)


def _bib_entry(item: Item, key: str) -> str:
    fields: list[tuple[str, str]] = []
    paper = item.paper
    if paper is not None:
        fields.append(("title", "{" + latex(paper.title, protect=True) + "}"))
        if paper.authors:
            fields.append(("author", "{" + " and ".join(bibtex_name(a) for a in paper.authors) + "}"))
        year, month = paper.published[:4], int(paper.published[5:7])
        fields += [("year", "{" + year + "}"), ("month", _MONTHS[month - 1])]
    fields += [("eprint", "{" + item.id + "}"), ("archivePrefix", "{arXiv}")]
    if paper is not None and paper.primary_category:
        fields.append(("primaryClass", "{" + latex(paper.primary_category) + "}"))
    fields.append(("url", "{" + item.url + "}"))
    if paper is not None and paper.doi:
        fields.append(("doi", "{" + latex(paper.doi) + "}"))
    if item.tags:
        fields.append(("keywords", "{" + latex(", ".join(item.tags)) + "}"))
    if paper is None:
        fields.append(("note", "{" + MISSING_NOTE + "}"))
    body = ",\n".join(f"  {name} = {value}" for name, value in fields)
    return f"@misc{{{key},\n{body}\n}}\n"


def to_bibtex(entries: list[Item]) -> str:
    keys = citation_keys(entries)
    return "\n".join(_bib_entry(item, keys[item.id]) for item in entries)


# --- CSL JSON ---------------------------------------------------------------------------------
def csl_name(name: str) -> dict:
    name = clean_name(name)
    if corporate(name) or "," in name:
        return {"literal": name}
    family, given, suffix = split_name(name)
    out = {"family": family, "given": given, "suffix": suffix}
    return {key: value for key, value in out.items() if value}


def _csl_item(item: Item, key: str) -> dict:
    out = {"id": key, "type": "article", "archive": "arXiv", "number": item.id, "URL": item.url,
           "publisher": "arXiv"}
    paper = item.paper
    if paper is None:
        out["title"] = f"arXiv:{item.id}"
        out["note"] = MISSING_NOTE
    else:
        out["title"] = paper.title
        out["author"] = [csl_name(a) for a in paper.authors]
        out["issued"] = {"date-parts": [[int(part) for part in paper.published.split("-")]]}
        out["abstract"] = paper.abstract
        if paper.doi:
            out["DOI"] = paper.doi
    if item.tags:
        out["keyword"] = ", ".join(item.tags)
    return out


def to_csl_json(entries: list[Item]) -> str:
    keys = citation_keys(entries)
    return json.dumps([_csl_item(item, keys[item.id]) for item in entries], ensure_ascii=False, indent=2) + "\n"


# --- CSV --------------------------------------------------------------------------------------
def safe_cell(value: str) -> str:
    """A cell a spreadsheet shows as text: one starting with ``= + - @`` (or tab, CR) gets a leading ``'``."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def to_csv(entries: list[Item]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180
    writer.writerow(CSV_COLUMNS)
    for item in entries:
        p = item.paper
        row = (item.id, p.title if p else "", "; ".join(p.authors) if p else "",
               (p.primary_category or "") if p else "", p.published if p else "", "; ".join(item.tags), item.url)
        writer.writerow([safe_cell(cell) for cell in row])
    return buffer.getvalue()


WRITERS = {"bibtex": to_bibtex, "csljson": to_csl_json, "csv": to_csv}
