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
_URL_PREFIXES = ("https://arxiv.org/abs/", "http://arxiv.org/abs/", "arxiv:", "arXiv:")


class InvalidArxivId(ValueError):
    """Raised for a string that is not an arXiv identifier."""


def parse_arxiv_id(raw: str) -> tuple[str, int | None]:
    """Split an arXiv id into ``(id_without_version, version_or_None)``.

    Accepts a bare id, ``arXiv:``-prefixed ids and abs URLs. Raises
    :class:`InvalidArxivId` with a message that says what was wrong.
    """
    if not isinstance(raw, str):
        raise InvalidArxivId(f"arXiv id must be text, got {type(raw).__name__}")
    text = raw.strip()
    for prefix in _URL_PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix):]
            break
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
