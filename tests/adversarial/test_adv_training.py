"""Issue 9, noisy neighbours and stale models: limits, fair retraining, generations, damaged models.

Each test names the defect it pins. Small known-answer corpora (tests/helpers.py) keep them fast;
the 131k figures are in docs/benchmarks.md (benchmarks/bench_retrain_fairness.py).
"""
from __future__ import annotations

import dataclasses
import threading
import time

import numpy as np
import pytest

from helpers import build_index, make_papers, topic_of
from recommender.storage import artifacts
from recommender.learning import retrain, service
from recommender.features.index import FeatureIndex, compute_generation
from recommender.features import FeatureParams
from recommender.learning.models import ALL, CorruptModel, UserModel, load_user_model, model_path, model_state, train_user
from recommender.learning.ranking import Filters, rank_linear
from recommender.corpus.store import PaperStore
from recommender.accounts.users import LimitExceeded, Limits, UserError, UserStore, validate_tag

PARAMS = FeatureParams(min_df=1, max_df=1.0)


@pytest.fixture
def index(settings):
    return build_index(settings, params=PARAMS)


def _user(settings, name="alice", limits=None):
    store = UserStore(settings.users_path, limits)
    return store, store.add_user(name, "x")


# limits -----------------------------------------------------------------------------------------
def test_tag_limits_are_enforced_in_the_store_and_change_nothing(settings):
    users, alice = _user(settings, limits=Limits(tags=3, papers_per_tag=4))
    for t in ("a", "b", "c"):
        users.add_tags(alice.id, t, ["2504.00001"])
    before = (users.tags(alice.id), users.get_user_by_id(alice.id).tags_version)
    with pytest.raises(LimitExceeded, match="limit of 3 tags"):
        users.add_tags(alice.id, "d", ["2504.00001"])
    with pytest.raises(LimitExceeded, match="at most 4 papers"):
        users.add_tags(alice.id, "a", [f"2504.{i:05d}" for i in range(2, 7)])
    assert (users.tags(alice.id), users.get_user_by_id(alice.id).tags_version) == before
    users.add_tags(alice.id, "a", ["2504.00002", "2504.00003", "2504.00004"])  # exactly at the limit is fine
    assert len(users.tags(alice.id)["a"]) == 4
    users.add_tags(alice.id, "b", ["2504.00009"])
    with pytest.raises(LimitExceeded):
        users.rename_tag(alice.id, "b", "a")  # a merge past the per-tag limit is refused too
    assert len(users.tags(alice.id)["a"]) == 4 and "b" in users.tags(alice.id)
    assert LimitExceeded.status == 409


def test_token_and_not_interested_limits(settings):
    users, alice = _user(settings, limits=Limits(api_tokens=2, not_interested=2))
    users.create_token(alice.id, "one")
    users.create_token(alice.id, "two")
    with pytest.raises(LimitExceeded, match="revoke one"):
        users.create_token(alice.id, "three")
    assert len(users.tokens(alice.id)) == 2
    users.set_not_interested(alice.id, "2504.00001")
    users.set_not_interested(alice.id, "2504.00002")
    with pytest.raises(LimitExceeded):
        users.set_not_interested(alice.id, "2504.00003")
    assert users.not_interested(alice.id) == ["2504.00001", "2504.00002"]


def test_concurrent_taggers_cannot_squeeze_past_the_tag_limit(settings):
    users, alice = _user(settings, limits=Limits(tags=5))
    errors = []

    def add(i):
        with UserStore(settings.users_path, Limits(tags=5)) as own:
            try:
                own.add_tags(alice.id, f"t{i}", ["2504.00001"])
            except LimitExceeded:
                errors.append(i)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(20)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(users.tags(alice.id)) == 5 and len(errors) == 15


@pytest.mark.parametrize("name", ["__all__", "__ALL__", "__x", "  __all__  "])
def test_internal_model_names_are_reserved(name):
    with pytest.raises(UserError, match="reserved"):
        validate_tag(name)


