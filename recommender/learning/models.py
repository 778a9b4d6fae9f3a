"""Per-user linear SVMs: one per tag plus one for the whole library.

Positives are the tagged papers. Negatives are the user's "not interested"
papers (always) plus a seeded random sample of the rest, which bounds the cost
at ``max_negatives`` rows whatever the corpus size. Models are saved as npz
(weights, bias, ranked rows) tied to the feature generation they were trained on.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

from recommender.storage import artifacts
from recommender.features.index import FeatureIndex, column_keys
from recommender.learning.ranking import top_rows, window_matvec
from recommender.settings import Settings, default

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
    """Fitted weights for one user. Row ``i`` of ``W`` is the model for ``tags[i]``.

    Each row remembers what it was fitted on: ``fingerprints[i]`` (a hash of the tag's papers; for
    :data:`ALL` also of the "not interested" papers) and ``fitted[i]`` (the generation). A retrain refits
    only the rows whose fingerprint or generation changed. ``partial`` means a retrain stopped at its
    cost bound with rows still to fit (the web queue comes back for them).
    """

    user_id: int
    generation: str         # the generation W's columns and ``top``'s rows belong to
    tags_version: int
    trained_at: float
    tags: list[str]
    W: np.ndarray           # (n_models, n_features) float32
    b: np.ndarray           # (n_models,) float32
    top: np.ndarray         # (n_models, keep) int32 rows, best first, positives excluded; -1 pads
    top_scores: np.ndarray  # (n_models, keep) float32
    fingerprints: list[str] = dataclasses.field(default_factory=list)
    fitted: list[str] = dataclasses.field(default_factory=list)
    partial: bool = False

    def __post_init__(self):
        n = len(self.tags)
        self.fingerprints = list(self.fingerprints) or [""] * n
        self.fitted = list(self.fitted) or [self.generation] * n

    @property
    def carried(self) -> bool:
        """Some rows were fitted on an older generation and moved here by feature name (see :func:`align`)."""
        return any(f != self.generation for f in self.fitted)

    @property
    def nbytes(self) -> int:
        return self.W.nbytes + self.top.nbytes + self.top_scores.nbytes

    def weights(self, tags: list[str] | None = None) -> tuple[np.ndarray, float]:
        """The weight vector and bias for one tag, several (averaged) or the whole library (None)."""
        names = tags or [ALL]
        missing = [t for t in names if t not in self.tags]
        if missing:
            raise KeyError(f"no model for tag {missing[0]!r}")
        rows = [self.tags.index(t) for t in names]
        return self.W[rows].mean(axis=0), float(self.b[rows].mean())

    def state(self) -> dict:
        """The small freshness record ``train`` reads instead of the weights."""
        return {"generation": self.generation, "tags_version": self.tags_version, "trained_at": self.trained_at,
                "partial": self.partial, "carried": self.carried, "models": len(self.tags)}

    def save(self, path: Path) -> None:
        """The weights (``<id>.npz``), then the freshness record (``<id>.json``), each written atomically.

        A crash between the two leaves a record that does not match the weights' stamp, which reads as stale.
        """
        stamp = f"{time.time_ns()}-{os.getpid()}"
        artifacts.write_npz(
            path, W=self.W, b=self.b, top=self.top, top_scores=self.top_scores, tags=np.array(self.tags, dtype=str),
            fingerprints=np.array(self.fingerprints, dtype=str), fitted=np.array(self.fitted, dtype=str),
            meta=np.array([self.generation, str(self.user_id), str(self.tags_version), repr(self.trained_at),
                           str(int(self.partial)), stamp]),
        )
        artifacts.write_json(path.with_suffix(".json"), {**self.state(), "stamp": stamp, "bytes": path.stat().st_size})

    @classmethod
    def load(cls, path: Path) -> "UserModel":
        """Raises :class:`CorruptModel` for a file that cannot be read (truncated, garbage, wrong shapes)."""
        try:
            a = artifacts.read_npz(path)
            generation, user_id, tags_version, trained_at, *rest = a["meta"].tolist()
            n = len(a["tags"])
            model = cls(int(user_id), generation, int(tags_version), float(trained_at), a["tags"].tolist(),
                        a["W"], a["b"], a["top"], a["top_scores"],
                        a["fingerprints"].tolist() if "fingerprints" in a else [],
                        a["fitted"].tolist() if "fitted" in a else [], bool(int(rest[0])) if rest else False)
            if not (a["W"].ndim == 2 and a["W"].shape[0] == len(a["b"]) == len(a["top"]) == n
                    == len(model.fingerprints) == len(model.fitted)):
                raise ValueError("arrays of different lengths")
        except FileNotFoundError:
            raise
        except Exception as exc:  # zipfile, numpy and value errors alike: the file is damaged
            raise CorruptModel(f"user model {path} cannot be read ({type(exc).__name__}: {exc}); "
                               "it will be retrained") from exc
        return model


class CorruptModel(ValueError):
    """A user model file that cannot be read; retraining replaces it."""


def model_path(models_dir: Path, user_id: int) -> Path:
    return Path(models_dir) / "users" / f"{int(user_id)}.npz"


def load_user_model(models_dir: Path, user_id: int) -> UserModel | None:
    """The user's model, None if there is none; :class:`CorruptModel` if its file is damaged."""
    try:
        return UserModel.load(model_path(models_dir, user_id))
    except FileNotFoundError:
        return None


