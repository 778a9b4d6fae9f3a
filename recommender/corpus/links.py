"""Web links in a paper's abstract and comments: code repositories, model hubs and project pages.

Pure functions over text, cheap enough to run on every page of a list (O(text)). arXiv
abstracts write links in many ways, all seen in the corpus: bare (``https://github.com/a/b.``,
where the full stop ends the sentence), in parentheses (``(https://github.com/a/b).``), in LaTeX
(``\\url{...}``, ``\\href{url}{text}``), with a space or line break after the scheme
(``https:// github.com/a/b``) and without a scheme (``www.example.org``).
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

#: Kinds of link, in the order :func:`code_url` prefers them.
CODE_KINDS = ("github", "gitlab", "bitbucket", "codeberg")
KINDS = (*CODE_KINDS, "huggingface", "project", "web")

# A scheme (whitespace after it is a line break or a typo, when a host follows), or a bare ``www.``.
# The body stops at whitespace, quotes, angle brackets, braces (``\url{...}``) and backslashes.
_URL = re.compile(
    r"(?<![\w@/.])(?:(?P<scheme>https?)://\s*(?=[\w-]+(?:\.[\w-]+)+)|(?=www\.[\w-]+\.[a-z]))"
    r"(?P<body>[^\s<>\"'{}\\|^`$]+)", re.IGNORECASE)
_TRAILING = ".,;:!?*'\""
_HOST = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)+", re.ASCII)
_IGNORED_HOSTS = ("arxiv.org",)


@dataclasses.dataclass(frozen=True)
class Link:
    """One link: the normalised ``url`` (http or https) and its ``kind`` (one of :data:`KINDS`)."""

    url: str
    kind: str

    @property
    def is_code(self) -> bool:
        return self.kind in CODE_KINDS


def _trim(body: str) -> str:
    """Drop the sentence punctuation a URL ends with, and closing brackets that close outside it.

    The bracket balance is counted once and kept as characters are dropped (linear, whatever the tail)."""
    opened = {")": body.count("("), "]": body.count("[")}
    closed = {")": body.count(")"), "]": body.count("]")}
    end = len(body)
    while end:
        last = body[end - 1]
        if last in _TRAILING:
            end -= 1
        elif last in closed and closed[last] > opened[last]:
            closed[last] -= 1
            end -= 1
        else:
            break
    return body[:end]


def _spans(text: str) -> Iterator[tuple[int, int, str]]:
    """``(start, end, url)`` for every link in ``text``: the span as written, the URL normalised."""
    for m in _URL.finditer(text or ""):
        body = _trim(m.group("body"))
        scheme = (m.group("scheme") or "https").lower()
        url = f"{scheme}://{body}"
        host = _host(url)
        if not host or not _HOST.fullmatch(host):
            continue
        yield m.start(), m.start("body") + len(body), url


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def classify(url: str) -> str | None:
    """The kind of ``url`` (see :data:`KINDS`), or None for links to arXiv itself."""
    host = _host(url)
    if host.startswith("www."):
        host = host[4:]
    if any(host == h or host.endswith("." + h) for h in _IGNORED_HOSTS):
        return None
    parts = [p for p in urlsplit(url).path.split("/") if p]
    repo = len(parts) >= 2
    if host == "github.com":
        return "github" if repo else "web"
    if host == "gitlab.com" or host.startswith("gitlab."):
        return "gitlab" if repo else "web"
    if host == "bitbucket.org":
        return "bitbucket" if repo else "web"
    if host == "codeberg.org":
        return "codeberg" if repo else "web"
    if host == "huggingface.co" or host == "hf.co":
        return "huggingface"
    if host.endswith((".github.io", ".gitlab.io")) or host.startswith(("sites.google.", "project")):
        return "project"
    return "web"


def find_links(*texts: str | None) -> list[Link]:
    """Every distinct link in the texts (abstract, comments), in order of appearance; arXiv links left out."""
    seen: dict[str, Link] = {}
    for text in texts:
        for _, _, url in _spans(text or ""):
            kind = classify(url)
            key = url.rstrip("/").lower()
            if kind is not None and key not in seen:
                seen[key] = Link(url, kind)
    return list(seen.values())


def code_url(links: list[Link]) -> str | None:
    """The paper's code: its first repository link (GitHub first, then GitLab, Bitbucket, Codeberg)."""
    for kind in CODE_KINDS:
        for link in links:
            if link.kind == kind:
                return link.url
    return None


def split_urls(text: str) -> list[tuple[str, str | None]]:
    """``text`` cut into ``(piece, url)`` pairs: ``url`` is None for plain text, else the link the piece
    shows. Joining the pieces gives ``text`` back, so a caller can escape each piece and wrap the links."""
    out: list[tuple[str, str | None]] = []
    at = 0
    for start, end, url in _spans(text or ""):
        if start > at:
            out.append((text[at:start], None))
        out.append((text[start:end], url))
        at = end
    if at < len(text or ""):
        out.append((text[at:], None))
    return out