def test_a_stored_reserved_tag_never_replaces_the_whole_library_model(index):
    """Defect: a tag named __all__ silently replaced the whole-library model."""
    model = train_user(index, 1, {"qec": ["2504.00001", "2504.00003"], ALL: ["2504.00002"]}, [], 1)
    assert model.tags.count(ALL) == 1
    w, b = model.weights()
    ids, _ = rank_linear(index, w, b, Filters(exclude=frozenset({"2504.00001", "2504.00003"})), n=3)
    assert [topic_of(p) for p in ids] == ["A"] * 3


# retrain only what changed, with a cost bound ---------------------------------------------------
def test_a_retrain_refits_only_the_changed_tag_and_the_library(settings, index):
    users, alice = _user(settings)
    users.add_tags(alice.id, "qec", ["2504.00001", "2504.00003"])
    users.add_tags(alice.id, "bio", ["2504.00002", "2504.00004"])
    first = service.retrain_user(settings, index, users, alice.id)
    assert first.fits == 3 and not first.more
    users.add_tags(alice.id, "qec", ["2504.00005"])
    second = service.retrain_user(settings, index, users, alice.id)
    assert second.fits == 2  # qec and the whole library; bio is kept as it was
    bio = first.model.tags.index("bio"), second.model.tags.index("bio")
    assert np.array_equal(first.model.W[bio[0]], second.model.W[bio[1]])
    assert service.retrain_user(settings, index, users, alice.id).fits == 0  # fresh: nothing to do
    assert service.model_is_fresh(model_state(settings.models_dir, alice.id), index, users.get_user_by_id(alice.id))


def test_a_retrain_stops_at_its_cost_bound_and_resumes(settings, index):
    users, alice = _user(settings)
    ids = [p.id for p in make_papers()]
    for i in range(12):
        users.add_tags(alice.id, f"t{i:02d}", ids[i:i + 2])
    turns = []
    while True:
        result = service.retrain_user(settings, index, users, alice.id, max_fits=5)
        turns.append(result.fits)
        if not result.more:
            break
    assert turns == [5, 5, 3]  # 13 models (12 tags and the library), never more than 5 per turn
    model = load_user_model(settings.models_dir, alice.id)
    assert len(model.tags) == 13 and not model.partial


# the fair queue ------------------------------------------------------------------------------
def test_a_neighbour_at_the_limits_cannot_hold_the_queue(settings, index):
    """Defect: one account with many tags made every other user's retrain wait (0.28 s -> 300 s)."""
    limits = Limits(tags=50)
    users, noisy = _user(settings, "noisy", limits)
    quiet = users.add_user("quiet", "x")
    ids = [p.id for p in make_papers()]
    for i in range(50):
        users.add_tags(noisy.id, f"t{i:02d}", [ids[i % 16], ids[(i * 7 + 1) % 16]])
    users.add_tags(quiet.id, "qec", ids[:4:2])
    log = []

    def work(uid):
        with UserStore(settings.users_path, limits) as own:
            result = service.retrain_user(settings, index, own, uid, n_jobs=1, max_fits=8)
        log.append((uid, result.fits))
        return result.more

    queue = retrain.RetrainQueue(work, workers=1)
    try:
        queue.schedule(noisy.id)
        queue.schedule(quiet.id)
        assert queue.drain(120)
    finally:
        queue.close()
    fits_before_quiet = sum(f for uid, f in log[:next(i for i, (u, _) in enumerate(log) if u == quiet.id)])
    assert fits_before_quiet <= 8, log  # one bounded turn of the neighbour, not all 51 models
    assert [f for u, f in log if u == noisy.id] == [8, 8, 8, 8, 8, 8, 3]
    assert load_user_model(settings.models_dir, noisy.id).tags.__len__() == 51


def test_the_queue_coalesces_and_never_runs_one_user_twice_at_once():
    running, runs, overlap = set(), [], []
    gate = threading.Event()

    def work(uid):
        if uid in running:
            overlap.append(uid)
        running.add(uid)
        gate.wait(5)
        runs.append(uid)
        running.discard(uid)
        return False

    queue = retrain.RetrainQueue(work, workers=2)
    try:
        queue.schedule(1)
        time.sleep(0.1)  # user 1 is now running
        for _ in range(100):
            queue.schedule(1)
        gate.set()
        assert queue.drain(10)
    finally:
        queue.close()
    assert runs == [1, 1] and not overlap  # the running turn, then exactly one more for the changes


