"""Heavy read-only state, loaded once per process and kept in ``app.extensions``.

The feature index is swapped whole when ``compute`` publishes a new generation:
each request takes one reference at its start (:meth:`AppState.index`), so it
never mixes two generations. User models are cached by file stamp in an LRU bounded in bytes.
Retraining after a tag change runs on a fair queue of background threads (``recommender.learning.retrain``).
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict

from recommender.learning import service
from recommender.storage.artifacts import Generations
from recommender.features.index import FeatureIndex, NoGeneration
from recommender.learning.models import UserModel, model_path
from recommender.learning.retrain import RetrainQueue, Status
from recommender.settings import Settings
from recommender.accounts.popular import PopularCache
from recommender.corpus.store import PaperStore
from recommender.accounts.users import UserStore

log = logging.getLogger(__name__)
RELOAD_CHECK_S = 2.0
MODEL_CACHE_BYTES = 512 * 2**20


class AppState:
    def __init__(self, settings: Settings, mapped: bool = True):
        self.settings = settings
        self._mapped = mapped  # map the index's arrays (shared by every process) or read them into this one
        # The web app never writes papers: read-only, so it also serves from a read-only data dir.
        self.papers = PaperStore(settings.papers_path, readonly=settings.papers_path.exists())
        self._generations = Generations(settings.models_dir)
        self._index: FeatureIndex | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self._models: OrderedDict[int, tuple[tuple, UserModel]] = OrderedDict()
        self._cached_bytes = 0
        self._no_model: dict[int, int] = {}  # user -> tags_version whose retrain found no paper to train on
        self.popular_cache = PopularCache()  # the Popular feed's ranking, recounted when tags change or each minute
        workers = max(1, settings.retrain_workers)
        # Several workers each fit one model at a time; a lone worker may use the n_jobs threads.
        self._fit_threads = 1 if workers > 1 else None
        self._retrainer = RetrainQueue(self._retrain, workers)

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
            index = FeatureIndex.load(self.settings.models_dir, name, mapped=self._mapped)
        except (OSError, ValueError) as exc:  # a generation pruned mid-load: keep serving the old one
            log.warning("could not load generation %s: %s", name, exc)
            return
        self._index = index  # one reference assignment: readers see the old or the new index, whole
        log.info("serving feature generation %s (%d papers)", name, len(index))

    # user models -------------------------------------------------------
    def model(self, user_id: int) -> UserModel | None:
        """The user's model on the current generation: cached by file stamp, moved to a newer generation
        by feature name when ``compute`` published one (``train`` refits it; the web does not).

        The cache is a thread-safe LRU bounded in bytes, so a few large libraries cannot grow the process.
        """
        path = model_path(self.settings.models_dir, user_id)
        index = self.index()
        try:
            st = path.stat()
        except FileNotFoundError:
            with self._lock:
                self._drop(user_id)
            return None
        # os.replace gives every save a new inode, so two saves within one timestamp tick still differ.
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size, index.generation)
        with self._lock:
            cached = self._models.get(user_id)
            if cached and cached[0] == stamp:
                self._models.move_to_end(user_id)
                return cached[1]
        model = service.current_model(self.settings, index, user_id)  # None (cached too) if damaged or unusable
        with self._lock:
            self._drop(user_id)
            self._models[user_id] = (stamp, model)
            self._cached_bytes += model.nbytes if model else 0
            while self._cached_bytes > MODEL_CACHE_BYTES and len(self._models) > 1:
                self._drop(next(iter(self._models)))
        return model

    def _drop(self, user_id: int) -> None:
        """Forget one cached model (the caller holds the lock)."""
        old = self._models.pop(user_id, None)
        if old is not None and old[1] is not None:
            self._cached_bytes -= old[1].nbytes

    def refresh_stale(self, user_id: int, tags_version: int) -> None:
        """Queue a retrain of a model that lags the user's tags (changed in another process, or a retrain
        that stopped at its cost bound). A model only carried over to a new generation is left to ``train``,
        so a new generation does not make every web worker retrain everyone. A user whose retrain failed
        waits for their backoff, not for the next page view, and a library with no paper in the features
        waits for a change."""
        if self._no_model.get(user_id) != tags_version:
            self._retrainer.schedule(user_id, change=False)

    def retraining(self, user_id: int) -> bool:
        return self._retrainer.status(user_id).busy

    def retrain_status(self, user_id: int) -> Status:
        return self._retrainer.status(user_id)

    def schedule_retrain(self, user_id: int) -> None:
        """Retrain one user in the background; repeated calls coalesce (see ``recommender.learning.retrain``)."""
        self._retrainer.schedule(user_id)

    def wait_for_user(self, user_id: int, timeout: float = 2.0) -> bool:
        """Wait (briefly) for this user's queued retrain, so the next page already reflects a tag change."""
        return self._retrainer.wait(user_id, timeout)

    def _retrain(self, user_id: int) -> bool:
        """One turn of one user: at most ``retrain_batch`` models. True when there are more to fit."""
        with UserStore(self.settings.users_path, self.settings.limits) as users:
            result = service.retrain_user(self.settings, self.index(), users, user_id, n_jobs=self._fit_threads,
                                          max_fits=self.settings.retrain_batch)
            if result.model is None:  # no tagged paper in the features: nothing to train until the tags change
                user = users.get_user_by_id(user_id)
                self._no_model[user_id] = user.tags_version if user else -1
            else:
                self._no_model.pop(user_id, None)
        return result.more

    def wait_for_retrains(self, timeout: float = 30.0) -> None:
        """Block until queued retrains finish (tests and shutdown)."""
        self._retrainer.drain(timeout)

    def close(self) -> None:
        self._retrainer.close()
        self.papers.close()
