"""Operations the web app and the CLI share: tagging, training and recommending.

Both edges call these; neither holds ranking or validation logic of its own.
"""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable

import numpy as np
from joblib import Parallel, delayed

from recommender.storage.artifacts import Generations
from recommender.corpus.ids import parse_arxiv_id
from recommender.features.index import FeatureIndex
from recommender.storage.locks import waiting_lock
from recommender.learning.models import ALL, TrainParams, UserModel, align, load_user_model, model_path, model_state, train_user
from recommender.learning.ranking import Filters, _check_page, _window, rank_linear
from recommender.settings import Settings
from recommender.corpus.store import PaperStore
from recommender.accounts.users import UnknownPaper, User, UserError, UserStore


log = logging.getLogger(__name__)


class NoModel(LookupError):
    """The user has no trained model for the current features (tag something, then train)."""


def train_params(settings: Settings) -> TrainParams:
    return TrainParams.from_settings(settings)


def resolve_ids(papers: PaperStore, raw_ids: Iterable[str]) -> list[str]:
    """Versionless ids of papers that exist. Raises ``ValueError`` naming the first bad or unknown id."""
    ids = []
    for raw in raw_ids:
        pid, _ = parse_arxiv_id(raw)
        if pid not in papers:
            raise UnknownPaper(f"unknown paper {pid}: import or fetch it first")
        ids.append(pid)
    if not ids:
        raise UserError("no paper ids given")
    return ids


def tag(users: UserStore, papers: PaperStore, user: User, tag_name: str, raw_ids: Iterable[str]) -> int:
    """Tag papers (validated against the store); returns how many were newly tagged."""
    return users.add_tags(user.id, tag_name, resolve_ids(papers, raw_ids))


def untag(users: UserStore, user: User, tag_name: str, raw_ids: Iterable[str]) -> int:
    return users.remove_tags(user.id, tag_name, [parse_arxiv_id(r)[0] for r in raw_ids])


def model_is_fresh(model: UserModel | dict | None, index: FeatureIndex, user: User) -> bool:
    """Trained on this generation, at the user's current tags, with every row fitted."""
    if model is None:
        return False
    return _is_fresh(model.state() if isinstance(model, UserModel) else model, index, user.tags_version)


def _is_fresh(state: dict, index: FeatureIndex, tags_version: int) -> bool:
    return (state.get("generation") == index.generation and state.get("tags_version") == tags_version
            and not state.get("partial", True) and not state.get("carried", True))


def current_model(settings: Settings, index: FeatureIndex, user_id: int) -> UserModel | None:
    """The user's saved model moved to ``index``'s generation (by feature name, see ``models.align``).

    None when there is none, or it cannot be used: damaged (logged; the next retrain replaces it) or
    tied to a generation that was pruned.
    """
    try:
        model = load_user_model(settings.models_dir, user_id)
        return None if model is None else align(model, index, settings.models_dir)
    except (OSError, ValueError) as exc:
        log.warning("user %s: no usable model (%s)", user_id, exc)
        return None


@dataclasses.dataclass
class Retrained:
    model: UserModel | None
    fits: int          # rows fitted this time
    more: bool         # stopped at max_fits with rows left: call again


@dataclasses.dataclass(frozen=True)
class Library:
    """What fitting one user needs from the users database, read by whoever decides who to train.

    Whoever fits (a thread here, a Dask worker on another machine) then needs only the models directory.
    """

    user_id: int
    tags: dict[str, list[str]]
    not_interested: list[str]
    tags_version: int


def read_library(users: UserStore, user: User) -> Library:
    return Library(user.id, users.tags(user.id), users.not_interested(user.id), user.tags_version)


def retrain_user(settings: Settings, index: FeatureIndex, users: UserStore, user_id: int,
                 n_jobs: int | None = None, max_fits: int | None = None, everything: bool = False) -> Retrained:
    """Refit and save the rows of one user's model that changed (the web app calls this after a tag change;
    ``everything`` refits all of them).

    Holds the user's lock, so two processes never train one user at once; the second one finds the
    work done and fits nothing. The user's models are fitted on ``n_jobs`` threads (default: the
    ``n_jobs`` setting). An empty library removes the model.
    """
    with user_lock(settings.models_dir, user_id):
        user = users.get_user_by_id(user_id)
        if user is None:
            raise UserError(f"no user with id {user_id}")
        return _fit_and_save(settings, index, read_library(users, user), n_jobs, max_fits, everything)


