"""`compute`'s streamed, chunked, parallel feature build (recommender/features/streaming.py) on 4,000 papers of the 10k sample:
the same matrix as the in-memory build when the vocabulary sample covers every paper, and a vocabulary
fitted on a sample (with every paper's idf) when it does not."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from recommender.corpus.ingest import read_snapshot
from recommender.corpus.store import PaperStore
from recommender.features import FeatureParams, build_features
from recommender.features.index import FeatureIndex, compute_generation, snapshot
from recommender.features.streaming import StoreChanged, stream_features
from recommender.learning.models import TrainParams
from recommender.features.text import fit_tfidf, in_vocabulary_sample, paper_text, sample_fraction
from recommender.settings import load_settings

PARAMS = FeatureParams()


@pytest.fixture(scope="module")
def store4k(tmp_path_factory, sample10k):
    """The first 4,000 papers of the 10k sample (enough for every block, small enough to build four times)."""
    root = tmp_path_factory.mktemp("stream4k")
    path = load_settings(environ={}, data_dir=root / "data", models_dir=root / "models").papers_path
    papers = [paper for _, paper, _ in read_snapshot(sample10k) if paper is not None][:4000]
    with PaperStore(path) as store:
        store.upsert_many(papers)
    return path


@pytest.fixture(scope="module")
def in_memory(store4k):
    with PaperStore(store4k, readonly=True) as store:
        papers = snapshot(store)
    return papers, build_features(papers, PARAMS)


def assert_same_matrix(A, B):
    assert A.shape == B.shape and A.nnz == B.nnz
    assert np.array_equal(A.indptr, B.indptr) and np.array_equal(A.indices, B.indices)
    np.testing.assert_allclose(A.data, B.data, rtol=2e-6, atol=1e-7)


def test_streamed_features_equal_the_in_memory_build(store4k, in_memory):
    papers, expected = in_memory
    with PaperStore(store4k, readonly=True) as store:  # 2 processes, 3 chunks (the last one short)
        rows, got = stream_features(store, PARAMS, n_jobs=2, chunk=1500)
    assert rows.ids == [p.id for p in papers]
    assert rows.dates.tolist() == sorted(rows.dates.tolist())
    assert got.text_names == expected.text_names and got.categories == expected.categories
    assert got.authors.keys == expected.authors.keys and got.authors.labels == expected.authors.labels
    assert got.blocks == expected.blocks
    np.testing.assert_allclose(got.idf, expected.idf, rtol=1e-6)
    assert_same_matrix(got.X, expected.X)
    # Each row's categories, primary first, as the paper lists them.
    for i in (0, 1234, len(papers) - 1):
        assert rows.category_lists(i, i + 1)[0] == list(dict.fromkeys(papers[i].categories))


def test_vocabulary_on_a_sample_keeps_every_papers_idf(store4k, in_memory):
    papers, full = in_memory
    params = dataclasses.replace(PARAMS, vocabulary_sample=800)
    texts = [paper_text(p, params.title_repeat) for p in papers]
    fraction = sample_fraction(params, len(texts))
    assert fraction == pytest.approx(0.2)
    in_sample = sum(in_vocabulary_sample(t, fraction) for t in texts)
    assert 650 < in_sample < 950  # a hash sample: about the asked size, never every paper
    X, names, idf = fit_tfidf(texts, params)
    with PaperStore(store4k, readonly=True) as store:
        _, streamed = stream_features(store, params, n_jobs=2, chunk=1000)
    assert streamed.text_names == names
    assert_same_matrix(streamed.X[:, :len(names)], X)
    # The vocabulary is smaller than the full fit's (fewer terms reach min_df in 800 papers) ...
    assert 0.1 * len(full.text_names) < len(names) < 0.5 * len(full.text_names)
    # ... but a term's idf is computed over all 4,000 papers: the same as the full fit's for shared terms.
    position = {t: i for i, t in enumerate(full.text_names)}
    shared = [i for i, t in enumerate(names) if t in position][:500]
    np.testing.assert_allclose(idf[shared], full.idf[[position[names[i]] for i in shared]], rtol=1e-6)
    # Every row is still a unit vector over the text block, except papers with no known term.
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    assert np.all((np.abs(norms - 1) < 1e-4) | (norms == 0)) and (norms == 0).mean() < 0.001


def test_compute_writes_the_streamed_generation(tmp_path, store4k, in_memory):
    papers, expected = in_memory
    models = tmp_path / "models"
    with PaperStore(store4k, readonly=True) as store:
        result = compute_generation(store, models, PARAMS, n_jobs=2)
    index = FeatureIndex.load(models)
    assert result.papers == len(papers) and list(index.ids) == [p.id for p in papers]
    assert index.meta["first_date"] == papers[0].published and index.meta["last_date"] == papers[-1].published
    assert_same_matrix(index.X, expected.X)
    cs_lg = [i for i, p in enumerate(papers) if "cs.LG" in p.categories]
    assert index.category_rows["cs.LG"].tolist() == cs_lg


def test_a_paper_gone_between_the_passes_is_a_clear_error(tmp_path, store4k, monkeypatch):
    import recommender.features.streaming as streaming

    real_scan = streaming.scan

    def scan_then_vanish(store, params, step):
        found = real_scan(store, params, step)
        found.rows.ids[5] = "2501.99999"  # as if the store lost the paper the scan saw
        return found

    monkeypatch.setattr(streaming, "scan", scan_then_vanish)
    with PaperStore(store4k, readonly=True) as store, pytest.raises(StoreChanged, match="compute` again"):
        stream_features(store, PARAMS, n_jobs=1)


def test_an_empty_store_is_a_clear_error(tmp_path):
    with PaperStore(tmp_path / "papers.sqlite") as store, pytest.raises(ValueError, match="store is empty"):
        stream_features(store, PARAMS)


def test_evaluate_vocabulary_sample_rows_fit_on_a_sample(store4k, in_memory):
    """`evaluate --vocabulary-sample 0,N` pairs the defaults with the vocabulary fitted on every paper and on
    N papers; the cached text block is keyed by the sample only when it changes the block."""
    from recommender.evaluation import grid
    from recommender.evaluation.cache import FeatureCache
    from recommender.evaluation.tasks import Task

    papers, full = in_memory
    every, sampled = (v.method(PARAMS, TrainParams()).feature_params for v in grid.sample_variants((0, 800)))
    assert every.vocabulary_sample == 0 and sampled.vocabulary_sample == 800
    task = Task("authors", "test", "t", papers, [])
    cache = FeatureCache(None)
    X_every, names_every, _ = cache.text(task, every)
    X_sampled, names_sampled, _ = cache.text(task, sampled)
    assert names_every == full.text_names and len(names_sampled) < 0.5 * len(names_every)
    assert X_sampled.shape == (len(papers), len(names_sampled))
