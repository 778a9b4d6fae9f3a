"""What every protocol hands the methods: a corpus, and cases to rank.

A *case* is one reader at one moment (an author pseudo-user at a cutoff, a
curator's week, a query paper): the papers they already hold (``positives``),
the papers to rank (``candidates``) and which of those they went on to pick
(``relevant``, positions in ``candidates``). ``strip`` names an author whose
name is removed from every paper's features for that case, so an author
pseudo-user is not found by their own name.
"""
from __future__ import annotations

import dataclasses
import hashlib
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from recommender.features import author_key
from recommender.corpus.ingest import read_snapshot
from recommender.corpus.papers import Paper

IDENTITY_STYLE = "full"  # how pseudo-users are told apart (and stripped), whatever style the features use


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    positives: np.ndarray   # rows of the task's papers: the reader's library
    candidates: np.ndarray  # rows to rank
    relevant: np.ndarray    # positions in ``candidates`` that the reader picked
    strip: str | None = None  # an author key removed from all features for this case


@dataclasses.dataclass
class Task:
    """One protocol at one cutoff (or one fold): the papers features are fitted on, and the cases."""

    protocol: str
    split: str            # "dev" or "test"
    name: str             # the cutoff date, week or fold
    papers: list[Paper]
    cases: list[Case]

    @property
    def key(self) -> str:
        """A content key for caches: the same papers in the same order give the same key."""
        digest = hashlib.sha1("\n".join(p.id for p in self.papers).encode(), usedforsecurity=False).hexdigest()[:16]
        return f"{self.protocol}-{len(self.papers)}-{digest}"

    def rows_of_author(self, key: str) -> np.ndarray:
        """Rows of the papers that list any spelling of the author ``key`` (see :func:`same_author`)."""
        if not hasattr(self, "_by_surname"):
            index = defaultdict(list)
            for row, paper in enumerate(self.papers):
                for k in {_surname(author_key(a, IDENTITY_STYLE)) for a in paper.authors}:
                    index[k].append(row)
            self._by_surname = index
        rows = self._by_surname.get(_surname(key), ())
        return np.array([r for r in rows if len(strip_author(self.papers[r].authors, key))
                         < len(self.papers[r].authors)], dtype=np.int64)


def _surname(key: str) -> str:
    return key.rsplit(" ", 1)[-1]


def same_author(key: str, name: str) -> bool:
    """Whether ``name`` may be the author ``key``: same last name, and first names that agree where both
    are spelled out ("J. Smith" and "John A. Smith" may be "john smith"; "Jane Smith" is not).

    Stripping every such spelling keeps a pseudo-user's variant spellings from leaking their identity.
    """
    other = author_key(name, IDENTITY_STYLE)
    if other == key:
        return True
    a, b = key.split(), other.split()
    if len(a) < 2 or len(b) < 2 or a[-1] != b[-1]:
        return False
    first_a, first_b = a[0], b[0]
    if len(first_a) == 1 or len(first_b) == 1:
        return first_a[0] == first_b[0]
    return first_a == first_b


def strip_author(authors: Sequence[str], key: str | None) -> tuple[str, ...]:
    """The author list without every spelling of ``key``."""
    if key is None:
        return tuple(authors)
    return tuple(a for a in authors if not same_author(key, a))


def load_corpus(path: Path) -> list[Paper]:
    """Every readable paper of a snapshot file, sorted by (published, id); bad lines are skipped."""
    papers = [paper for _, paper, _ in read_snapshot(path) if paper is not None]
    papers.sort(key=lambda p: (p.published, p.id))
    return papers


def positions(candidates: np.ndarray, rows) -> np.ndarray:
    """Positions in sorted ``candidates`` of the given rows (all must be candidates)."""
    return np.searchsorted(candidates, np.sort(np.asarray(list(rows), dtype=np.int64)))
