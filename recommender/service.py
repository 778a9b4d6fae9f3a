"""Operations the web app and the CLI share: tagging, training and recommending.

Both edges call these; neither holds ranking or validation logic of its own.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from joblib import Parallel, delayed

from .ids import parse_arxiv_id
from .index import FeatureIndex
from .models import ALL, TrainParams, UserModel, load_user_model, model_path, train_user
from .ranking import Filters, _check_page, rank_linear
from .settings import Settings
from .store import PaperStore
from .users import UnknownPaper, User, UserError, UserStore


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


def model_is_fresh(model: UserModel | None, index: FeatureIndex, user: User) -> bool:
    return model is not None and model.generation == index.generation and model.tags_version == user.tags_version


def retrain_user(settings: Settings, index: FeatureIndex, users: UserStore, user_id: int,
                 n_jobs: int | None = None) -> UserModel | None:
    """Train and save one user's models now (the web app calls this after a tag change).

    The user's models are fitted on ``n_jobs`` threads (default: the ``n_jobs`` setting).
    Returns None (and removes any stale model) if the library is empty.
    """
    user = users.get_user_by_id(user_id)
    if user is None:
        raise UserError(f"no user with id {user_id}")
    model = train_user(index, user.id, users.tags(user.id), users.not_interested(user.id), user.tags_version,
                       train_params(settings), n_jobs=settings.n_jobs if n_jobs is None else n_jobs)
    path = model_path(settings.models_dir, user.id)
    if model is None:
        path.unlink(missing_ok=True)
    else:
        model.save(path)
    return model


@dataclasses.dataclass
class TrainSummary:
    trained: list[str]
    skipped: int
    empty: list[str]


def train_users(settings: Settings, index: FeatureIndex, users: UserStore, everyone: bool = False,
                progress: Callable[[int, int], None] | None = None) -> TrainSummary:
    """Retrain users whose tags changed (or every user with ``everyone``), in parallel threads.

    liblinear releases the GIL, so threads share the one feature matrix instead of copying it.
    """
    todo, skipped = [], 0
    for user in users.list_users():
        if everyone or not model_is_fresh(load_user_model(settings.models_dir, user.id), index, user):
            todo.append(user)
        else:
            skipped += 1
    done = []

    def work(user: User):
        # Each thread opens its own connection: sqlite3 connections are not shared across threads here.
        with UserStore(users.path) as own:
            # Several users: the users are the parallel part. One user: their models are.
            model = retrain_user(settings, index, own, user.id, n_jobs=1 if len(todo) > 1 else None)
        done.append(user.username)
        if progress:
            progress(len(done), len(todo))
        return user.username, model is not None

    results = Parallel(n_jobs=settings.n_jobs, prefer="threads")(delayed(work)(u) for u in todo)
    return TrainSummary([name for name, ok in results if ok], skipped, [name for name, ok in results if not ok])


def recommend(index: FeatureIndex, model: UserModel | None, user_library: set[str], tags: list[str] | None = None,
              filters: Filters = Filters(), n: int = 20, offset: int = 0, not_interested: Iterable[str] = ()):
    """Ranked recommendations ``(ids, scores)`` for one tag, several combined, or the whole library.

    Uses the list saved by ``train`` when it answers the query as asked (one tag
    or the library, no date or category filter); otherwise one mat-vec.
    """
    _check_page(n, offset)
    if model is None or model.generation != index.generation:
        raise NoModel("no model for the current features yet: tag some papers and run `paperfeed train`")
    w, b = model.weights(tags)
    hidden = frozenset(not_interested)
    saved = _saved_ranking(index, model, tags, filters, hidden, user_library, n, offset)
    if saved is not None:
        return saved
    return rank_linear(index, w, b, dataclasses.replace(filters, exclude=filters.exclude | hidden), n, offset)


def _saved_ranking(index, model, tags, filters, hidden, library, n, offset):
    if filters.since or filters.until or filters.categories or (tags and len(tags) > 1):
        return None
    if not filters.exclude >= library:
        return None  # the saved lists drop library papers; the caller wants them shown
    row = model.tags.index(tags[0] if tags else ALL)
    picked = []
    for r, score in zip(model.top[row], model.top_scores[row]):
        if r < 0:
            break
        pid = index.ids[r]
        if pid not in filters.exclude and pid not in hidden:
            picked.append((pid, float(score)))
            if len(picked) == offset + n:
                break
    if len(picked) < offset + n and model.top[row][-1] >= 0:
        return None  # ran past the saved list: compute it fresh
    page = picked[offset:offset + n]
    return [p for p, _ in page], [s for _, s in page]
