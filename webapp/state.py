"""Heavy read-only state, loaded once per process and kept in ``app.extensions``.

The feature index is swapped whole when ``compute`` publishes a new generation:
each request takes one reference at its start (:meth:`AppState.index`), so it
never mixes two generations. User models are cached by file modification time.
Retraining after a tag change runs on one background thread per process.
"""
from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from recommender import service
from recommender.artifacts import Generations
from recommender.index import FeatureIndex, NoGeneration
from recommender.models import UserModel, load_user_model, model_path
from recommender.settings import Settings
from recommender.store import PaperStore
from recommender.users import UserStore

log = logging.getLogger(__name__)
RELOAD_CHECK_S = 2.0
MODEL_CACHE = 256


class AppState:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.papers = PaperStore(settings.papers_path)
        self._generations = Generations(settings.models_dir)
        self._index: FeatureIndex | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self._models: dict[int, tuple[float, UserModel]] = {}
        self._retrainer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="retrain")
        self._pending: set[int] = set()
        self._latest: dict[int, Future] = {}
        self._attempted: dict[int, tuple[int, str]] = {}

    # features ----------------------------------------------------------
    def index(self) -> FeatureIndex:
        """The current generation; checks for a newer one at most every couple of seconds."""
        now = time.monotonic()
        if self._index is None or now - self._checked > RELOAD_CHECK_S:
            with self._lock:
                if self._index is None or now - self._checked > RELOAD_CHECK_S:
                    self._checked = now
                    self._maybe_reload()
        if self._index is None:
            raise NoGeneration("no features yet: run `paperfeed compute`")
        return self._index

    def _maybe_reload(self) -> None:
        name = self._generations.current()
        if name is None or (self._index is not None and self._index.generation == name):
            return
        try:
            index = FeatureIndex.load(self.settings.models_dir, name)
        except (OSError, ValueError) as exc:  # a generation pruned mid-load: keep serving the old one
            log.warning("could not load generation %s: %s", name, exc)
            return
        self._index = index  # one reference assignment: readers see the old or the new index, whole
        log.info("serving feature generation %s (%d papers)", name, len(index))

    # user models -------------------------------------------------------
    def model(self, user_id: int) -> UserModel | None:
        path = model_path(self.settings.models_dir, user_id)
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            self._models.pop(user_id, None)
            return None
        cached = self._models.get(user_id)
        if cached and cached[0] == mtime:
            return cached[1]
        model = load_user_model(self.settings.models_dir, user_id)
        if len(self._models) >= MODEL_CACHE:
            self._models.pop(next(iter(self._models)))
        self._models[user_id] = (mtime, model)
        return model

    def refresh_stale(self, user_id: int, tags_version: int, generation: str) -> None:
        """Retrain a model that is stale (tags changed elsewhere, or a new generation), once per state."""
        key = (tags_version, generation)
        if self._attempted.get(user_id) != key:
            self._attempted[user_id] = key
            self.schedule_retrain(user_id)

    def retraining(self, user_id: int) -> bool:
        return user_id in self._pending

    def schedule_retrain(self, user_id: int) -> None:
        """Retrain one user in the background (about 0.65 s at 131k papers); repeated calls coalesce."""
        with self._lock:
            if user_id in self._pending:
                return
            self._pending.add(user_id)
            self._latest[user_id] = self._retrainer.submit(self._retrain, user_id)

    def wait_for_user(self, user_id: int, timeout: float = 2.0) -> bool:
        """Wait (briefly) for this user's queued retrain, so the next page already reflects a tag change."""
        future = self._latest.get(user_id)
        if future is None or future.done():
            return True
        try:
            future.result(timeout)
        except FutureTimeout:
            return False
        return True

    def _retrain(self, user_id: int) -> None:
        try:
            with self._lock:
                self._pending.discard(user_id)  # tags changed after this point trigger another run
            with UserStore(self.settings.users_path) as users:
                service.retrain_user(self.settings, self.index(), users, user_id)
        except Exception:  # a background failure must not kill the worker; the next tag change retries
            log.exception("retraining user %s failed", user_id)

    def wait_for_retrains(self, timeout: float = 30.0) -> None:
        """Block until queued retrains finish (tests and shutdown)."""
        self._retrainer.submit(lambda: None).result(timeout)

    def close(self) -> None:
        self._retrainer.shutdown(wait=True)
        self.papers.close()


