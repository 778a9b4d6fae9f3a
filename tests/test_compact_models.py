"""Issue 12 part 2: compact user models (the largest weights only) and a saved ranking over recent papers.

The sizes and rankings are measured on the real 10k sample; the format and alignment checks that need a
second generation use the small known-answer corpus of tests/helpers.py.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from helpers import build_index, make_papers
from recommender.corpus.store import PaperStore
from recommender.features import FeatureParams
from recommender.features.index import FeatureIndex, column_keys, compute_generation, from_day
from recommender.learning import service
from recommender.learning.models import (ALL, FROM_START, CorruptModel, TrainParams, UserModel, align, compact,
                                         load_user_model, model_path, train_user, window_start)
from recommender.learning.ranking import Filters, rank_linear
from recommender.storage import artifacts

LIMIT = 64 * 1024
TAGS = {"quantum": ("quant-ph", 40), "galaxies": ("astro-ph.GA", 30), "language": ("cs.CL", 60)}


@pytest.fixture(scope="module")
def index(built10k) -> FeatureIndex:
    return FeatureIndex.load(built10k.models_dir)


@pytest.fixture(scope="module")
def library(index) -> dict[str, list[str]]:
    """Three real tags: every 7th paper of a category, up to a few dozen (spread over the sample's dates)."""
    tags = {}
    for tag, (category, n) in TAGS.items():
        rows = index.category_rows[category][::7][:n]
        tags[tag] = [index.ids[r] for r in rows]
    return tags


@pytest.fixture(scope="module")
def dense_and_compact(index, library):
    dense = train_user(index, 3, library, [], 1, TrainParams(max_weights=0, window_days=0))
    small = train_user(index, 3, library, [], 1, TrainParams(window_days=0))
    return dense, small


def next_generation(settings, params) -> FeatureIndex:
    """A month more of papers, computed into a new current generation."""
    more = [dataclasses.replace(p, id=f"2505.{i + 1:05d}") for i, p in enumerate(make_papers("2025-05-01"))]
    with PaperStore(settings.papers_path) as store:
        store.upsert_many(more)
        compute_generation(store, settings.models_dir, params)
    return FeatureIndex.load(settings.models_dir)


def test_compact_keeps_the_largest_weights_and_is_stable():
    w = np.array([0.1, -3.0, 0.5, 2.0, -0.01, 0.0], dtype=np.float32)
    kept = compact(w, 2)
    assert np.flatnonzero(kept).tolist() == [1, 3]
    np.testing.assert_allclose(kept[[1, 3]], [-3.0, 2.0], rtol=1e-3)
    assert np.array_equal(compact(kept, 2), kept)  # what is saved comes back exactly
    assert np.array_equal(compact(w, 0), w)  # 0: dense, untouched
    assert np.flatnonzero(compact(w, 10)).tolist() == [0, 1, 2, 3, 4]  # zeros are never stored
    tiny = np.array([3e-6, -1e-7, 2e-6], dtype=np.float32)  # below float16's normal range: scaled, not lost
    np.testing.assert_allclose(compact(tiny, 3), tiny, rtol=1e-3)


def test_compact_model_files_are_under_64_kb_per_tag(index, dense_and_compact, tmp_path):
    dense, small = dense_and_compact
    assert small.max_weights == TrainParams().max_weights > 0
    assert all(np.count_nonzero(row) <= small.max_weights for row in small.W)
    small.save(tmp_path / "small.npz")
    dense.save(tmp_path / "dense.npz")
    per_tag = (tmp_path / "small.npz").stat().st_size / len(small.tags)
    assert per_tag <= LIMIT
    assert (tmp_path / "dense.npz").stat().st_size / len(dense.tags) > 4 * LIMIT  # what it replaces
    loaded = UserModel.load(tmp_path / "small.npz")
    assert np.array_equal(loaded.W, small.W) and loaded.max_weights == small.max_weights
    assert np.array_equal(loaded.top, small.top) and np.array_equal(loaded.top_since, small.top_since)


def test_compact_ranking_agrees_with_the_dense_one(index, library, dense_and_compact):
    """The top 20 and top 100 of each row's ranking over every paper. Measured on this sample at 8,000
    of about 150,000 nonzero weights: 15 to 20 of the top 20 and 95 to 100 of the top 100 shared."""
    dense, small = dense_and_compact
    for tag in [ALL, *library]:
        top20, top100 = _overlaps(index, library, dense, small, tag)
        assert top20 >= 14 and top100 >= 90, tag


def test_fewer_weights_rank_worse_than_more(index, library, dense_and_compact):
    """The bounds above can fail: with 50 weights the ranking drifts far from the dense one."""
    dense, _ = dense_and_compact
    crude = train_user(index, 3, library, [], 1, TrainParams(max_weights=50, window_days=0))
    top20, top100 = _overlaps(index, library, dense, crude, "language")
    assert top20 < 14 and top100 < 90


def _overlaps(index, library, a: UserModel, b: UserModel, tag: str) -> tuple[int, int]:
    """Papers the two models share in their top 20 and top 100 for ``tag`` (library papers hidden)."""
    exclude = frozenset(p for ids in library.values() for p in ids)
    first, _ = rank_linear(index, *a.weights([tag]), Filters(exclude=exclude), n=100)
    second, _ = rank_linear(index, *b.weights([tag]), Filters(exclude=exclude), n=100)
    return len(set(first[:20]) & set(second[:20])), len(set(first) & set(second))


def test_saved_ranking_covers_the_window_and_older_queries_rank_afresh(index, library):
    params = TrainParams(window_days=60)
    model = train_user(index, 5, library, [], 1, params)
    lo = window_start(index.dates, 60)
    assert 0 < lo < len(index)
    assert (model.top_since == index.dates[lo]).all()
    assert (model.top[model.top >= 0] >= lo).all()
    exclude = frozenset(p for ids in library.values() for p in ids)
    first_day, day_before = (dt.date.fromisoformat(from_day(int(index.dates[r]))) for r in (lo, lo - 1))
    for since in (None, day_before, first_day, first_day + dt.timedelta(days=20)):
        filters = Filters(since=since, exclude=exclude)
        saved = service._saved_ranking(index, model, ["language"], filters, frozenset(), exclude, 20, 0)
        assert (saved is not None) == (since is not None and since >= first_day), since
        got = service.recommend(index, model, exclude, ["language"], filters, n=20)
        want = rank_linear(index, *model.weights(["language"]), filters, n=20)
        assert got[0] == want[0], since
        np.testing.assert_allclose(got[1], want[1], rtol=1e-4)


def test_old_dense_files_still_load(index, library, dense_and_compact, tmp_path):
    """A file written before this change: dense W, no window, no stored weight count."""
    dense, _ = dense_and_compact
    path = tmp_path / "old.npz"
    artifacts.write_npz(path, W=dense.W, b=dense.b, top=dense.top, top_scores=dense.top_scores,
                        tags=np.array(dense.tags, dtype=str), fingerprints=np.array(dense.fingerprints, dtype=str),
                        fitted=np.array(dense.fitted, dtype=str),
                        meta=np.array([dense.generation, "3", "1", "1.0", "0", "stamp"]))
    old = UserModel.load(path)
    assert np.array_equal(old.W, dense.W) and old.max_weights == 0 and (old.top_since == FROM_START).all()
    exclude = frozenset(p for ids in library.values() for p in ids)
    assert service._saved_ranking(index, old, None, Filters(exclude=exclude), frozenset(), exclude, 5, 0)


def test_damaged_sparse_rows_read_as_corrupt(dense_and_compact, tmp_path):
    _, small = dense_and_compact
    small.save(tmp_path / "m.npz")
    members = artifacts.read_npz(tmp_path / "m.npz")
    members["indices"] = members["indices"].copy()
    members["indices"][0] = small.W.shape[1] + 5
    artifacts.write_npz(tmp_path / "m.npz", **members)
    with pytest.raises(CorruptModel):
        UserModel.load(tmp_path / "m.npz")


def test_a_new_generation_moves_the_window_and_keeps_every_row(settings):
    """A new generation starts the window later; rows not yet refitted (the web retrains a few at a time)
    must be kept, not dropped, with their own window."""
    params = FeatureParams(min_df=1, max_df=1.0)
    first = build_index(settings, params=params)
    tags = {"qec": ["2504.00001", "2504.00003"], "bio": ["2504.00002", "2504.00004"], "more": ["2504.00005"]}
    train = TrainParams(max_weights=40, window_days=10)
    model = train_user(first, 1, tags, [], 1, train)
    model.save(model_path(settings.models_dir, 1))
    second = next_generation(settings, params)
    moved = align(load_user_model(settings.models_dir, 1), second, settings.models_dir)
    again = train_user(second, 1, tags, [], 1, train, previous=moved, max_fits=1)
    assert again.tags == model.tags and again.partial
    fresh = window_start(second.dates, 10)
    assert again.top_since[0] == second.dates[fresh] > model.top_since[0]  # the one row refitted: new window
    assert (again.top[1:] == -1).all()  # carried rows: no saved ranking until refitted


@pytest.mark.parametrize("max_weights", [0, 40])
def test_old_and_compact_files_align_to_a_new_generation(settings, max_weights):
    params = FeatureParams(min_df=1, max_df=1.0)
    first = build_index(settings, params=params)
    model = train_user(first, 1, {"qec": ["2504.00001", "2504.00003", "2504.00005"]}, [], 1,
                       TrainParams(max_weights=max_weights))
    model.save(model_path(settings.models_dir, 1))
    second = next_generation(settings, params)
    assert second.generation != first.generation
    moved = align(load_user_model(settings.models_dir, 1), second, settings.models_dir)
    assert moved.generation == second.generation and moved.max_weights == max_weights
    old_keys, new_keys = (column_keys(settings.models_dir, g) for g in (first.generation, second.generation))
    kept = np.flatnonzero(model.W[0])
    assert 0 < len(kept) <= max(max_weights, len(old_keys))
    for c in kept:  # each weight moves by feature name
        assert moved.W[0, new_keys.index(old_keys[c])] == model.W[0, c]
    assert np.count_nonzero(moved.W[0]) == len(kept)


def test_evaluate_model_weights_rows_fit_through_compact():
    import argparse

    from jobs.evaluate import _weight_counts
    from recommender.evaluation import grid

    assert _weight_counts("0,2000,8000") == (0, 2000, 8000)
    for bad in ("0,x", "-1", "4000,4000"):
        with pytest.raises(argparse.ArgumentTypeError):
            _weight_counts(bad)
    rows = grid.weight_variants((0, 4000))
    methods = [v.method(FeatureParams(), TrainParams()) for v in rows]
    assert [m.name for m in methods] == ["paperfeed, dense weights", "paperfeed, 4,000 weights"]
    assert [m.train_params.max_weights for m in methods] == [0, 4000]
