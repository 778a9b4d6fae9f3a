"""Citing readers: what a researcher cites is what they read, so their citations make a library.

For an author A (paperscape 1991-1996, titles only) and a cutoff, the library is
every paper that A's papers published before the cutoff cite; the relevant
items are the papers of the six months after the cutoff that A's later papers cite;
every paper in the window is a candidate. A's own papers are left out of all
three, and A's name is stripped from every paper's features (``Case.strip``),
so a self-citation cannot be found by name. Co-authors and the groups A
follows stay: this is the author signal of a real reader, measured on real
reading behaviour rather than on authorship.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

import numpy as np

from recommender.features import author_key
from recommender.evaluation.citations import CitationData
from recommender.evaluation.tasks import IDENTITY_STYLE, Case, Task, positions

DEV_CUTOFFS = ("1994-01-01", "1994-07-01", "1995-01-01")
TEST_CUTOFFS = ("1995-07-01", "1995-10-01", "1996-01-01")
WINDOW_MONTHS = 6  # paperscape dates are months, so windows are whole months: dev windows end where test starts


def add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def build_task(data: CitationData, cutoff: dt.date, n_users: int = 150, seed: int = 0, split: str = "dev",
               window_months: int = WINDOW_MONTHS, min_library: int = 8, min_relevant: int = 3) -> Task:
    """Pick ``n_users`` eligible citing authors with a fixed seed. Raises ``ValueError`` if too few qualify."""
    start, end = cutoff.isoformat(), add_months(cutoff, window_months).isoformat()
    order = sorted(range(len(data.papers)), key=lambda i: (data.papers[i].published, data.papers[i].id))
    order = [i for i in order if data.papers[i].published < end]
    papers = [data.papers[i] for i in order]
    new_row = {old: new for new, old in enumerate(order)}
    own, library, relevant = defaultdict(set), defaultdict(set), defaultdict(set)
    for old, row in new_row.items():
        for key in {author_key(a, IDENTITY_STYLE) for a in data.papers[old].authors} - {""}:
            own[key].add(row)
    for old in range(len(data.papers)):
        citing = data.papers[old]
        keys = {author_key(a, IDENTITY_STYLE) for a in citing.authors} - {""}
        for cited_old in data.cites[old]:
            cited = new_row.get(int(cited_old))
            if cited is None:
                continue
            if citing.published < start and papers[cited].published < start:
                target = library
            elif citing.published >= start and papers[cited].published >= start:
                target = relevant
            else:
                continue
            for key in keys:
                target[key].add(cited)
    window = np.array([r for r, p in enumerate(papers) if p.published >= start], dtype=np.int64)
    task = Task("readers", split, start, papers, [])
    mine = {}
    for k in sorted(library):
        if len(library[k] - own[k]) >= min_library and len(relevant[k] - own[k]) >= min_relevant:
            mine[k] = set(task.rows_of_author(k).tolist())  # every spelling of the reader's name
    eligible = [k for k, rows in mine.items()
                if len(library[k] - rows) >= min_library and len(relevant[k] - rows) >= min_relevant]
    if len(eligible) < n_users:
        raise ValueError(f"only {len(eligible)} citing readers qualify at cutoff {cutoff}; ask for fewer users")
    picked = np.random.default_rng(seed).choice(len(eligible), size=n_users, replace=False)
    for key in (eligible[i] for i in sorted(picked)):
        candidates = np.setdiff1d(window, np.array(sorted(mine[key]), dtype=np.int64))
        task.cases.append(Case(key, np.array(sorted(library[key] - mine[key]), dtype=np.int64), candidates,
                               positions(candidates, relevant[key] - mine[key]), strip=key))
    return task