def fit_and_save(settings: Settings, index: FeatureIndex, library: Library, n_jobs: int | None = None,
                 everything: bool = False) -> Retrained:
    """:func:`retrain_user` for a process without the users database (a Dask worker): the caller read the
    user's ``library``. Holds the user's lock the same way.

    The library was read before the lock was taken, so the user may have tagged since and the web app
    saved a model of newer tags meanwhile: that model is kept, never replaced by one of older tags.
    """
    with user_lock(settings.models_dir, library.user_id):
        saved = model_state(settings.models_dir, library.user_id) or {}
        if saved.get("tags_version", -1) > library.tags_version:
            return Retrained(current_model(settings, index, library.user_id), 0, False)
        return _fit_and_save(settings, index, library, n_jobs, None, everything)


def _fit_and_save(settings: Settings, index: FeatureIndex, library: Library, n_jobs: int | None,
                  max_fits: int | None, everything: bool) -> Retrained:
    """The one "fit and save one user" both paths share; the caller holds the user's lock."""
    previous = None if everything else current_model(settings, index, library.user_id)
    if previous is not None and _is_fresh(previous.state(), index, library.tags_version):
        return Retrained(previous, 0, False)
    model = train_user(index, library.user_id, library.tags, library.not_interested, library.tags_version,
                       train_params(settings), n_jobs=settings.n_jobs if n_jobs is None else n_jobs,
                       previous=previous, max_fits=max_fits)
    path = model_path(settings.models_dir, library.user_id)
    if model is None:
        path.unlink(missing_ok=True)
        path.with_suffix(".json").unlink(missing_ok=True)
        return Retrained(None, 0, False)
    model.save(path)
    fits = sum(1 for i, _ in enumerate(model.tags) if _row_is_new(model, previous, i))
    return Retrained(model, fits, model.partial)


def _row_is_new(model: UserModel, previous: UserModel | None, i: int) -> bool:
    if previous is None or model.tags[i] not in previous.tags:
        return True
    j = previous.tags.index(model.tags[i])
    return (previous.fingerprints[j], previous.fitted[j]) != (model.fingerprints[i], model.fitted[i])


def user_lock(models_dir, user_id: int, timeout: float = 120.0):
    """An exclusive lock on one user's model across threads and processes (``flock``, freed if we die)."""
    return waiting_lock(model_path(models_dir, user_id).with_suffix(".lock"), timeout, f"user {user_id}'s model")


@dataclasses.dataclass
class TrainSummary:
    trained: list[str]
    skipped: int
    empty: list[str]
    generation: str = ""
    passes: int = 1  # more than 1 when `compute` published a new generation while training ran
    max_bytes_per_model: int = 0  # the largest model file of the users trained, per tag row (with its ranking)


# Fits the stale users and returns ``(username, has a model)`` for each, calling ``progress(done, total)``
# as users finish: ``train_locally`` here, ``distributed.DaskTrainer`` on a Dask cluster.
Trainer = Callable[[Settings, FeatureIndex, UserStore, list[User], bool, Callable[[int, int], None] | None],
                   list[tuple[str, bool]]]


def stale_users(settings: Settings, index: FeatureIndex, users: UserStore,
                everyone: bool = False) -> tuple[list[User], int]:
    """The users ``train`` refits (stale models, or all of them with ``everyone``) and how many are fresh.
    Freshness comes from each model's small record, so up-to-date users cost one small file read."""
    todo, skipped = [], 0
    for user in users.list_users():
        if everyone or not model_is_fresh(model_state(settings.models_dir, user.id), index, user):
            todo.append(user)
        else:
            skipped += 1
    return todo, skipped


def train_locally(settings: Settings, index: FeatureIndex, users: UserStore, todo: list[User], everyone: bool,
                  progress: Callable[[int, int], None] | None) -> list[tuple[str, bool]]:
    """Fit ``todo`` in ``n_jobs`` threads of this process.

    liblinear releases the GIL, so threads share the one feature matrix instead of copying it.
    """
    done = []

    def work(user: User):
        # Each thread opens its own connection: sqlite3 connections are not shared across threads here.
        with UserStore(users.path, users.limits) as own:
            # Several users: the users are the parallel part. One user: their models are.
            result = retrain_user(settings, index, own, user.id, n_jobs=1 if len(todo) > 1 else None,
                                  everything=everyone)
        done.append(user.username)
        if progress:
            progress(len(done), len(todo))
        return user.username, result.model is not None

    return Parallel(n_jobs=settings.n_jobs, prefer="threads")(delayed(work)(u) for u in todo)


