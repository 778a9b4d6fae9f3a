"""A real curator: the "ML papers of the week" list (dair-ai), weeks from April to June 2025.

For each week, the library is every pick of the earlier weeks that is in the
corpus, and the candidates are the papers published from 13 days before the
week starts to its end (the list picks papers up to 12 days old and up to 4
days newer than its week label). The relevant items are that week's picks.
It is small (5 to 10 picks a week), so every week is reported, with the spread.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from recommender.corpus.papers import Paper
from recommender.evaluation.tasks import Case, Task, positions

# Weeks with at least 20 earlier picks in the corpus; the first five choose settings, the rest are reported once.
DEV_WEEKS = ("2025-04-14", "2025-04-21", "2025-04-28", "2025-05-05", "2025-05-12")
TEST_WEEKS = ("2025-05-19", "2025-05-26", "2025-06-02", "2025-06-09", "2025-06-16", "2025-06-23")
BEFORE_DAYS, AFTER_DAYS = 13, 7


@dataclasses.dataclass(frozen=True)
class Pick:
    week: str
    arxiv_id: str


def load_picks(path: Path) -> list[Pick]:
    picks = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                picks.append(Pick(record["week_start"], record["arxiv_id"]))
    return picks


def build_task(papers: list[Paper], picks: list[Pick], weeks: tuple[str, ...], split: str = "dev") -> Task:
    """One task for a run of weeks; features are fitted on every paper up to the end of the last week."""
    end = (dt.date.fromisoformat(max(weeks)) + dt.timedelta(days=AFTER_DAYS)).isoformat()
    papers = [p for p in papers if p.published < end]
    row_of = {p.id: i for i, p in enumerate(papers)}
    by_week = defaultdict(list)
    for pick in picks:
        if pick.arxiv_id in row_of:
            by_week[pick.week].append(row_of[pick.arxiv_id])
    dates = np.array([p.published for p in papers])
    cases = []
    for week in weeks:
        monday = dt.date.fromisoformat(week)
        lo = np.searchsorted(dates, (monday - dt.timedelta(days=BEFORE_DAYS)).isoformat(), "left")
        hi = np.searchsorted(dates, (monday + dt.timedelta(days=AFTER_DAYS)).isoformat(), "left")
        library = np.array(sorted(r for w, rows in by_week.items() if w < week for r in rows), dtype=np.int64)
        candidates = np.setdiff1d(np.arange(lo, hi), library)
        relevant = [r for r in by_week.get(week, ()) if lo <= r < hi and r not in set(library)]
        if len(library) and relevant:
            cases.append(Case(f"week {week}", library, candidates, positions(candidates, relevant)))
    if not cases:
        raise ValueError(f"no curator week in {weeks[0]}..{weeks[-1]} has picks in the corpus")
    return Task("curator", split, f"{weeks[0]}..{weeks[-1]}", papers, cases)
