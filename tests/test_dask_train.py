"""Training on a Dask cluster (``paperfeed train --scheduler``), on the 10k real sample.

A real ``distributed.LocalCluster`` of two worker processes on loopback, shared by the module and always
closed. The reference is local training of the same users in the same directory: a one-thread fit is
deterministic (liblinear is seeded), so the models must be equal to the last bit.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.conftest import REPO, run_cli
from recommender.storage import artifacts
from recommender.corpus.store import PaperStore
from recommender.features.index import FeatureIndex
from recommender.learning import service
from recommender.learning.distributed import ClusterUnavailable, DaskTrainer, connect
from recommender.learning.models import load_user_model, model_path, model_state
from recommender.accounts.users import UserStore

if os.environ.get("CI", "").lower() == "true":
    import distributed  # the test extra has it: missing in CI is a failure, as missing shared data is
else:
    distributed = pytest.importorskip("distributed", reason="the dask extra (pip install 'dask[distributed]')")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                                  dashboard_address=None) as local:
        yield local


@pytest.fixture
def small(web_settings):
    """A private copy of the 10k sample with cheaper fits (fewer sampled negatives, shorter saved lists):
    what is compared is where a model is fitted, not how well."""
    return dataclasses.replace(web_settings, max_negatives=1000, keep_recommendations=100)


@pytest.fixture
def client(cluster):
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as c:
        yield c


def _add_readers(settings, n_users: int) -> list[str]:
    """``n_users`` readers of the 10k sample, each with up to three tags: real papers of one primary category
    per tag (categories and papers picked in a fixed order, so every run tags the same papers)."""
    index = FeatureIndex.load(settings.models_dir)
    by_category: dict[str, list[str]] = {}
    with PaperStore(settings.papers_path, readonly=True) as store:
        for paper in store.iter_papers():
            if paper.categories and paper.id in index.row_of:
                by_category.setdefault(paper.categories[0], []).append(paper.id)
    categories = sorted((c for c, ids in by_category.items() if len(ids) >= 40),
                        key=lambda c: (-len(by_category[c]), c))
    names = []
    with UserStore(settings.users_path, settings.limits) as users:
        for u in range(n_users):
            user = users.add_user(f"reader{u}", "x")
            for t in range(1 + u % 3):
                category = categories[(u + 5 * t) % len(categories)]
                ids = sorted(by_category[category])
                users.add_tags(user.id, category, ids[u * 3 % 20:][:12])
            users.set_not_interested(user.id, sorted(by_category[categories[-1]])[u])
            names.append(user.username)
    return names


def _models(settings, names) -> dict[str, object]:
    with UserStore(settings.users_path) as users:
        return {name: load_user_model(settings.models_dir, users.get_user(name).id) for name in names}


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].tags == b[name].tags, name
        assert np.array_equal(a[name].W, b[name].W), name
        assert np.array_equal(a[name].b, b[name].b), name
        assert np.array_equal(a[name].top, b[name].top), name


def _train_locally_again(settings) -> dict:
    """Every user refitted from scratch in this process, the models as the local path writes them."""
    with UserStore(settings.users_path, settings.limits) as users:
        summary = service.train_current(settings, users, everyone=True)
        return _models(settings, summary.trained)


def test_cluster_models_equal_local_ones(small, client):
    names = _add_readers(small, 4)
    seen = []
    with UserStore(small.users_path, small.limits) as users:
        summary = service.train_current(small, users, progress=lambda done, total: seen.append((done, total)),
                                        trainer=DaskTrainer(client))
        assert sorted(summary.trained) == names and summary.skipped == 0 and summary.passes == 1
        assert seen[-1] == (4, 4) and [d for d, _ in seen] == list(range(1, 5))
        # Freshness as the local path reads it: nothing left to do, on either path.
        assert service.train_current(small, users, trainer=DaskTrainer(client)).skipped == 4
        assert service.train_current(small, users).trained == []
    on_cluster = _models(small, names)
    _assert_same(on_cluster, _train_locally_again(small))


def _republish(settings) -> str:
    """Publish the current features again as a new generation, as ``compute`` does when no paper changed."""
    generations = artifacts.Generations(settings.models_dir)
    with generations.new() as folder:
        shutil.copytree(generations.path(generations.current()), folder, dirs_exist_ok=True)
    return generations.current()


def test_a_generation_published_mid_train_is_trained_on_too(small, client, monkeypatch):
    """The multi-pass loop on the cluster: the workers switch to the new generation's features."""
    names = _add_readers(small, 2)
    real, published = service.train_users, []

    def train_then_publish(*args, **kwargs):
        summary = real(*args, **kwargs)
        if not published:
            published.append(_republish(small))  # compute finishes mid-train
        return summary

    monkeypatch.setattr(service, "train_users", train_then_publish)
    with UserStore(small.users_path, small.limits) as users:
        summary = service.train_current(small, users, trainer=DaskTrainer(client))
    assert summary.passes == 2 and summary.generation == published[0] and sorted(summary.trained) == names
    for name, model in _models(small, names).items():
        assert model.generation == published[0] and not model.carried, name


def _executing(dask_worker) -> list:
    return [str(ts.key) for ts in dask_worker.state.executing]


