"""Per-user linear SVMs: one per tag plus one for the whole library.

Positives are the tagged papers. Negatives are the user's "not interested"
papers (always) plus a seeded random sample of the rest, which bounds the cost
at ``max_negatives`` rows whatever the corpus size. Models are saved as npz
(weights, bias, ranked rows) tied to the feature generation they were trained on.

A served model keeps only its ``max_weights`` largest weights (see :func:`compact`), stored as sparse
rows of float16 values, so a tag's model with its saved ranking stays under 64 KB on disk whatever the
vocabulary size; the evaluation fits through the same function, so it measures what is served.
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
WEIGHT_DTYPE = np.float16  # stored weight values, relative to their row's largest |w| (see compact)
FROM_START = np.iinfo(np.int32).min  # a saved ranking over every paper (files written before the window)


@dataclasses.dataclass(frozen=True)
class TrainParams:
    """How user models are fitted. Defaults come from the settings table (``recommender.settings``)."""

    C: float = default("svm_c")
    max_negatives: int = default("max_negatives")
    keep: int = default("keep_recommendations")
    hard_negatives: int = 0  # a second fit with this many hard negatives (see fit_user_weights)
    centroid_weight: float = 0.0  # blend of the library centroid into the SVM weights (see fit_user_weights)
    max_weights: int = default("model_max_weights")  # weights kept per model, 0 for all (see compact)
    window_days: int = default("train_window_days")  # the saved ranking covers these recent days, 0 for all

    @classmethod
    def from_settings(cls, settings: Settings, **overrides) -> "TrainParams":
        """The configured parameters (what ``train`` and the web app use), with overrides on top."""
        values = dict(C=settings.svm_c, max_negatives=settings.max_negatives, keep=settings.keep_recommendations,
                      max_weights=settings.model_max_weights, window_days=settings.train_window_days)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclasses.dataclass
class UserModel:
    """Fitted weights for one user. Row ``i`` of ``W`` is the model for ``tags[i]``.

    Each row remembers what it was fitted on: ``fingerprints[i]`` (a hash of the tag's papers; for
    :data:`ALL` also of the "not interested" papers) and ``fitted[i]`` (the generation). A retrain refits
    only the rows whose fingerprint or generation changed. ``partial`` means a retrain stopped at its
    cost bound with rows still to fit (the web queue comes back for them).

    ``max_weights`` is how many weights each row kept (:func:`compact`; 0: dense). ``W`` is dense in memory
    (what the rankers take) but saved as sparse rows when compact. ``top_since[i]`` is the first day
    (days since 1970) of the papers ``top[i]`` ranks (:data:`FROM_START`: every paper).
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
    max_weights: int = 0
    top_since: np.ndarray | None = None  # (n_models,) int32

    def __post_init__(self):
        n = len(self.tags)
        self.fingerprints = list(self.fingerprints) or [""] * n
        self.fitted = list(self.fitted) or [self.generation] * n
        if self.top_since is None:
            self.top_since = np.full(n, FROM_START, dtype=np.int32)

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
        weights = _sparse_rows(self.W, self.max_weights) if self.max_weights else {"W": self.W}
        artifacts.write_npz(
            path, **weights, b=self.b, top=self.top, top_scores=self.top_scores, top_since=self.top_since,
            tags=np.array(self.tags, dtype=str),
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
            W, max_weights = (a["W"], 0) if "W" in a else _dense_rows(a)
            model = cls(int(user_id), generation, int(tags_version), float(trained_at), a["tags"].tolist(),
                        W, a["b"], a["top"], a["top_scores"],
                        a["fingerprints"].tolist() if "fingerprints" in a else [],
                        a["fitted"].tolist() if "fitted" in a else [], bool(int(rest[0])) if rest else False,
                        max_weights, a.get("top_since"))
            if not (W.ndim == 2 and W.shape[0] == len(a["b"]) == len(a["top"]) == n == len(model.top_since)
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


def _sparse_rows(W: np.ndarray, max_weights: int) -> dict[str, np.ndarray]:
    """The npz members of compact rows: each row's nonzero columns (int32) and values (float16 relative to
    the row's ``scale``), CSR style. Rows from :func:`compact` come back exactly."""
    cols = [np.flatnonzero(row) for row in W]
    if any(len(c) > max_weights for c in cols):
        raise ValueError(f"a row has more than max_weights={max_weights} weights: fit it through compact()")
    packed = [_quantize(row[c]) for row, c in zip(W, cols)]
    return {"indptr": np.cumsum([0, *map(len, cols)]).astype(np.int64),
            "indices": np.concatenate([np.empty(0, np.int32), *cols]).astype(np.int32),
            "values": np.concatenate([np.empty(0, WEIGHT_DTYPE), *(v for v, _ in packed)]),
            "scale": np.array([sc for _, sc in packed], dtype=np.float32),
            "shape": np.array([*W.shape, max_weights], dtype=np.int64)}


def _dense_rows(a: dict) -> tuple[np.ndarray, int]:
    """``W`` (float32, dense) and ``max_weights`` from the members :func:`_sparse_rows` wrote."""
    n_models, n_features, max_weights = a["shape"].tolist()
    indptr, indices = a["indptr"], a["indices"]
    if (len(indptr) != n_models + 1 or not indptr[-1] == len(indices) == len(a["values"]) or len(a["scale"]) != n_models
            or np.any(np.diff(indptr) < 0) or len(indices) and not 0 <= indices.min() <= indices.max() < n_features):
        raise ValueError("sparse weight rows do not match their shape")
    W = np.zeros((n_models, n_features), dtype=np.float32)
    for i in range(n_models):
        part = slice(indptr[i], indptr[i + 1])
        W[i, indices[part]] = _dequantize(a["values"][part], a["scale"][i])
    return W, int(max_weights)


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
    """Up to ``k`` distinct random rows not in ``exclude``.

    O(k) past small corpora: numpy's ``Generator.choice`` without replacement draws by Floyd's algorithm
    (a hash set of the draws) once the draw is under 1/50 of the rows, and shuffles an ``arange`` of the rows
    only below that, i.e. at most about ``50 * (k + len(exclude))`` rows."""
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
    return compact(w, params.max_weights), b


def compact(w: np.ndarray, k: int) -> np.ndarray:
    """The weights a compact model serves: the ``k`` largest ``|w|`` (ties: lowest column first) at the
    precision they are stored with, the rest 0; ``k`` 0 keeps ``w`` as it is (dense).

    Training and the evaluation both fit through this, and :meth:`UserModel.save` stores exactly these
    values (saving them again is exact), so what the evaluation measures is what a reloaded model ranks with.
    """
    w = np.asarray(w, dtype=np.float32)
    if k <= 0:
        return w
    cols = np.sort(np.argsort(-np.abs(w), kind="stable")[:k])
    cols = cols[w[cols] != 0]
    values, scale = _quantize(w[cols])
    kept = np.zeros_like(w)
    kept[cols] = _dequantize(values, scale)
    return kept


def _quantize(values: np.ndarray) -> tuple[np.ndarray, np.float32]:
    """``values`` as float16 relative to the largest ``|value|`` (float16 alone loses small weights to
    underflow), and that scale."""
    scale = np.float32(np.abs(values).max(initial=0.0)) or np.float32(1.0)
    return (values / scale).astype(WEIGHT_DTYPE), scale


def _dequantize(values: np.ndarray, scale: np.float32) -> np.ndarray:
    return values.astype(np.float32) * np.float32(scale)


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
    lo = window_start(index.dates, params.window_days)
    since = np.int32(index.dates[lo]) if 0 < lo < len(index) else np.int32(FROM_START)
    old = _reusable_rows(previous, index.generation, params)
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
        # The saved ranking covers the recent window only (rows are date-sorted): one mat-vec over its slice.
        rows, sc = top_rows(window_matvec(index.X, lo, len(index), w) + bias, lo, ~excluded[lo:], params.keep)
        return (w, np.float32(bias), np.pad(rows.astype(np.int32), (0, params.keep - len(rows)), constant_values=-1),
                np.pad(sc, (0, params.keep - len(sc)), constant_values=-np.inf).astype(np.float32),
                since, prints[tag], index.generation)

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
    fitted = {tag: once[tags_[0]][:5] + (prints[tag], index.generation) for tags_ in same.values() for tag in tags_}
    rows = {tag: fitted.get(tag) or old.get(tag) for tag in groups}
    rows = {tag: row for tag, row in rows.items() if row is not None}
    W, b, top, top_scores, since_, fps, gens = zip(*rows.values())
    return UserModel(user_id, index.generation, tags_version, time.time(), list(rows), np.vstack(W),
                     np.array(b, dtype=np.float32), np.vstack(top), np.vstack(top_scores), list(fps), list(gens),
                     partial=bool(later), max_weights=params.max_weights, top_since=np.array(since_, dtype=np.int32))


def window_start(dates: np.ndarray, days: int) -> int:
    """The first row of the last ``days`` days of papers (rows are date-sorted); 0 for ``days`` 0 (all)."""
    if days <= 0 or len(dates) == 0:
        return 0
    return int(np.searchsorted(dates, int(dates[-1]) - days + 1, "left"))


def _reusable_rows(previous: UserModel | None, generation: str, params: TrainParams) -> dict[str, tuple]:
    """The rows of ``previous`` by tag, if it belongs to ``generation`` (columns line up), kept as many weights
    and saved as many recommendations as now asked for. A row keeps its own ``top_since``: the feed reads
    its saved ranking only for queries inside that window, so a changed window needs no refit."""
    if (previous is None or previous.generation != generation or previous.top.shape[1] != params.keep
            or previous.max_weights != params.max_weights):
        return {}
    return {tag: (previous.W[i], previous.b[i], previous.top[i], previous.top_scores[i], previous.top_since[i],
                  previous.fingerprints[i], previous.fitted[i]) for i, tag in enumerate(previous.tags)}


def _fit_order(groups: dict, prints: dict, old: dict, generation: str) -> list[str]:
    """Rows that need fitting, most wanted first: the library, new tags, changed tags, carried-over rows."""
    def rank(tag):
        if tag not in old:
            return 0 if tag == ALL else 1
        *_, fp, gen = old[tag]
        if fp != prints[tag]:
            return 0 if tag == ALL else 2
        return 3 if gen != generation else None
    ranked = [(rank(tag), tag) for tag in groups]
    return [tag for r, tag in sorted((r, t) for r, t in ranked if r is not None)]
