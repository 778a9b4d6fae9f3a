"""Features for evaluation tasks, built by the served code and cached by content.

The text block is the slow part (a minute at 100k papers), so it is kept on
disk under ``cache_dir``, keyed by the task's papers (a hash of their ids) and
the text parameters: never by object identity. The other blocks are rebuilt
from the same functions ``compute`` uses. Stripping an author for one case
edits the author block in place and restores it afterwards.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from recommender.storage import artifacts
from recommender.features import AUTHORS, FeatureParams, Features, author_matrix, build_features, fit_tfidf, paper_text
from recommender.features.embeddings import EmbeddingStore
from recommender.features.text import sample_fraction
from recommender.evaluation.tasks import Case, Task, strip_author

TEXT_FIELDS = ("max_features", "min_df", "max_df", "ngram_max", "title_repeat")


def _digest(value) -> str:
    return hashlib.sha1(json.dumps(value, sort_keys=True, default=str).encode(), usedforsecurity=False).hexdigest()[:12]


class FeatureCache:
    """Features per (task papers, parameters); at most ``keep`` feature sets stay in memory."""

    def __init__(self, cache_dir: Path | None = None, keep: int = 3, embeddings: Path | None = None):
        self.dir = Path(cache_dir) if cache_dir else None
        self.keep = keep
        self.embeddings = Path(embeddings) if embeddings else (self.dir / "embeddings" if self.dir else None)
        self._store: EmbeddingStore | None = None  # loaded once, on first use
        self._memory: OrderedDict = OrderedDict()

    def _remember(self, key, build):
        if key in self._memory:
            self._memory.move_to_end(key)
            return self._memory[key]
        value = build()
        self._memory[key] = value
        while len(self._memory) > self.keep:
            self._memory.popitem(last=False)
        return value

    def text(self, task: Task, params: FeatureParams):
        """``(X, names, idf)`` of the text block, from disk when a previous run built it."""
        text_params = {f: getattr(params, f) for f in TEXT_FIELDS}
        if sample_fraction(params, len(task.papers)) < 1.0:  # only then does the sample change the text block
            text_params["vocabulary_sample"] = params.vocabulary_sample
        key = ("text", task.key, _digest(text_params))

        def build():
            path = self.dir / f"text-{task.key}-{key[2]}.npz" if self.dir else None
            if path is not None and path.exists():
                a = artifacts.read_npz(path)
                X = sp.csr_matrix((a["data"], a["indices"], a["indptr"]), shape=tuple(a["shape"]))
                return X, a["names"].tolist(), a["idf"]
            X, names, idf = fit_tfidf((paper_text(p, params.title_repeat) for p in task.papers), params)
            if path is not None:
                artifacts.write_npz(path, data=X.data, indices=X.indices, indptr=X.indptr,
                                    shape=np.array(X.shape), names=np.array(names, dtype=str), idf=idf)
            return X, names, idf

        return self._remember(key, build)

    def features(self, task: Task, params: FeatureParams) -> Features:
        key = ("features", task.key, _digest(dataclasses.asdict(params)))
        return self._remember(key, lambda: build_features(task.papers, params, text=self.text(task, params),
                                                          embeddings=self._embeddings(task, params)))

    def _embeddings(self, task: Task, params: FeatureParams):
        """Embeddings of the task's papers; the ones not in the store yet are encoded first (slow, kept)."""
        if params.embedding_weight <= 0:
            return None
        if self.embeddings is None:
            raise ValueError("the embedding block needs --cache-dir to keep its embeddings in")
        if self._store is None:
            self._store = EmbeddingStore(self.embeddings)
        return self._store.vectors(task.papers)

    def recipe(self, task: Task, tfidf: dict, text_of) -> tuple[sp.csr_matrix, TfidfVectorizer]:
        """arxiv-sanity-lite's TF-IDF over ``text_of(paper)``; the vectorizer transforms stripped texts."""
        key = ("recipe", task.key, _digest(tfidf), text_of.__name__)

        def build():
            path = self.dir / f"recipe-{task.key}-{key[2]}-{text_of.__name__}.npz" if self.dir else None
            if path is not None and path.exists():
                a = artifacts.read_npz(path)
                vectorizer = TfidfVectorizer(**{**tfidf, "vocabulary": a["names"].tolist()})
                vectorizer.idf_ = a["idf"].astype(np.float64)
                X = sp.csr_matrix((a["data"], a["indices"], a["indptr"]), shape=tuple(a["shape"]))
                return X, vectorizer
            vectorizer = TfidfVectorizer(**tfidf)
            X = sp.csr_matrix(vectorizer.fit_transform([text_of(p) for p in task.papers]), dtype=np.float32)
            if path is not None:
                artifacts.write_npz(path, data=X.data, indices=X.indices, indptr=X.indptr, shape=np.array(X.shape),
                                    names=np.array(vectorizer.get_feature_names_out(), dtype=str),
                                    idf=vectorizer.idf_)
            return X, vectorizer

        return self._remember(key, build)


@contextlib.contextmanager
def stripped(features: Features, params: FeatureParams, task: Task, case: Case):
    """``features.X`` with ``case.strip`` removed from every paper's author block, restored on exit.

    The new rows are built by the same ``author_matrix`` as ``compute``, from the
    author lists without the name, so they equal features built without it. (With
    ``initials`` names, a column the reader shares with namesakes keeps the idf it
    had with the reader's papers counted: no trace of the reader, but not exact.)
    """
    block = next((b for b in features.blocks if b.name == AUTHORS), None)
    rows = task.rows_of_author(case.strip) if case.strip and block else np.empty(0, np.int64)
    X = features.X
    if not len(rows):
        yield X
        return
    new = author_matrix([strip_author(task.papers[r].authors, case.strip) for r in rows], features.authors,
                        params.author_idf)
    saved = []
    try:
        for i, r in enumerate(rows):
            lo, hi = X.indptr[r], X.indptr[r + 1]
            cols = X.indices[lo:hi]
            at = lo + np.flatnonzero((cols >= block.start) & (cols < block.stop))
            values = dict(zip(new.indices[new.indptr[i]:new.indptr[i + 1]] + block.start,
                              new.data[new.indptr[i]:new.indptr[i + 1]] * np.float32(block.weight)))
            saved.append((at, X.data[at].copy()))
            X.data[at] = [values.get(int(c), 0.0) for c in X.indices[at]]
        yield X
    finally:
        for at, data in saved:
            X.data[at] = data


def stripped_recipe(X: sp.csr_matrix, vectorizer: TfidfVectorizer, task: Task, case: Case, text_of) -> sp.csr_matrix:
    """The recipe's matrix with ``case.strip`` removed from the text of every paper that lists them."""
    rows = task.rows_of_author(case.strip) if case.strip else np.empty(0, np.int64)
    if not len(rows):
        return X
    papers = [dataclasses.replace(task.papers[r], authors=strip_author(task.papers[r].authors, case.strip))
              for r in rows]
    new = sp.csr_matrix(vectorizer.transform([text_of(p) for p in papers]), dtype=np.float32)
    delta = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, np.arange(len(rows)))),
                          shape=(X.shape[0], len(rows))) @ (new - X[rows])
    return (X + delta).tocsr()
