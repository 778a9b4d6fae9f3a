"""Author pseudo-users: an author's papers before a cutoff are the library, their papers in the window after it
are the relevant items, and every paper in the window is a candidate.

The pseudo-user's own name is stripped from the features of every paper, in
training and in candidates (``Case.strip``); their co-authors stay. That keeps
the author signal real readers use (the people they follow) without handing
over the answer. Bounds keep the protocol honest: 8-60 papers before the cutoff
(fewer is not a library; more is usually several people sharing one name) and
at least 3 after. Features are fitted on every paper up to the end of the
window, as a live system would have them.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

import numpy as np

from recommender.features import author_key
from recommender.corpus.papers import Paper
from recommender.evaluation.tasks import IDENTITY_STYLE, Case, Task, positions

# Development cutoffs choose settings; test cutoffs are reported once. Windows never overlap across the two.
DEV_CUTOFFS = ("2025-07-01", "2025-08-15", "2025-10-01")
TEST_CUTOFFS = ("2026-01-01", "2026-02-15", "2026-04-01")
WINDOW_DAYS = 90


def build_task(papers: list[Paper], cutoff: dt.date, window_days: int = WINDOW_DAYS, n_users: int = 150,
               seed: int = 0, split: str = "dev", min_before: int = 8, max_before: int = 60,
               min_after: int = 3) -> Task:
    """Pick ``n_users`` eligible authors with a fixed seed. Raises ``ValueError`` if too few qualify.

    ``papers`` must be sorted by (published, id).
    """
    start, end = cutoff.isoformat(), (cutoff + dt.timedelta(days=window_days)).isoformat()
    papers = [p for p in papers if p.published < end]
    before, after = defaultdict(list), defaultdict(list)
    candidates = []
    for row, paper in enumerate(papers):
        in_window = paper.published >= start
        if in_window:
            candidates.append(row)
        for key in {author_key(a, IDENTITY_STYLE) for a in paper.authors} - {""}:
            (after if in_window else before)[key].append(row)
    candidates = np.array(candidates, dtype=np.int64)
    eligible = sorted(k for k, rows in before.items()
                      if min_before <= len(rows) <= max_before and len(after.get(k, ())) >= min_after)
    if len(eligible) < n_users:
        raise ValueError(f"only {len(eligible)} authors qualify at cutoff {cutoff}; ask for fewer users")
    picked = np.random.default_rng(seed).choice(len(eligible), size=n_users, replace=False)
    cases = [Case(eligible[i], np.array(before[eligible[i]], dtype=np.int64), candidates,
                  positions(candidates, after[eligible[i]]), strip=eligible[i]) for i in sorted(picked)]
    return Task("authors", split, start, papers, cases)
