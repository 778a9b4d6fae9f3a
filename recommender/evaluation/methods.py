"""The ranking methods compared. Each scores one case's candidates.

``Paperfeed`` calls the served training code (:func:`recommender.learning.models.fit_user_weights`)
on features built by the served :func:`recommender.features.build_features`, with the
configured settings unless a tuning run overrides them: what is measured is what
users get. ``Recipe`` is arxiv-sanity-lite, reproduced exactly (see RECIPE_*).
"""
from __future__ import annotations

import dataclasses
import warnings
import zlib

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

from recommender.features import FeatureParams
from recommender.learning.models import TrainParams, fit_user_weights, hard_pool_end
from recommender.learning.ranking import inverted_scores, similar_query
from recommender.features import block_scale, similar_weights
from recommender.evaluation.cache import FeatureCache, stripped, stripped_recipe
from recommender.evaluation.tasks import Case, Task

# arxiv-sanity-lite's compute.py (TfidfVectorizer arguments) and serve.py (LinearSVC), as the project runs them.
# It pins scikit-learn 1.0.1, whose LinearSVC defaults to dual=True; today's default ("auto") would pick the
# primal solver on a corpus with more papers than features, so dual=True is spelled out.
RECIPE_TFIDF = dict(strip_accents="unicode", lowercase=True, analyzer="word", stop_words="english",
                    token_pattern=r"(?u)\b[a-zA-Z_][a-zA-Z0-9_]+\b", ngram_range=(1, 2), max_features=20000,
                    norm="l2", use_idf=True, smooth_idf=True, sublinear_tf=True, max_df=0.1, min_df=5,
                    dtype=np.float32)
RECIPE_SVM = dict(class_weight="balanced", C=0.01, tol=1e-6, max_iter=10000, dual=True)


def lite_text(paper) -> str:
    """lite's compute.py: ``' '.join([title, summary, author_str])``, the names joined by spaces."""
    return " ".join([paper.title, paper.abstract, " ".join(paper.authors)])


def lite_text_without_authors(paper) -> str:
    return " ".join([paper.title, paper.abstract])


def case_seed(case: Case) -> int:
    return zlib.crc32(case.id.encode())


class Method:
    name = "method"

    def prepare(self, task: Task, cache: FeatureCache) -> None:
        self.task = task

    def scores(self, case: Case) -> np.ndarray:
        raise NotImplementedError

    def config(self) -> dict:
        return {}


class RandomMethod(Method):
    name = "random"

    def scores(self, case):
        return np.random.default_rng(case_seed(case)).random(len(case.candidates))


class RecentMethod(Method):
    name = "most recent"

    def prepare(self, task, cache):
        super().prepare(task, cache)
        self.days = np.array([np.datetime64(p.published, "D").astype(np.int64) for p in task.papers], np.float64)

    def scores(self, case):
        return self.days[case.candidates]


class Recipe(Method):
    """arxiv-sanity-lite: its TF-IDF, then ``LinearSVC`` over every paper with the library as positives.

    For similar papers lite runs the same SVM with the query paper as the only positive.
    """

    def __init__(self, name: str = "arxiv-sanity-lite", tfidf: dict | None = None, C: float = RECIPE_SVM["C"],
                 text_of=lite_text):
        self.name, self.tfidf, self.C, self.text_of = name, {**RECIPE_TFIDF, **(tfidf or {})}, C, text_of

    def prepare(self, task, cache):
        super().prepare(task, cache)
        self.X, self.vectorizer = cache.recipe(task, self.tfidf, self.text_of)

    def scores(self, case):
        X = stripped_recipe(self.X, self.vectorizer, self.task, case, self.text_of)
        y = np.zeros(X.shape[0])
        y[case.positives] = 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            svm = LinearSVC(**{**RECIPE_SVM, "C": self.C}).fit(X, y)
        return svm.decision_function(X[case.candidates])

    def config(self):
        tfidf = {k: v for k, v in self.tfidf.items() if k in ("max_features", "min_df", "max_df")}
        return {"C": self.C, "text": self.text_of.__name__, **tfidf}


class Paperfeed(Method):
    """The served model: Paperfeed's feature blocks and ``fit_user_weights``."""

    def __init__(self, name: str = "paperfeed", features: FeatureParams | None = None,
                 train: TrainParams | None = None):
        self.name = name
        self.feature_params = features or FeatureParams()
        self.train_params = train or TrainParams()

    def prepare(self, task, cache):
        super().prepare(task, cache)
        self.features = cache.features(task, self.feature_params)
        self.days = np.array([np.datetime64(p.published, "D").astype(np.int64) for p in task.papers])

    def fit(self, X, case: Case, extra_negatives=None):
        extra = np.empty(0, np.int64) if extra_negatives is None else extra_negatives
        return fit_user_weights(X, case.positives, extra, self.train_params, seed=case_seed(case),
                                hard_pool=hard_pool_end(self.days, case.positives))

    def scores(self, case):
        with stripped(self.features, self.feature_params, self.task, case) as X:
            w, b = self.fit(X, case)
            return X[case.candidates] @ w + b

    def config(self):
        return {**dataclasses.asdict(self.feature_params), **dataclasses.asdict(self.train_params)}


class PaperfeedSimilar(Paperfeed):
    """Similar papers as served: the weighted block cosine through the inverted index (``ranking.similar``)."""

    def prepare(self, task, cache):
        super().prepare(task, cache)
        self.XT = self.features.X.T.tocsr()
        self.scale = block_scale(self.features.blocks, similar_weights(self.feature_params))

    def scores(self, case):
        query = similar_query(self.features.X, int(case.positives[0]), self.scale)
        return inverted_scores(self.XT, query)[case.candidates]


class PaperfeedFeedback(Paperfeed):
    """Explicit feedback, simulated: the reader marks the ``marks`` best-ranked papers of a first feed that
    they would not pick as "not interested".

    Both variants hide the marked papers, as the served feed does, so the
    difference between them is what retraining on the marks (``retrain``) adds.
    """

    def __init__(self, name: str, features: FeatureParams | None = None, train: TrainParams | None = None,
                 marks: int = 10, retrain: bool = True):
        super().__init__(name, features, train)
        self.marks, self.retrain = marks, retrain

    def scores(self, case):
        with stripped(self.features, self.feature_params, self.task, case) as X:
            Xc = X[case.candidates]
            w, b = self.fit(X, case)
            first = Xc @ w + b
            relevant = set(case.relevant.tolist())
            marked = np.array([i for i in np.argsort(-first, kind="stable")[:self.marks + len(relevant)]
                               if i not in relevant][:self.marks], dtype=np.int64)
            scores = first
            if self.retrain:
                w, b = self.fit(X, case, extra_negatives=case.candidates[marked])
                scores = Xc @ w + b
            scores = scores.astype(np.float64)
            scores[marked] = -np.inf
            return scores

    def config(self):
        return {**super().config(), "marks": self.marks, "retrain": self.retrain}

