"""Author pseudo-users: an author's papers before a cutoff are the library, their papers in the window after it
are the relevant items, and every paper in the window is a candidate.

Bounds keep the protocol honest: 8-60 papers before the cutoff (fewer is not a
library; more is usually several people sharing one name) and at least 3 after.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..ingest import read_snapshot
from ..papers import Paper


@dataclasses.dataclass(frozen=True)
class PseudoUser:
    name: str
    library: np.ndarray   # corpus rows (all before the cutoff)
    relevant: np.ndarray  # positions in the candidate list


@dataclasses.dataclass
class AuthorTask:
    papers: list[Paper]      # every paper published before the window ends, sorted by date
    candidates: np.ndarray   # corpus rows of the papers in the window
    users: list[PseudoUser]
    cutoff: dt.date
    window_days: int

    @property
    def candidate_dates(self) -> np.ndarray:
        return np.array([dt.date.fromisoformat(self.papers[r].published).toordinal() for r in self.candidates])


def load_corpus(path: Path) -> list[Paper]:
    """Every readable paper of a snapshot file, sorted by (published, id); bad lines are skipped."""
    papers = [paper for _, paper, _ in read_snapshot(path) if paper is not None]
    papers.sort(key=lambda p: (p.published, p.id))
    return papers


def build_task(papers: list[Paper], cutoff: dt.date, window_days: int = 90, n_users: int = 100, seed: int = 0,
               min_before: int = 8, max_before: int = 60, min_after: int = 3) -> AuthorTask:
    """Pick ``n_users`` eligible authors with a fixed seed. Raises ``ValueError`` if too few qualify."""
    end = (cutoff + dt.timedelta(days=window_days)).isoformat()
    start = cutoff.isoformat()
    papers = [p for p in papers if p.published < end]
    before, after = defaultdict(list), defaultdict(list)
    candidates = []
    for row, paper in enumerate(papers):
        in_window = paper.published >= start
        if in_window:
            candidates.append(row)
        for name in set(paper.authors):
            (after if in_window else before)[name].append(row)
    position = {row: i for i, row in enumerate(candidates)}
    eligible = sorted(name for name, rows in before.items()
                      if min_before <= len(rows) <= max_before and len(after.get(name, ())) >= min_after)
    if len(eligible) < n_users:
        raise ValueError(f"only {len(eligible)} authors qualify at cutoff {cutoff}; ask for fewer users")
    picked = np.random.default_rng(seed).choice(len(eligible), size=n_users, replace=False)
    users = [PseudoUser(eligible[i], np.array(before[eligible[i]]),
                        np.array(sorted(position[r] for r in after[eligible[i]]))) for i in sorted(picked)]
    return AuthorTask(papers, np.array(candidates), users, cutoff, window_days)