def test_a_failed_retrain_is_retried_with_backoff_and_reported(monkeypatch):
    """Defect: a failed background retrain was logged and never retried ("being trained" forever)."""
    monkeypatch.setattr(retrain, "RETRY_BASE_S", 0.05)
    calls = []

    def work(uid):
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise OSError("disk full")
        return False

    queue = retrain.RetrainQueue(work, workers=1)
    try:
        queue.schedule(7)
        deadline = time.monotonic() + 2
        while queue.status(7).error is None and time.monotonic() < deadline:
            time.sleep(0.01)
        status = queue.status(7)
        assert status.error == "OSError: disk full" and status.attempts >= 1
        queue.schedule(7, change=False)  # a page view does not skip the backoff
        while len(calls) < 3 and time.monotonic() < deadline + 3:
            time.sleep(0.01)
        assert queue.drain(5)
    finally:
        queue.close()
    assert len(calls) == 3 and calls[2] - calls[1] >= 0.09  # the second wait doubled
    assert queue.status(7).error is None


# generations --------------------------------------------------------------------------------
def _new_generation(settings, extra_days=0):
    """Publish a new generation with more papers (a daily `compute`)."""
    more = [dataclasses.replace(p, id=f"2505.{i + 1:05d}") for i, p in enumerate(make_papers("2025-05-01"))]
    with PaperStore(settings.papers_path) as store:
        store.upsert_many(more)
        compute_generation(store, settings.models_dir, PARAMS)
    return FeatureIndex.load(settings.models_dir)


def test_a_new_generation_keeps_everyones_recommendations(settings, index):
    """Defect: every compute made every model stale, and feeds fell back to "newest" until retrained."""
    users, alice = _user(settings)
    users.add_tags(alice.id, "qec", ["2504.00001", "2504.00003", "2504.00005"])
    service.retrain_user(settings, index, users, alice.id)
    new = _new_generation(settings)
    assert new.generation != index.generation
    carried = service.current_model(settings, new, alice.id)
    assert carried.generation == new.generation and carried.carried
    old_model = load_user_model(settings.models_dir, alice.id)
    col_old, col_new = index.feature_names.index("qubits"), new.feature_names.index("qubits")
    assert carried.W[0, col_new] == old_model.W[0, col_old]  # weights move by term
    ids, _ = service.recommend(new, carried, {"2504.00001", "2504.00003", "2504.00005"}, ["qec"],
                               Filters(exclude=frozenset({"2504.00001", "2504.00003", "2504.00005"})), n=6)
    assert [topic_of(p) for p in ids] == ["A"] * 6
    assert not service.model_is_fresh(model_state(settings.models_dir, alice.id), new, users.get_user_by_id(alice.id))
    summary = service.train_current(settings, users)
    assert summary.trained == ["alice"] and summary.generation == new.generation
    assert not load_user_model(settings.models_dir, alice.id).carried


def test_train_racing_compute_retrains_on_the_new_generation(settings, index, monkeypatch):
    """Defect: train running while compute published left models silently tied to the old generation."""
    users, alice = _user(settings)
    users.add_tags(alice.id, "qec", ["2504.00001", "2504.00003"])
    real = service.train_users
    published = []

    def train_then_publish(*args, **kwargs):
        summary = real(*args, **kwargs)
        if not published:
            published.append(_new_generation(settings).generation)  # compute finishes mid-train
        return summary

    monkeypatch.setattr(service, "train_users", train_then_publish)
    summary = service.train_current(settings, users)
    assert summary.passes == 2 and summary.generation == published[0]
    assert load_user_model(settings.models_dir, alice.id).generation == published[0]


