"""Per-user linear SVMs: one per tag plus one for the whole library.

Positives are the tagged papers. Negatives are the user's "not interested"
papers (always) plus a seeded random sample of the rest, which bounds the cost
at ``max_negatives`` rows whatever the corpus size. Models are saved as npz
(weights, bias, ranked rows) tied to the feature generation they were trained on.
"""
from __future__ import annotations

import dataclasses
import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

from . import artifacts
from .index import FeatureIndex
from .ranking import top_rows, window_matvec
from .settings import Settings, default

ALL = "__all__"  # the model over the whole library
HARD_NEGATIVE_MARGIN_DAYS = 30


@dataclasses.dataclass(frozen=True)
class TrainParams:
    """How user models are fitted. Defaults come from the settings table (``recommender.settings``)."""

    C: float = default("svm_c")
    max_negatives: int = default("max_negatives")
    keep: int = default("keep_recommendations")
    hard_negatives: int = 0  # a second fit with this many hard negatives (see fit_user_weights)
    centroid_weight: float = 0.0  # blend of the library centroid into the SVM weights (see fit_user_weights)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides) -> "TrainParams":
        """The configured parameters (what ``train`` and the web app use), with overrides on top."""
        values = dict(C=settings.svm_c, max_negatives=settings.max_negatives, keep=settings.keep_recommendations)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclasses.dataclass
class UserModel:
    """Fitted weights for one user. Row ``i`` of ``W`` is the model for ``tags[i]``."""

    user_id: int
    generation: str
    tags_version: int
    trained_at: float
    tags: list[str]
    W: np.ndarray           # (n_models, n_features) float32
    b: np.ndarray           # (n_models,) float32
    top: np.ndarray         # (n_models, keep) int32 rows, best first, positives excluded; -1 pads
    top_scores: np.ndarray  # (n_models, keep) float32

    def weights(self, tags: list[str] | None = None) -> tuple[np.ndarray, float]:
        """The weight vector and bias for one tag, several (averaged) or the whole library (None)."""
        names = tags or [ALL]
        missing = [t for t in names if t not in self.tags]
        if missing:
            raise KeyError(f"no model for tag {missing[0]!r}")
        rows = [self.tags.index(t) for t in names]
        return self.W[rows].mean(axis=0), float(self.b[rows].mean())

    def save(self, path: Path) -> None:
        artifacts.write_npz(
            path, W=self.W, b=self.b, top=self.top, top_scores=self.top_scores, tags=np.array(self.tags, dtype=str),
            meta=np.array([self.generation, str(self.user_id), str(self.tags_version), repr(self.trained_at)]),
        )

    @classmethod
    def load(cls, path: Path) -> "UserModel":
        a = artifacts.read_npz(path)
        generation, user_id, tags_version, trained_at = a["meta"].tolist()
        return cls(int(user_id), generation, int(tags_version), float(trained_at), a["tags"].tolist(),
                   a["W"], a["b"], a["top"], a["top_scores"])


def model_path(models_dir: Path, user_id: int) -> Path:
    return Path(models_dir) / "users" / f"{int(user_id)}.npz"


def load_user_model(models_dir: Path, user_id: int) -> UserModel | None:
    path = model_path(models_dir, user_id)
    return UserModel.load(path) if path.exists() else None


def _rows(index: FeatureIndex, pids) -> np.ndarray:
    """Rows of the ids present in this generation; unknown ids are ignored, never fatal."""
    return np.array(sorted({index.row_of[p] for p in pids if p in index.row_of}), dtype=np.int64)


