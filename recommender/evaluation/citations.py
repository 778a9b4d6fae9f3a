"""Similar papers against real citations (paperscape 1991-1996: titles, authors, categories).

For a query paper the relevant items are the papers it cites and the papers
that cite it, within the set; every other paper is a candidate. There are no
abstracts. Author names are part of the data on both sides: they leak nothing
here, since a citation is not defined by a shared name, and arxiv-sanity-lite's
own text has them.

The eligible queries (at least 3 links) are shuffled once with a fixed seed and
cut into folds: folds 0-2 choose settings, folds 3-5 are reported once.
"""
from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import numpy as np

from recommender.corpus.papers import Paper
from recommender.evaluation.tasks import Case, Task

DEV_FOLDS = (0, 1, 2)
TEST_FOLDS = (3, 4, 5)


@dataclasses.dataclass
class CitationData:
    papers: list[Paper]
    links: list[np.ndarray]  # per paper: rows it cites or is cited by
    cites: list[np.ndarray]  # per paper: rows it cites
    eligible: np.ndarray     # query rows in their shuffled order
    directed_edges: int      # citations inside the set (A cites B, A != B), before symmetrising


def _paper(record: dict) -> Paper:
    yymm = record["id"].rsplit("/", 1)[-1][:4]
    year = 1900 + int(yymm[:2]) if int(yymm[:2]) > 90 else 2000 + int(yymm[:2])
    date = f"{year}-{yymm[2:]}-01"
    return Paper(id=record["id"], version=1, title=record.get("title") or "", abstract="",
                 authors=tuple(record.get("authors") or ()), categories=tuple(record.get("categories") or ()),
                 published=date, updated=date)


def load_data(path: Path, min_links: int = 3, seed: int = 0) -> CitationData:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    row = {r["id"]: i for i, r in enumerate(records)}
    neighbours = [set() for _ in records]
    cites = [set() for _ in records]
    for i, record in enumerate(records):
        for ref in set(record.get("refs") or ()):
            j = row.get(ref)
            if j is not None and j != i:
                cites[i].add(j)
                neighbours[i].add(j)
                neighbours[j].add(i)
    eligible = np.array([i for i, n in enumerate(neighbours) if len(n) >= min_links and records[i]["title"].strip()])
    order = np.random.default_rng(seed).permutation(len(eligible))
    as_rows = lambda sets: [np.array(sorted(s), dtype=np.int64) for s in sets]  # noqa: E731
    return CitationData([_paper(r) for r in records], as_rows(neighbours), as_rows(cites), eligible[order],
                        sum(len(c) for c in cites))


def build_task(data: CitationData, fold: int, n_queries: int = 100, split: str = "dev") -> Task:
    """Fold ``fold`` of the shuffled queries; every other paper is a candidate for each query."""
    queries = data.eligible[fold * n_queries:(fold + 1) * n_queries]
    if len(queries) < n_queries:
        raise ValueError(f"fold {fold} of {n_queries} queries needs {(fold + 1) * n_queries} eligible papers, "
                         f"there are {len(data.eligible)}")
    everyone = np.arange(len(data.papers), dtype=np.int64)
    cases = []
    for q in sorted(int(q) for q in queries):
        candidates = np.delete(everyone, q)
        links = data.links[q]
        cases.append(Case(data.papers[q].id, np.array([q]), candidates, links - (links > q)))
    return Task("citations", split, f"fold {fold}", data.papers, cases)
