"""The author block: one column per author with at least ``min_papers`` papers.

Readers follow people: a paper by someone whose work fills your library is a
strong hint, and a plain word count cannot see it (arxiv-sanity pastes names
into its TF-IDF text, where they compete with words for vocabulary slots).

Names are normalised before they are counted, so spellings that differ only in
accents, case or punctuation meet in one column. Two styles:

- ``full``: every name part (``"José García-López"`` -> ``"jose garcia lopez"``);
- ``initials``: first initial and last name (``"j lopez"``), which also joins
  ``"Yann LeCun"`` and ``"Y. LeCun"`` but merges namesakes.

Each row holds ``idf`` (or 1) per known author, l2-normalised, so a
500-author collaboration says little about each of its authors.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np
import scipy.sparse as sp

STYLES = ("full", "initials")
_PARTS = re.compile(r"[^\W\d_]+")
_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv"})


@functools.lru_cache(maxsize=1 << 19)  # names recur across papers: at 2.7M papers this halves compute's scan
def author_key(name: str, style: str = "full") -> str:
    """The normalised form of one author name ('' when nothing is left)."""
    text = unicodedata.normalize("NFKD", name or "")
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    parts = _PARTS.findall(text)
    while len(parts) > 1 and parts[-1] in _SUFFIXES:
        parts.pop()
    if style == "initials" and len(parts) > 1:
        return f"{parts[0][0]} {parts[-1]}"
    return " ".join(parts)


def paper_author_keys(authors: Iterable[str], style: str) -> dict[str, str]:
    """Distinct keys of one paper's authors, each with the spelling it was first seen in."""
    keys: dict[str, str] = {}
    for name in authors:
        key = author_key(name, style)
        if key:
            keys.setdefault(key, name)
    return keys


@dataclasses.dataclass
class AuthorVocabulary:
    """The authors that get a column: their keys, display names and idf."""

    keys: list[str]
    labels: list[str]
    idf: np.ndarray
    style: str = "full"

    def __post_init__(self):
        self.column = {key: i for i, key in enumerate(self.keys)}

    def __len__(self) -> int:
        return len(self.keys)


class AuthorCounter:
    """Counts author keys one paper at a time, so the vocabulary can be fitted while papers stream past."""

    def __init__(self, style: str = "full"):
        if style not in STYLES:
            raise ValueError(f"author name style must be one of {', '.join(STYLES)}, got {style!r}")
        self.style = style
        self.papers_of: Counter = Counter()
        self.spellings: Counter = Counter()
        self.n_docs = 0

    def add(self, authors: Sequence[str]) -> None:
        self.n_docs += 1
        for key, name in paper_author_keys(authors, self.style).items():
            self.papers_of[key] += 1
            self.spellings[key, name] += 1

    def vocabulary(self, min_papers: int) -> AuthorVocabulary:
        """Authors with at least ``min_papers`` papers; the label is their most frequent spelling."""
        papers_of = self.papers_of
        keys = sorted(k for k, n in papers_of.items() if n >= min_papers)
        best: dict[str, tuple[int, str]] = {}
        for (key, name), n in self.spellings.items():
            if papers_of[key] >= min_papers and (n, name) > best.get(key, (0, "")):
                best[key] = (n, name)
        idf = np.array([math.log((1 + self.n_docs) / (1 + papers_of[k])) + 1 for k in keys], dtype=np.float32)
        return AuthorVocabulary(keys, [best[k][1] for k in keys], idf, self.style)


def fit_authors(author_lists: Sequence[Sequence[str]], min_papers: int, style: str = "full") -> AuthorVocabulary:
    """Authors with at least ``min_papers`` papers; the label is their most frequent spelling."""
    counter = AuthorCounter(style)
    for authors in author_lists:
        counter.add(authors)
    return counter.vocabulary(min_papers)


def author_matrix(author_lists: Sequence[Sequence[str]], vocab: AuthorVocabulary, use_idf: bool = True,
                  drop: str | None = None) -> sp.csr_matrix:
    """Rows l2-normalised over the known authors of each paper; ``drop`` leaves one author key out."""
    indptr, indices, data = [0], [], []
    for authors in author_lists:
        cols = sorted(vocab.column[k] for k in paper_author_keys(authors, vocab.style)
                      if k in vocab.column and k != drop)
        values = vocab.idf[cols] if use_idf else np.ones(len(cols), np.float32)
        norm = float(np.sqrt(np.dot(values, values))) or 1.0
        indices.extend(cols)
        data.extend((values / norm).tolist())
        indptr.append(len(indices))
    return sp.csr_matrix((np.array(data, np.float32), np.array(indices, np.int32), np.array(indptr, np.int64)),
                         shape=(len(author_lists), len(vocab)))