def sample_negatives(n_rows: int, exclude: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Up to ``k`` distinct random rows not in ``exclude``."""
    rng = np.random.default_rng(seed)
    if n_rows - len(exclude) <= k:
        return np.setdiff1d(np.arange(n_rows), exclude)
    draw = rng.choice(n_rows, size=min(n_rows, k + len(exclude)), replace=False)
    return np.setdiff1d(draw, exclude)[:k]


def fit_svm(X, pos: np.ndarray, neg: np.ndarray, C: float) -> tuple[np.ndarray, float]:
    """``LinearSVC(class_weight="balanced", dual=True)`` on the given rows; returns ``(w, b)``."""
    rows = np.concatenate([pos, neg])
    y = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    svm = LinearSVC(C=C, class_weight="balanced", dual=True, tol=1e-4, max_iter=2000, random_state=0)
    with warnings.catch_warnings():
        # A capped iteration count is a deliberate speed bound; the ranking is stable long before.
        warnings.simplefilter("ignore", ConvergenceWarning)
        svm.fit(X[rows], y)
    return svm.coef_.ravel().astype(np.float32), float(svm.intercept_[0])


def hard_pool_end(dates: np.ndarray, pos: np.ndarray, margin_days: int = HARD_NEGATIVE_MARGIN_DAYS) -> int:
    """Rows below this end may give hard negatives: papers at least ``margin_days`` older than the newest
    positive (rows are date-sorted), which the reader had time to see, and never this week's feed."""
    return int(np.searchsorted(dates, dates[int(pos.max())] - margin_days, "left"))


def fit_user_weights(X, pos: np.ndarray, extra_negatives: np.ndarray, params: TrainParams,
                     seed: int, hard_pool: int = 0) -> tuple[np.ndarray, float]:
    """The served model for one set of positives: ``(w, b)`` with score ``X @ w + b``.

    Negatives are ``extra_negatives`` (explicit "not interested", the user's other
    tags) plus a seeded sample of the rest. With ``hard_negatives`` a second fit
    adds the best-scoring papers of the first among rows ``0..hard_pool`` (see
    :func:`hard_pool_end`). With ``centroid_weight`` the unit centroid of the
    positives is added to the SVM weights, scaled to their norm. Either way it
    stays one linear model, so serving stays one mat-vec.
    """
    sampled = sample_negatives(X.shape[0], np.union1d(pos, extra_negatives), params.max_negatives, seed)
    negatives = np.union1d(sampled, extra_negatives)
    w, b = fit_svm(X, pos, negatives, params.C)
    if params.hard_negatives and hard_pool > 0:
        hard = _hard_negatives(X, w, pos, negatives, params.hard_negatives, hard_pool)
        w, b = fit_svm(X, pos, np.union1d(negatives, hard), params.C)
    if params.centroid_weight:
        centroid = np.asarray(X[pos].mean(axis=0)).ravel()
        centroid /= np.linalg.norm(centroid) or 1.0
        w = (w + params.centroid_weight * np.linalg.norm(w) * centroid).astype(np.float32)
    return w, b


def _hard_negatives(X, w: np.ndarray, pos: np.ndarray, negatives: np.ndarray, k: int, end: int) -> np.ndarray:
    """The ``k`` best-scoring rows below ``end`` that are neither positives nor negatives."""
    scores = window_matvec(X, 0, end, w)
    scores[pos[pos < end]] = -np.inf
    scores[negatives[negatives < end]] = -np.inf
    rows, _ = top_rows(scores, 0, None, min(k, end) or 1)
    return rows[np.isfinite(scores[rows])] if len(rows) else rows


def train_user(index: FeatureIndex, user_id: int, tags: dict[str, list[str]], not_interested: list[str],
               tags_version: int, params: TrainParams = TrainParams(), n_jobs: int = 1) -> UserModel | None:
    """Fit the user's models (one per tag and one for the whole library, on ``n_jobs`` threads: liblinear
    and the sparse mat-vec release the GIL). Returns None when the library has no paper in this generation.

    liblinear shares one random generator per process, so fits running at the same time (here, or several
    users in ``train``) can differ from a serial fit in the last digits; the rankings do not change in practice.
    """
    library = _rows(index, [p for ids in tags.values() for p in ids])
    if len(library) == 0:
        return None
    hard = np.setdiff1d(_rows(index, not_interested), library)
    groups = {ALL: library}
    groups.update((tag, _rows(index, ids)) for tag, ids in sorted(tags.items()))
    groups = {tag: rows for tag, rows in groups.items() if len(rows)}
    excluded = np.zeros(len(index), dtype=bool)
    excluded[library] = excluded[hard] = True

    def fit(pos: np.ndarray):
        # Other tags' papers are negatives for this tag: they are what the user did not file here.
        w, bias = fit_user_weights(index.X, pos, np.union1d(np.setdiff1d(library, pos), hard), params, seed=user_id,
                                   hard_pool=hard_pool_end(index.dates, pos))
        rows, s = top_rows(index.X @ w + bias, 0, ~excluded, params.keep)
        return (w, bias, np.pad(rows.astype(np.int32), (0, params.keep - len(rows)), constant_values=-1),
                np.pad(s, (0, params.keep - len(s)), constant_values=-np.inf))

    # joblib's convention, as for `train`: -1 is every core, -2 all but one.
    jobs = min(n_jobs if n_jobs > 0 else max(1, (os.cpu_count() or 1) + 1 + n_jobs), len(groups))
    if jobs > 1:
        with ThreadPoolExecutor(jobs) as pool:
            fitted = list(pool.map(fit, groups.values()))
    else:
        fitted = [fit(pos) for pos in groups.values()]
    W, b, top, top_scores = zip(*fitted)
    return UserModel(user_id, index.generation, tags_version, time.time(), list(groups),
                     np.vstack(W), np.array(b, dtype=np.float32), np.vstack(top), np.vstack(top_scores))
