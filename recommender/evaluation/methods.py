"""The ranking methods compared, each scoring a task's candidates for one pseudo-user.

``paperfeed`` calls the served training code (:func:`recommender.models.fit_user_weights`),
so what is measured is what users get.
"""
from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from ..features import FeatureParams, fit_tfidf, paper_text
from ..models import TrainParams, fit_user_weights
from .authors import AuthorTask, PseudoUser

# arxiv-sanity-lite's compute.py and serve.py settings, reproduced exactly.
RECIPE_TFIDF = dict(strip_accents="unicode", lowercase=True, stop_words="english",
                    token_pattern=r"(?u)\b[a-zA-Z_][a-zA-Z0-9_]+\b", ngram_range=(1, 2), max_features=20000,
                    min_df=5, max_df=0.1, sublinear_tf=True, dtype=np.float32)
RECIPE_SVM = dict(class_weight="balanced", C=0.01, tol=1e-6, max_iter=10000, dual=True)


def recipe_features(texts: list[str]) -> sp.csr_matrix:
    return sp.csr_matrix(TfidfVectorizer(**RECIPE_TFIDF).fit_transform(texts), dtype=np.float32)


class Method:
    name = "method"

    def prepare(self, task: AuthorTask) -> None:
        self.task = task

    def scores(self, user: PseudoUser) -> np.ndarray:
        raise NotImplementedError


class RandomMethod(Method):
    name = "random"

    def scores(self, user):
        return np.random.default_rng(len(user.library)).random(len(self.task.candidates))


class RecentMethod(Method):
    name = "most recent"

    def prepare(self, task):
        super().prepare(task)
        self.dates = task.candidate_dates.astype(np.float64)

    def scores(self, user):
        return self.dates


class _TextMethod(Method):
    """Shares one feature matrix per task between the methods that use Paperfeed's features."""

    _cache: dict = {}

    def features(self, task: AuthorTask, params: FeatureParams) -> sp.csr_matrix:
        key = (id(task), params)
        if key not in self._cache:
            self._cache.clear()
            self._cache[key] = fit_tfidf([paper_text(p, params.title_repeat) for p in task.papers], params)[0]
        return self._cache[key]


class CentroidMethod(_TextMethod):
    name = "centroid"

    def prepare(self, task):
        super().prepare(task)
        self.X = self.features(task, FeatureParams())
        self.Xc = self.X[task.candidates]

    def scores(self, user):
        centroid = np.asarray(self.X[user.library].mean(axis=0)).ravel()
        return self.Xc @ (centroid / (np.linalg.norm(centroid) or 1.0))


class RecipeMethod(Method):
    """arxiv-sanity-lite: its own TF-IDF, LinearSVC(C=0.01) over all papers, library as positives."""

    name = "arxiv-sanity-lite recipe"

    def prepare(self, task):
        super().prepare(task)
        self.X = recipe_features([f"{p.title} {p.abstract}" for p in task.papers])  # no author names here

    def scores(self, user):
        y = np.zeros(self.X.shape[0])
        y[user.library] = 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            svm = LinearSVC(**RECIPE_SVM).fit(self.X, y)
        return svm.decision_function(self.X[self.task.candidates])


class PaperfeedMethod(_TextMethod):
    """Paperfeed's model as served: its features and ``fit_user_weights`` with sampled negatives."""

    def __init__(self, params: TrainParams = TrainParams(), features: FeatureParams = FeatureParams(),
                 name: str = "paperfeed"):
        self.params, self.feature_params, self.name = params, features, name

    def prepare(self, task):
        super().prepare(task)
        self.X = self.features(task, self.feature_params)
        self.Xc = self.X[task.candidates]

    def scores(self, user):
        w, b = fit_user_weights(self.X, user.library, np.empty(0, np.int64), self.params,
                                seed=len(user.library))
        return self.Xc @ w + b
