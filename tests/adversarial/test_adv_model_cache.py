"""Issue 9: the web process's model cache under many threads, and its memory bound."""
from __future__ import annotations

import random
import threading

import pytest

from helpers import build_index, make_papers
from recommender.features import FeatureParams
from recommender.learning.models import train_user
from recommender.accounts.users import UserStore
from webapp import state as state_module
from webapp.state import AppState

USERS = 40


@pytest.fixture
def app_state(settings):
    index = build_index(settings, params=FeatureParams(min_df=1, max_df=1.0))
    ids = [p.id for p in make_papers()]
    with UserStore(settings.users_path) as users:
        for i in range(USERS):
            user = users.add_user(f"user{i:02d}", "x")
            tags = {"a": ids[i % 16:i % 16 + 2] or ids[:2]}
            users.add_tags(user.id, "a", tags["a"])
            train_user(index, user.id, tags, [], 1).save(settings.models_dir / "users" / f"{user.id}.npz")
    st = AppState(settings)
    yield st
    st.close()


def test_the_model_cache_survives_16_threads_evicting_at_once(app_state, settings, monkeypatch):
    """Defect: the cache evicted from several threads without a lock: KeyError and "dictionary changed
    size during iteration", 37 HTTP 500s under 16 threads."""
    one = app_state.model(1).nbytes
    monkeypatch.setattr(state_module, "MODEL_CACHE_BYTES", 3 * one)  # constant eviction
    errors, wrong = [], []

    def hammer(seed):
        rng = random.Random(seed)
        try:
            for _ in range(300):
                uid = rng.randint(1, USERS)
                model = app_state.model(uid)
                if model is None or model.user_id != uid:
                    wrong.append(uid)
        except Exception as exc:  # noqa: BLE001 - any exception is the defect
            errors.append(repr(exc))

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(16)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == [] and wrong == []
    assert app_state._cached_bytes <= 3 * one and len(app_state._models) <= 3


def test_the_cache_is_bounded_in_bytes_not_in_entries(app_state, monkeypatch):
    """A few huge libraries must not grow the process (the neighbour's model file reached 564 MB)."""
    monkeypatch.setattr(state_module, "MODEL_CACHE_BYTES", 10 * app_state.model(1).nbytes)
    for uid in range(1, USERS + 1):
        app_state.model(uid)
    assert len(app_state._models) == 10
    assert app_state._cached_bytes == sum(m.nbytes for _, m in app_state._models.values() if m is not None)