def test_a_worker_killed_mid_task_loses_nothing(small, cluster, client):
    names = _add_readers(small, 6)
    pids = client.run(os.getpid)
    with UserStore(small.users_path, small.limits) as users, ThreadPoolExecutor(1) as pool:
        running = pool.submit(service.train_current, small, users, False, None, 3, DaskTrainer(client))
        busy, deadline = {}, time.monotonic() + 30
        while not busy and time.monotonic() < deadline and not running.done():
            busy = {addr: keys for addr, keys in client.run(_executing).items() if keys}
            time.sleep(0.01)
        assert busy, "no task was ever seen running on a worker"
        victim, (key, *_) = next(iter(busy.items()))
        os.kill(pids[victim], signal.SIGKILL)  # mid-fit: the scheduler must run its user again elsewhere
        summary = running.result(timeout=120)
    starts = [step for step in cluster.scheduler.story(key) if step[0] == key and step[2] == "processing"]
    assert len(starts) >= 2, f"{key} was not run again after its worker died: {starts}"
    assert sorted(summary.trained) == names and summary.empty == []
    published = _models(small, names)
    with UserStore(small.users_path) as users:
        index = FeatureIndex.load(small.models_dir)
        for name in names:
            user = users.get_user(name)
            assert service.model_is_fresh(model_state(small.models_dir, user.id), index, user), name
    folder = small.models_dir / "users"
    # A temp file may be left by the dead worker, but never under a published name; `train` removes it.
    assert all(artifacts.is_temp(p.name) or p.suffix in (".npz", ".json", ".lock") for p in folder.iterdir())
    artifacts.remove_stale_temps(folder)
    assert not [p for p in folder.iterdir() if artifacts.is_temp(p.name)]
    _assert_same(published, _train_locally_again(small))


def test_a_library_read_before_a_newer_retrain_never_replaces_its_model(small):
    """The client reads a user's tags, the user tags again and the web app retrains, then the task runs:
    the task must keep the newer model (it is what ``fit_and_save`` does on a worker; run here)."""
    _add_readers(small, 1)
    index = FeatureIndex.load(small.models_dir)
    with UserStore(small.users_path, small.limits) as users:
        user = users.list_users()[0]
        old = service.read_library(users, user)
        users.add_tags(user.id, "later", index.ids[:3])
        newer = service.retrain_user(small, index, users, user.id, n_jobs=1)
    result = service.fit_and_save(small, index, old, n_jobs=1)
    assert result.fits == 0 and result.model is not None and "later" in result.model.tags
    kept = load_user_model(small.models_dir, user.id)
    assert kept.tags_version == newer.model.tags_version > old.tags_version and "later" in kept.tags


def _cheap_fits(monkeypatch):
    """The ``small`` fixture's settings for a ``paperfeed`` run, which reads them from the environment."""
    monkeypatch.setenv("PAPERFEED_MAX_NEGATIVES", "1000")
    monkeypatch.setenv("PAPERFEED_KEEP_RECOMMENDATIONS", "100")


def test_cli_trains_on_the_scheduler_with_the_local_summary(web_settings, cluster, capsys, monkeypatch):
    _cheap_fits(monkeypatch)
    names = _add_readers(web_settings, 2)
    code, out, err = run_cli(["train", "--scheduler", cluster.scheduler_address, "--json"], web_settings, capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert sorted(summary["trained"]) == names and summary["skipped"] == 0 and summary["passes"] == 1
    assert summary["generation"] == FeatureIndex.load(web_settings.models_dir).generation
    assert 0 < summary["max_bytes_per_model"] <= 64 * 1024  # compact models, written by the workers
    code, out, _ = run_cli(["train", "--json"], web_settings, capsys)  # locally: the cluster's models are fresh
    assert code == 0 and json.loads(out) == {**summary, "trained": [], "skipped": 2, "max_bytes_per_model": 0}
    for name, model in _models(web_settings, names).items():
        assert model is not None and model_path(web_settings.models_dir, model.user_id).exists(), name


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # free once closed: nothing listens there


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:{port}", "nonsense://nowhere"])
def test_an_unreachable_scheduler_is_one_clear_error(web_settings, capsys, monkeypatch, address):
    _add_readers(web_settings, 1)
    monkeypatch.setenv("PAPERFEED_DASK_TIMEOUT", "2")
    code, out, err = run_cli(["train", "--scheduler", address.format(port=_closed_port())], web_settings, capsys)
    assert code == 2 and out == ""
    assert "cannot reach the Dask scheduler" in err and "dask scheduler" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_the_setting_names_the_scheduler_too(web_settings, cluster, capsys, monkeypatch):
    names = _add_readers(web_settings, 1)
    _cheap_fits(monkeypatch)
    monkeypatch.setenv("PAPERFEED_DASK_SCHEDULER", cluster.scheduler_address)
    code, out, err = run_cli(["train", "--json"], web_settings, capsys)
    assert code == 0 and json.loads(out)["trained"] == names, err


def test_without_dask_installed_the_error_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # what `import distributed` meets when it is not installed
    with pytest.raises(ClusterUnavailable, match=r"pip install 'paperfeed\[dask\]'"):
        connect("tcp://127.0.0.1:8786", 1)


def test_local_training_never_imports_dask():
    code = ("import sys, jobs.cli, jobs.train, recommender.learning.distributed\n"
            "jobs.cli.build_parser('train')\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed'))\n"
            "assert not loaded, loaded\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
