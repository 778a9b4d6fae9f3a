"""Similar papers against real citations (paperscape 1991-1996, titles only).

For a query paper the relevant items are the papers it cites and the papers
that cite it, within the set. Every other paper is a candidate.
"""
from __future__ import annotations

import dataclasses
import gzip
import json
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

from ..features import FeatureParams, fit_tfidf
from ..ranking import inverted_scores
from .methods import RECIPE_SVM, Method, recipe_features


@dataclasses.dataclass
class CitationTask:
    ids: list[str]
    titles: list[str]
    links: list[np.ndarray]  # per paper: rows it cites or is cited by
    users: list[int]         # query rows
    directed_edges: int      # citations inside the set (A cites B), before symmetrising


def load_task(path: Path, n_queries: int = 300, min_links: int = 3, seed: int = 0) -> CitationTask:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    row = {r["id"]: i for i, r in enumerate(records)}
    neighbours = [set() for _ in records]
    directed = 0
    for i, record in enumerate(records):
        for ref in set(record.get("refs") or ()):
            j = row.get(ref)
            if j is not None and j != i:
                directed += 1
                neighbours[i].add(j)
                neighbours[j].add(i)
    eligible = [i for i, n in enumerate(neighbours) if len(n) >= min_links and records[i]["title"].strip()]
    picked = np.random.default_rng(seed).choice(len(eligible), size=min(n_queries, len(eligible)), replace=False)
    return CitationTask([r["id"] for r in records], [r["title"] for r in records],
                        [np.array(sorted(n), dtype=np.int64) for n in neighbours], sorted(eligible[i] for i in picked),
                        directed)


def _without_self(scores: np.ndarray, query: int) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64).copy()
    scores[query] = -np.inf  # the query is not its own neighbour
    return scores


class CitationRandom(Method):
    name = "random"

    def scores(self, query):
        return _without_self(np.random.default_rng(query).random(len(self.task.ids)), query)


class CitationRecent(Method):
    """Newest first: old-style ids sort by YYMM after the archive prefix."""

    name = "most recent"

    def prepare(self, task):
        super().prepare(task)
        self.order = np.array([int(pid.rsplit("/", 1)[-1][:4]) for pid in task.ids], dtype=np.float64)

    def scores(self, query):
        return _without_self(self.order, query)


class CitationRecipe(Method):
    """arxiv-sanity-lite's similar papers: an SVM with the query as the only positive, over all papers."""

    name = "arxiv-sanity-lite recipe"

    def prepare(self, task):
        super().prepare(task)
        self.X = recipe_features(task.titles)

    def scores(self, query):
        y = np.zeros(self.X.shape[0])
        y[query] = 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            svm = LinearSVC(**RECIPE_SVM).fit(self.X, y)
        return _without_self(svm.decision_function(self.X), query)


class CitationPaperfeed(Method):
    """Paperfeed's similar papers: TF-IDF cosine through the inverted index, as ``ranking.similar`` does."""

    name = "paperfeed"

    def __init__(self, params: FeatureParams = FeatureParams(), name: str = "paperfeed"):
        self.params, self.name = params, name

    def prepare(self, task):
        super().prepare(task)
        self.X = fit_tfidf(task.titles, self.params)[0]
        self.XT = self.X.T.tocsr()

    def scores(self, query):
        return _without_self(inverted_scores(self.XT, self.X[query]), query)
