"""arXiv identifier parsing.

New style: ``YYMM.NNNN`` (2007-2014) or ``YYMM.NNNNN`` (2015 on), optional ``vN``.
Old style: ``archive[.SUBJ]/YYMMNNN``, e.g. ``hep-th/9901001`` or ``math.GT/0309136``.
Only ASCII digits count: ``str.isdigit`` accepts '٣', which arXiv never issues.
Versions run from v1 to v9999 (``MAX_VERSION``): a longer number is not an id, and
never reaches ``int()``, which refuses numbers of over 4,300 digits.
"""
from __future__ import annotations

import re

MAX_VERSION = 9999
_VERSION = r"v(?P<v>[1-9][0-9]{0,3})"
_NEW = re.compile(r"(?P<id>(?P<yy>[0-9]{2})(?P<mm>[0-9]{2})\.(?P<num>[0-9]{4,5}))(?:" + _VERSION + ")?", re.ASCII)
_OLD = re.compile(
    r"(?P<id>[a-z]+(?:-[a-z]+)*(?:\.[A-Z]{2})?/(?P<yy>[0-9]{2})(?P<mm>[0-9]{2})[0-9]{3})(?:" + _VERSION + ")?",
    re.ASCII,
)
_VERSION_LABEL = re.compile(_VERSION, re.ASCII)
# An abs, pdf or html page on arxiv.org (any scheme, www. or export.), or an ``arXiv:`` label.
_URL = re.compile(r"(?:https?://)?(?:www\.|export\.)?arxiv\.org/(?:abs|pdf|html)/(?P<rest>[^?#]*?)(?:\.pdf)?/?"
                  r"(?:[?#].*)?", re.ASCII | re.IGNORECASE)
_LABEL = re.compile(r"arxiv:\s*", re.ASCII | re.IGNORECASE)
# Where free text (a journal field, a note, a URL list) names an arXiv paper: the candidate after the marker.
_ID_TEXT = r"(?:[0-9]{4}\.[0-9]{4,5}|[a-z]+(?:-[a-z]+)*(?:\.[A-Z]{2})?/[0-9]{7})(?:v[0-9]+)?"
_MARKERS = re.compile(
    r"(?:arxiv\.org/(?:abs|pdf|html)/|10\.48550/arxiv\.|arxiv:\s*|arxiv\s+preprint\s+(?:arxiv:)?\s*|"
    r"arxiv\s+e-?prints?,?\s+(?:arxiv:)?\s*|\barxiv\s+)(?P<cand>[^\s,;}{\]\[()<>\"']*)",
    re.IGNORECASE)
_BARE_ID = re.compile(r"(?<![\w./-])(?P<cand>" + _ID_TEXT + r")(?![\w/-])", re.ASCII)


class InvalidArxivId(ValueError):
    """Raised for a string that is not an arXiv identifier."""


def parse_arxiv_id(raw: str) -> tuple[str, int | None]:
    """Split an arXiv id into ``(id_without_version, version_or_None)``.

    Accepts a bare id, ``arXiv:``-prefixed ids and abs, pdf or html URLs on arxiv.org (``.pdf`` or not). Raises
    :class:`InvalidArxivId` with a message that says what was wrong.
    """
    if not isinstance(raw, str):
        raise InvalidArxivId(f"arXiv id must be text, got {type(raw).__name__}")
    text = raw.strip()
    url = _URL.fullmatch(text)
    if url:
        text = url["rest"]
    else:
        label = _LABEL.match(text)
        text = text[label.end():] if label else text
    match = _NEW.fullmatch(text)
    if match:
        num = match["num"]
        yymm = int(match["yy"] + match["mm"])
        if len(num) == 5 and yymm < 1501:
            raise InvalidArxivId(f"{raw!r}: five-digit numbers start in 1501")
        if len(num) == 4 and yymm >= 1501:
            raise InvalidArxivId(f"{raw!r}: ids from 1501 on have five digits")
    else:
        match = _OLD.fullmatch(text)
    if not match:
        shown = raw if len(raw) <= 60 else raw[:57] + "..."
        raise InvalidArxivId(f"{shown!r} is not an arXiv id (expected e.g. 2503.01234, 2503.01234v2 or hep-th/9901001)")
    if not 1 <= int(match["mm"]) <= 12:
        raise InvalidArxivId(f"{raw!r}: month {match['mm']} does not exist")
    version = int(match["v"]) if match["v"] else None
    return match["id"], version


def parse_version(label) -> int:
    """A version label such as ``"v3"`` -> 3; :class:`InvalidArxivId` unless it is v1 to v9999."""
    match = _VERSION_LABEL.fullmatch(label) if isinstance(label, str) else None
    if not match:
        shown = repr(label[:20] + ("..." if len(label) > 20 else "")) if isinstance(label, str) \
            else f"a value of type {type(label).__name__}"
        raise InvalidArxivId(f"{shown} is not a version label (expected v1 to v{MAX_VERSION})")
    return int(match["v"])


def normalize_id(raw: str) -> str:
    """The versionless id, or :class:`InvalidArxivId`."""
    return parse_arxiv_id(raw)[0]


def is_valid_id(raw: str) -> bool:
    try:
        parse_arxiv_id(raw)
    except InvalidArxivId:
        return False
    return True


def find_arxiv_id(text: str) -> tuple[str, int | None] | None:
    """The arXiv id that free text names, as ``(id, version)``; None if it names none.

    Looks for the forms reference managers write: an arxiv.org abs/pdf URL, a DOI ``10.48550/arXiv.X``,
    ``arXiv:X``, ``arXiv preprint arXiv:X`` (Google Scholar's journal), ``arXiv e-prints`` (ADS). Raises
    :class:`InvalidArxivId` when the text points at arXiv with something that is not an id
    (``arxiv.org/abs/banana``), so the caller can say why an entry was refused.
    """
    if not isinstance(text, str) or not text:
        return None
    text = text[:4000]  # a field that long is no citation; bound the regex work
    bad = None
    for match in _MARKERS.finditer(text):
        cand = match["cand"].removesuffix(".pdf").rstrip(".")
        try:
            return parse_arxiv_id(cand)
        except InvalidArxivId as exc:
            marker = match.group(0)[:match.start("cand") - match.start()].lower()
            # "arxiv.org/abs/x", "10.48550/arXiv.x" and "arXiv:x" claim an id; "on arXiv and ..." does not.
            if any(strong in marker for strong in ("arxiv.org", "10.48550", "arxiv:")):
                bad = bad or exc
    if bad is not None:
        raise bad
    return None


def find_bare_arxiv_id(text: str) -> tuple[str, int | None] | None:
    """An id standing alone in ``text`` (``1706.03762v5``, ``hep-th/9901001``) with no arXiv marker, or None.
    For fields that hold nothing but an id (Mendeley's ``arxivId``, BibTeX ``eprint``)."""
    if not isinstance(text, str):
        return None
    match = _BARE_ID.search(text[:4000])
    if not match:
        return None
    try:
        return parse_arxiv_id(match["cand"])
    except InvalidArxivId:
        return None