def model_state(models_dir: Path, user_id: int) -> dict | None:
    """The small freshness record of the user's model: None (treat as stale) if it is missing or
    unreadable, or if the weights file is missing, not the size it was written at (truncated), or carries
    another stamp (a crash between the two writes). Reads the record and the weights' tiny ``meta`` member,
    never the weights."""
    path = model_path(models_dir, user_id)
    try:
        state = artifacts.read_json(path.with_suffix(".json"))
        if not isinstance(state, dict) or state.get("bytes") != path.stat().st_size:
            return None
        with np.load(path, allow_pickle=False) as weights:
            stamp = weights["meta"].tolist()[-1]
    except Exception:  # noqa: BLE001 - any damage reads as stale, and `train` refits the model
        return None
    return state if state.get("stamp") == stamp else None


def align(model: UserModel, index: FeatureIndex, models_dir: Path) -> UserModel:
    """Move a model to ``index``'s generation by feature name: a term, author or category keeps its weight,
    a column the old generation lacked gets 0. Rankings saved by ``train`` belong to the old rows, so
    they are dropped (the feed ranks with one mat-vec until the retrain lands). ``fitted`` keeps the old
    generation, so the rows still read as stale.

    Raises ``OSError``/``ValueError`` when the model's generation is gone (pruned) or unreadable.
    """
    if model.generation == index.generation:
        return model
    take = _column_map(str(models_dir), model.generation, index.generation)
    if len(take) != index.X.shape[1]:
        raise ValueError(f"generation {index.generation} has {index.X.shape[1]} columns, its names {len(take)}")
    if int(take.max(initial=-1)) >= model.W.shape[1]:
        raise ValueError(f"user model {model.user_id} does not match generation {model.generation}")
    W = np.zeros((model.W.shape[0], len(take)), dtype=np.float32)
    have = take >= 0
    W[:, have] = model.W[:, take[have]]
    return dataclasses.replace(model, generation=index.generation, W=W, top=np.full_like(model.top, -1),
                               top_scores=np.full_like(model.top_scores, -np.inf))


@functools.lru_cache(maxsize=4)
def _column_map(models_dir: str, old: str, new: str) -> np.ndarray:
    """For each column of ``new``, the column of ``old`` with the same name, or -1 (once per pair)."""
    position = {k: i for i, k in enumerate(column_keys(Path(models_dir), old))}
    return np.array([position.get(k, -1) for k in column_keys(Path(models_dir), new)], dtype=np.int64)


def fingerprint(paper_ids) -> str:
    """A short stable hash of a set of paper ids (what one model row was fitted on)."""
    return hashlib.blake2b("\n".join(sorted(paper_ids)).encode(), digest_size=12).hexdigest()


def _rows(index: FeatureIndex, pids) -> np.ndarray:
    """Rows of the ids present in this generation; unknown ids are ignored, never fatal."""
    return np.unique(index.row_of.rows(pids))  # one vectorised search, not a lookup per id