# damaged models -----------------------------------------------------------------------------
def test_a_truncated_model_is_retrained_not_fatal(settings, index):
    """Defect: one truncated .npz aborted `train` for every user."""
    users, alice = _user(settings)
    bob = users.add_user("bob", "x")
    users.add_tags(alice.id, "qec", ["2504.00001", "2504.00003"])
    users.add_tags(bob.id, "bio", ["2504.00002", "2504.00004"])
    service.train_current(settings, users)
    path = model_path(settings.models_dir, alice.id)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CorruptModel, match="retrained"):
        load_user_model(settings.models_dir, alice.id)
    assert service.current_model(settings, index, alice.id) is None  # unusable at serve time, never a crash
    summary = service.train_current(settings, users)
    assert summary.trained == ["alice"] and summary.skipped == 1  # bob is fresh; alice is refitted
    assert load_user_model(settings.models_dir, alice.id).tags == [ALL, "qec"]
    path.write_bytes(b"garbage of the same length".ljust(path.stat().st_size, b"\0"))
    assert service.current_model(settings, index, alice.id) is None
    assert "alice" in service.train_current(settings, users).trained  # same size, but its stamp cannot be read


def test_train_decides_freshness_without_reading_the_weights(settings, index, monkeypatch):
    """Defect: train read every model file in full just to check whether it was fresh."""
    users, alice = _user(settings)
    users.add_tags(alice.id, "qec", ["2504.00001", "2504.00003"])
    service.train_current(settings, users)

    def refuse(*_):
        raise AssertionError("train opened a model's weights to check freshness")

    monkeypatch.setattr(UserModel, "load", classmethod(refuse))
    summary = service.train_current(settings, users)
    assert summary.skipped == 1 and summary.trained == []


def test_a_weights_file_newer_than_its_record_reads_as_stale(settings, index):
    users, alice = _user(settings)
    users.add_tags(alice.id, "qec", ["2504.00001", "2504.00003"])
    model = service.retrain_user(settings, index, users, alice.id).model
    record = model_path(settings.models_dir, alice.id).with_suffix(".json")
    artifacts.write_json(record, {**model.state(), "partial": True})  # a crash between the two writes
    assert not service.model_is_fresh(model_state(settings.models_dir, alice.id), index, users.get_user_by_id(alice.id))
    # A record from an earlier save of the same size: the stamps differ, so it reads as stale too.
    older = record.read_bytes()
    model.save(model_path(settings.models_dir, alice.id))
    assert model_state(settings.models_dir, alice.id) is not None
    record.write_bytes(older.replace(b'"partial":true', b'"partial":false'))
    assert model_state(settings.models_dir, alice.id) is None


# sessions ----------------------------------------------------------------------------------------
def test_sessions_expire_when_idle_or_old_and_are_pruned(settings, monkeypatch):
    """Defect: server-side sessions never expired and were never cleaned up."""
    users, alice = _user(settings, limits=Limits(session_idle_s=100, session_max_s=1000))
    clock = [1_000_000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    idle, active = users.create_session(alice.id), users.create_session(alice.id)
    for _ in range(11):  # `active` is used every 90 s; `idle` never
        clock[0] += 90
        assert users.session_user(active) is not None
    assert users.session_user(idle) is None  # idle for 990 s > 100 s
    clock[0] += 20
    assert users.session_user(active) is None  # 1010 s after login > 1000 s, however active
    users.create_session(alice.id)  # a login prunes every expired row
    count = users.conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
    assert count == 1


def test_rows_with_the_same_papers_are_fitted_once(settings, index, monkeypatch):
    """A one-tag library's tag and whole-library rows are the same fit: a retrain pays for it once."""
    from recommender.learning import models

    calls = []
    real = models.fit_user_weights
    monkeypatch.setattr(models, "fit_user_weights", lambda *a, **k: calls.append(1) or real(*a, **k))
    model = train_user(index, 1, {"qec": ["2504.00001", "2504.00003"]}, ["2504.00002"], 1)
    assert len(calls) == 1 and model.tags == [ALL, "qec"]
    assert np.array_equal(model.W[0], model.W[1]) and np.array_equal(model.top[0], model.top[1])
