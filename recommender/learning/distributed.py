"""``paperfeed train --scheduler tcp://host:8786``: fitting users on a Dask cluster.

Who does what. The client (the machine that runs ``train``, beside the users database) decides who is
stale exactly as local training does (:func:`service.stale_users`), reads each stale user's tags, "not
interested" papers and tags version (:class:`service.Library`) and sends them with the generation's name.
A worker needs only the models directory, at the same path as the client's (a shared file system): it
loads that generation once per process (:func:`_index`), then fits and saves the user with
:func:`service.fit_and_save`, the very function the local path runs (user lock, previous model, atomic
``UserModel.save``). The multi-pass loop, the progress bar and the summary stay
:func:`service.train_current`'s; only the :data:`service.Trainer` differs.

Why Dask futures (``client.submit`` and ``as_completed``), not joblib's dask backend: one task is one user,
so each gets its own ``retries`` and a lost worker's users are rescheduled one by one; ``as_completed``
hands the client each user's result as it lands, which drives the progress bar as the local threads
do; and there is no batching, so a killed worker loses at most the users it was fitting, never a batch.
joblib's backend would add a layer over the same futures and hide those controls.

A worker killed mid-fit loses nothing: the model is published by ``os.replace`` of a complete temp file
(the temp left behind is removed by the next ``train``, :func:`artifacts.remove_stale_temps`), its
``flock`` on the user dies with it, and the scheduler runs the user again on another worker.

Dask is an optional extra (``pip install 'paperfeed[dask]'``) imported only by :func:`trainer` when a
scheduler is named: local training never imports it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from recommender.features.index import FeatureIndex
from recommender.learning.service import Library, Trainer, fit_and_save, read_library, train_locally
from recommender.settings import Settings
from recommender.accounts.users import User, UserStore

RETRIES = 3  # a task that raised (a lock timeout, a transient file-system error) runs again this many times


class ClusterUnavailable(ConnectionError):
    """No Dask cluster to train on: dask is not installed, the scheduler cannot be reached, or workers keep dying."""


@contextlib.contextmanager
def trainer(settings: Settings, scheduler: str | None = None) -> Iterator[Trainer]:
    """The trainer ``train`` uses: local threads when no scheduler is named (``scheduler``, else the
    ``dask_scheduler`` setting), else a :class:`DaskTrainer` on a client closed afterwards."""
    address = settings.dask_scheduler if scheduler is None else scheduler
    if not address:
        yield train_locally
        return
    client = connect(address, settings.dask_timeout)
    try:
        yield DaskTrainer(client)
    finally:
        client.close()


def connect(address: str, timeout: float):
    """A ``distributed.Client`` on ``address``; :class:`ClusterUnavailable` with what to do otherwise."""
    try:
        from distributed import Client
    except ImportError:
        raise ClusterUnavailable("training on a Dask cluster needs the dask extra: "
                                 "pip install 'paperfeed[dask]' (or pip install 'dask[distributed]')") from None
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ClusterUnavailable(f"cannot reach the Dask scheduler at {address!r} within {timeout:g} s ({reason}): "
                                 "start one with `dask scheduler`, or fix --scheduler / PAPERFEED_DASK_SCHEDULER "
                                 "(PAPERFEED_DASK_TIMEOUT sets the wait)") from None


@dataclasses.dataclass
class DaskTrainer:
    """A :data:`service.Trainer` that fits one task per user on the cluster ``client`` is connected to."""

    client: object  # distributed.Client (not imported here: dask is optional)
    retries: int = RETRIES

    def __call__(self, settings: Settings, index: FeatureIndex, users: UserStore, todo: list[User], everyone: bool,
                 progress: Callable[[int, int], None] | None) -> list[tuple[str, bool]]:
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        if not todo:
            return []
        shipped = for_workers(settings)
        run = uuid.uuid4().hex[:8]
        futures = [self.client.submit(train_task, shipped, index.generation, read_library(users, user), everyone,
                                      key=f"paperfeed-train-{run}-{user.id}", retries=self.retries, pure=False)
                   for user in todo]
        ok: dict[int, bool] = {}
        try:
            for future in as_completed(futures, loop=self.client.loop):  # not the default client: there is none
                user_id, has_model = _result(future, KilledWorker)
                ok[user_id] = has_model
                if progress:
                    progress(len(ok), len(todo))
        finally:
            self.client.cancel([f for f in futures if not f.done()])
        return [(user.username, ok[user.id]) for user in todo]


def _result(future, killed_worker: type) -> tuple[int, bool]:
    """The task's result; a worker-side failure the operator must fix becomes one clear error."""
    try:
        return future.result()
    except killed_worker as exc:
        raise ClusterUnavailable(f"Dask workers kept dying while training ({exc}): "
                                 "check their memory and logs") from None
    except ImportError as exc:
        raise ClusterUnavailable(f"a Dask worker cannot import Paperfeed ({exc}): install the same paperfeed "
                                 "on every worker") from None


def for_workers(settings: Settings) -> Settings:
    """The settings a task carries, without the secrets workers never need."""
    return dataclasses.replace(settings, smtp_password="", secret_key="")


def train_task(settings: Settings, generation: str, library: Library, everything: bool) -> tuple[int, bool]:
    """One user, on a worker: ``(user id, has a model)``. One fit thread: the worker's threads are the
    parallel part, as local threads are for several users."""
    result = fit_and_save(settings, _index(settings.models_dir, generation), library, n_jobs=1, everything=everything)
    return library.user_id, result.model is not None


_cached: dict = {}
_cache_lock = threading.Lock()


def _index(models_dir: Path, generation: str) -> FeatureIndex:
    """The generation's features, loaded once per worker process and kept until another generation is
    asked for (one in memory at a time: a worker holds one matrix, shared by its threads)."""
    key = (str(models_dir), generation)
    with _cache_lock:
        if _cached.get("key") != key:
            _cached.clear()
            try:
                _cached["index"] = FeatureIndex.load(models_dir, generation)
            except (OSError, LookupError) as exc:
                raise FileNotFoundError(f"Dask worker on {socket.gethostname()} cannot read generation {generation} "
                                        f"under {models_dir} ({exc}): every worker needs the models directory "
                                        "at the same path") from None
            _cached["key"] = key
        return _cached["index"]