def sample_negatives(n_rows: int, exclude: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Up to ``k`` distinct random rows not in ``exclude``."""
    rng = np.random.default_rng(seed)
    if n_rows - len(exclude) <= k:
        return np.setdiff1d(np.arange(n_rows), exclude)
    draw = rng.choice(n_rows, size=min(n_rows, k + len(exclude)), replace=False)
    return np.setdiff1d(draw, exclude)[:k]


def fit_svm(X, pos: np.ndarray, neg: np.ndarray, C: float) -> tuple[np.ndarray, float]:
    """``LinearSVC(class_weight="balanced", dual=True)`` on the given rows; returns ``(w, b)``.

    With no negative at all (a library that holds the whole corpus) there is nothing to separate:
    the centroid of the positives ranks instead.
    """
    if len(neg) == 0:
        centroid = np.asarray(X[pos].mean(axis=0)).ravel().astype(np.float32)
        return centroid / (np.linalg.norm(centroid) or 1.0), 0.0
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
               tags_version: int, params: TrainParams = TrainParams(), n_jobs: int = 1,
               previous: UserModel | None = None, max_fits: int | None = None) -> UserModel | None:
    """Fit the user's models: one per tag and one for the whole library (:data:`ALL`), on ``n_jobs``
    threads (liblinear and the sparse mat-vec release the GIL). Returns None when the library has no
    paper in this generation.

    With ``previous`` (a model of this generation, e.g. from :func:`align`), rows whose papers and
    generation are unchanged are kept, not refitted. ``max_fits`` bounds the cost of one call: past it the
    remaining rows keep their previous weights (or have none yet) and the model is ``partial``. The order
    is: the whole library, new tags, changed tags, then rows only carried over from an older generation.

    A tag's other-tag negatives may change without its own papers changing; that row is refitted with its
    tag, or by ``train --all``. liblinear shares one random generator per process, so fits running at the
    same time can differ from a serial fit in the last digits; the rankings do not change in practice.
    """
    tags = {t: ids for t, ids in tags.items() if not t.startswith("__")}  # a stored reserved name never replaces ALL
    library = _rows(index, [p for ids in tags.values() for p in ids])
    if len(library) == 0:
        return None
    hard = np.setdiff1d(_rows(index, not_interested), library)
    groups = {ALL: library}
    groups.update((tag, _rows(index, ids)) for tag, ids in sorted(tags.items()))
    groups = {tag: rows for tag, rows in groups.items() if len(rows)}
    prints = {tag: fingerprint(index.ids[r] for r in rows) for tag, rows in groups.items()}
    prints[ALL] = fingerprint([*prints.values(), fingerprint(index.ids[r] for r in hard)])
    old = _reusable_rows(previous, index.generation, params.keep)
    todo = _fit_order(groups, prints, old, index.generation)
    later = todo[max_fits:] if max_fits is not None else []
    todo = todo[:max_fits] if max_fits is not None else todo
    excluded = np.zeros(len(index), dtype=bool)
    excluded[library] = excluded[hard] = True

    def fit(tag: str):
        pos = groups[tag]
        # Other tags' papers are negatives for this tag: they are what the user did not file here.
        w, bias = fit_user_weights(index.X, pos, np.union1d(np.setdiff1d(library, pos), hard), params, seed=user_id,
                                   hard_pool=hard_pool_end(index.dates, pos))
        rows, sc = top_rows(index.X @ w + bias, 0, ~excluded, params.keep)
        return (w, np.float32(bias), np.pad(rows.astype(np.int32), (0, params.keep - len(rows)), constant_values=-1),
                np.pad(sc, (0, params.keep - len(sc)), constant_values=-np.inf).astype(np.float32),
                prints[tag], index.generation)

    # Rows with the same papers are the same fit (a one-tag library: the tag and the library): fit once.
    same = {}
    for tag in todo:
        same.setdefault(groups[tag].tobytes(), []).append(tag)
    distinct = [tags_[0] for tags_ in same.values()]
    # joblib's convention, as for `train`: -1 is every core, -2 all but one.
    jobs = min(n_jobs if n_jobs > 0 else max(1, (os.cpu_count() or 1) + 1 + n_jobs), max(1, len(distinct)))
    if jobs > 1:
        with ThreadPoolExecutor(jobs) as pool:
            once = dict(zip(distinct, pool.map(fit, distinct)))
    else:
        once = {tag: fit(tag) for tag in distinct}
    fitted = {tag: once[tags_[0]][:4] + (prints[tag], index.generation) for tags_ in same.values() for tag in tags_}
    rows = {tag: fitted.get(tag) or old.get(tag) for tag in groups}
    rows = {tag: row for tag, row in rows.items() if row is not None}
    W, b, top, top_scores, fps, gens = zip(*rows.values())
    return UserModel(user_id, index.generation, tags_version, time.time(), list(rows), np.vstack(W),
                     np.array(b, dtype=np.float32), np.vstack(top), np.vstack(top_scores), list(fps), list(gens),
                     partial=bool(later))


def _reusable_rows(previous: UserModel | None, generation: str, keep: int) -> dict[str, tuple]:
    """The rows of ``previous`` by tag, if it belongs to ``generation`` (columns line up) and saved as many
    recommendations as now asked for."""
    if previous is None or previous.generation != generation or previous.top.shape[1] != keep:
        return {}
    return {tag: (previous.W[i], previous.b[i], previous.top[i], previous.top_scores[i], previous.fingerprints[i],
                  previous.fitted[i]) for i, tag in enumerate(previous.tags)}


def _fit_order(groups: dict, prints: dict, old: dict, generation: str) -> list[str]:
    """Rows that need fitting, most wanted first: the library, new tags, changed tags, carried-over rows."""
    def rank(tag):
        if tag not in old:
            return 0 if tag == ALL else 1
        _, _, _, _, fp, gen = old[tag]
        if fp != prints[tag]:
            return 0 if tag == ALL else 2
        return 3 if gen != generation else None
    ranked = [(rank(tag), tag) for tag in groups]
    return [tag for r, tag in sorted((r, t) for r, t in ranked if r is not None)]