def train_users(settings: Settings, index: FeatureIndex, users: UserStore, everyone: bool = False,
                progress: Callable[[int, int], None] | None = None, trainer: Trainer = train_locally) -> TrainSummary:
    """Retrain users whose models are stale (tags changed, new generation, damaged or partial), or every
    user with ``everyone``, with ``trainer`` (threads here by default). Unchanged rows of a stale model
    are kept."""
    todo, skipped = stale_users(settings, index, users, everyone)
    results = trainer(settings, index, users, todo, everyone, progress)
    return TrainSummary([name for name, ok in results if ok], skipped, [name for name, ok in results if not ok],
                        index.generation, max_bytes_per_model=max_bytes_per_model(settings, todo))


def max_bytes_per_model(settings: Settings, users: list[User]) -> int:
    """The largest model file among ``users``, per tag row (with its saved ranking), from the small records."""
    sizes = [0]
    for user in users:
        state = model_state(settings.models_dir, user.id)
        if state and state.get("models"):
            sizes.append(state["bytes"] // state["models"])
    return max(sizes)


def train_current(settings: Settings, users: UserStore, everyone: bool = False,
                  progress: Callable[[int, int], None] | None = None, max_passes: int = 3,
                  trainer: Trainer = train_locally) -> TrainSummary:
    """``train_users`` on the current generation; if ``compute`` published a newer one meanwhile, train
    again on that one (the models just saved are tied to the old one), up to ``max_passes`` times."""
    generations = Generations(settings.models_dir)
    index = FeatureIndex.load(settings.models_dir)
    summary = train_users(settings, index, users, everyone, progress, trainer)
    passes = 1
    while passes < max_passes and generations.current() not in (None, index.generation):
        index = FeatureIndex.load(settings.models_dir)
        again = train_users(settings, index, users, everyone, progress, trainer)
        passes += 1
        summary = TrainSummary(sorted(set(summary.trained) | set(again.trained)), again.skipped, again.empty,
                               index.generation, max_bytes_per_model=again.max_bytes_per_model)
    summary.passes = passes
    return summary


def recommend(index: FeatureIndex, model: UserModel | None, user_library: set[str], tags: list[str] | None = None,
              filters: Filters = Filters(), n: int = 20, offset: int = 0, not_interested: Iterable[str] = ()):
    """Ranked recommendations ``(ids, scores)`` for one tag, several combined, or the whole library.

    Uses the list saved by ``train`` when it answers the query as asked (one tag
    or the library, no end date, arrival or category filter, and a start date
    inside the saved window of recent papers); otherwise one mat-vec.
    """
    _check_page(n, offset)
    if model is None or model.generation != index.generation:  # see current_model, which aligns a saved model
        raise NoModel("no model for the current features yet: tag some papers and run `paperfeed train`")
    w, b = model.weights(tags)
    hidden = frozenset(not_interested)
    saved = _saved_ranking(index, model, tags, filters, hidden, user_library, n, offset)
    if saved is not None:
        return saved
    return rank_linear(index, w, b, dataclasses.replace(filters, exclude=filters.exclude | hidden), n, offset)


def _saved_ranking(index, model, tags, filters, hidden, library, n, offset):
    if filters.until or filters.categories or filters.arrived_after is not None or (tags and len(tags) > 1):
        return None
    if not filters.exclude >= library:
        return None  # the saved lists drop library papers; the caller wants them shown
    row = model.tags.index(tags[0] if tags else ALL)
    if model.top[row][0] < 0:
        return None  # no saved list (a model carried over from an older generation): rank afresh
    lo, _ = _window(index, filters)
    if lo < int(np.searchsorted(index.dates, model.top_since[row], "left")):
        return None  # the query reaches before the papers `train` ranked (see TrainParams.window_days)
    picked = []
    for r, score in zip(model.top[row], model.top_scores[row]):
        if r < 0:
            break
        if r < lo:
            continue  # saved, but older than the query's start date
        pid = index.ids[r]
        if pid not in filters.exclude and pid not in hidden:
            picked.append((pid, float(score)))
            if len(picked) == offset + n:
                break
    if len(picked) < offset + n and model.top[row][-1] >= 0:
        return None  # ran past the saved list: compute it fresh
    page = picked[offset:offset + n]
    return [p for p, _ in page], [s for _, s in page]
