"""Ranking functions on a corpus whose answers are known."""
import datetime as dt

import numpy as np
import pytest

from recommender.learning import ranking
from recommender.learning.models import train_user
from recommender.learning.ranking import Filters
from tests.helpers import build_index, topic_of


@pytest.fixture
def index(settings):
    return build_index(settings)


def test_rows_are_date_sorted_and_aligned_with_ids(index):
    assert np.all(np.diff(index.dates) >= 0)
    assert index.ids[0] == "2504.00001" and index.X.shape == (16, index.blocks[-1].stop)
    assert [b.name for b in index.blocks] == ["text", "authors", "categories"]
    assert index.blocks[0].stop == len(index.feature_names)  # the text block's terms come first


def test_similar_returns_same_topic_first(index):
    ids, scores = ranking.similar(index, "2504.00001", n=7)
    assert "2504.00001" not in ids
    assert [topic_of(p) for p in ids] == ["A"] * 7
    assert scores == sorted(scores, reverse=True)


def test_similar_unknown_and_malformed_ids(index):
    with pytest.raises(KeyError, match="not in the feature index"):
        ranking.similar(index, "2501.99999")
    with pytest.raises(ValueError, match="is not an arXiv id"):
        ranking.similar(index, "../etc/passwd")


def test_search_by_keywords_is_relevance_ranked(index):
    ids, scores = ranking.search(index, "protein folding", n=5)
    assert [topic_of(p) for p in ids] == ["B"] * 5
    assert all(s > 0 for s in scores)
    assert ranking.search(index, "zebra unicorn", n=5) == ([], [])


def test_search_by_id_finds_the_paper(index):
    assert ranking.search(index, "2504.00003v2")[0] == ["2504.00003"]
    assert ranking.search(index, "https://arxiv.org/abs/2504.00004")[0] == ["2504.00004"]


@pytest.mark.parametrize("query", ["", "   ", "x" * 1001])
def test_search_rejects_empty_or_huge_queries(index, query):
    with pytest.raises(ValueError):
        ranking.search(index, query)


def test_date_window_and_category_filters(index):
    f = Filters(since=dt.date(2025, 4, 3), until=dt.date(2025, 4, 6))
    ids, _ = ranking.recent(index, f, n=20)
    assert ids == ["2504.00006", "2504.00005", "2504.00004", "2504.00003"]
    ids, _ = ranking.recent(index, Filters(categories=("q-bio.BM",)), n=20)
    assert len(ids) == 8 and {topic_of(p) for p in ids} == {"B"}
    assert ranking.count(index, Filters(categories=("quant-ph",), exclude=frozenset({"2504.00001"}))) == 7
    with pytest.raises(ValueError, match="after until"):
        Filters(since=dt.date(2025, 5, 1), until=dt.date(2025, 4, 1))


def test_pagination_is_consistent(index):
    all_ids, _ = ranking.similar(index, "2504.00002", n=15)
    pages = [ranking.similar(index, "2504.00002", n=4, offset=o)[0] for o in range(0, 16, 4)]
    assert sum(pages, []) == all_ids
    assert ranking.recent(index, n=5, offset=100) == ([], [])


@pytest.mark.parametrize("n, offset", [(0, 0), (-1, 0), (1001, 0), (10, -1)])
def test_bad_page_arguments(index, n, offset):
    with pytest.raises(ValueError):
        ranking.recent(index, n=n, offset=offset)


def test_random_respects_filters_and_seed(index):
    a, _ = ranking.random_papers(index, Filters(categories=("quant-ph",)), n=5, seed=1)
    b, _ = ranking.random_papers(index, Filters(categories=("quant-ph",)), n=5, seed=1)
    assert a == b and len(set(a)) == 5 and {topic_of(p) for p in a} == {"A"}


def test_tagging_topic_a_ranks_unseen_topic_a_first(index):
    tagged = ["2504.00001", "2504.00003", "2504.00005"]
    model = train_user(index, 1, {"qec": tagged}, [], tags_version=1)
    w, b = model.weights(["qec"])
    ids, _ = ranking.rank_linear(index, w, b, Filters(exclude=frozenset(tagged)), n=13)
    assert [topic_of(p) for p in ids[:5]] == ["A"] * 5
    assert not set(tagged) & set(ids)
    # The saved ranking agrees with a fresh mat-vec.
    saved = [index.ids[r] for r in model.top[model.tags.index("qec")][:5]]
    assert saved == ids[:5]


def test_a_users_models_fitted_on_threads_equal_the_serial_fit(index):
    tags = {"qec": ["2504.00001", "2504.00003"], "bio": ["2504.00002", "2504.00004"], "more": ["2504.00005"]}
    serial = train_user(index, 7, tags, ["2504.00006"], tags_version=3)
    threaded = train_user(index, 7, tags, ["2504.00006"], tags_version=3, n_jobs=2)
    assert serial.tags == threaded.tags == [serial.tags[0], "bio", "more", "qec"]
    # liblinear's one random generator per process lets concurrent fits differ in the last digits only; the
    # served weights are float16 relative to the row's largest, so such a digit can move one float16 step.
    np.testing.assert_allclose(serial.W, threaded.W, rtol=1e-3, atol=1e-3 * float(np.abs(serial.W).max()))
    np.testing.assert_allclose(serial.b, threaded.b, rtol=1e-4, atol=1e-6)
    assert [set(row[:5]) for row in serial.top] == [set(row[:5]) for row in threaded.top]


def test_explain_and_top_terms(index):
    terms = dict(ranking.top_terms(index, "2504.00002", n=20))
    assert "protein" in terms or "protein folding" in terms
    model = train_user(index, 1, {"qec": ["2504.00001", "2504.00003"]}, [], tags_version=1)
    terms = ranking.explain(index, "2504.00007", model.weights(["qec"])[0], n=5)["text"]
    assert 0 < len(terms) <= 5 and all(r.contribution > 0 and r.kind == "text" for r in terms)
    assert any(r.label in ("qubits", "surface code", "error correction", "surface", "code", "qubit") for r in terms)
    assert all(t in index.feature_names for t in dict(ranking.top_terms(index, "2504.00007", n=50)))


@pytest.mark.parametrize("lo, hi", [(0, 40), (3, 17), (39, 40), (5, 5)])
def test_window_matvec_equals_slicing(lo, hi):
    import scipy.sparse as sp

    X = sp.random(40, 30, density=0.2, format="csr", dtype=np.float32, random_state=3)
    w = np.random.default_rng(0).random(30, dtype=np.float32)
    assert np.allclose(ranking.window_matvec(X, lo, hi, w), X[lo:hi] @ w, atol=1e-6)


def _exact(index, query, lo, hi, mask, n):
    """Exact top rows by the dot product, the way similar papers ranked before postings were bounded."""
    scores = ranking.inverted_scores(index.XT, query)[lo:hi]
    return ranking.top_rows(scores, lo, mask, n)


def test_bounded_postings_rescore_candidates_exactly_and_find_the_exact_top(built10k):
    """Past the postings budget, similar papers read only the heaviest terms' postings, then rescore the best
    candidates from their rows: the scores are exact dot products and the top 20 are nearly the exact ones."""
    from recommender.features.index import FeatureIndex

    index = FeatureIndex.load(built10k.models_dir)
    n_rows = len(index)
    rng = np.random.default_rng(0)
    recalls, pruned = [], 0
    for row in rng.choice(n_rows, 40, replace=False):
        query = ranking.similar_query(index.X, int(row), index.similar_scale)
        mask = np.ones(n_rows, dtype=bool)
        mask[row] = False
        postings = int(np.diff(index.XT.indptr)[query.indices].sum())
        budget = postings // 4  # a quarter of what the exact answer reads
        pruned += budget < postings
        got, got_scores = ranking.relevance_top(index, query, 0, n_rows, mask, 20, 0, False, budget=budget,
                                                rescore=300)
        exact, _ = _exact(index, query, 0, n_rows, mask, 20)
        assert row not in got and list(got_scores) == sorted(got_scores, reverse=True)
        dots = np.asarray((index.X[got] @ query.T).todense()).ravel()
        np.testing.assert_allclose(got_scores, dots, rtol=1e-5)  # rescored exactly, not the partial sum
        recalls.append(len(set(got.tolist()) & set(exact.tolist())) / 20)
    assert pruned == 40
    assert np.mean(recalls) >= 0.9 and min(recalls) >= 0.5, recalls


def test_within_the_budget_similar_and_search_are_exact(built10k):
    from recommender.features.index import FeatureIndex, from_day

    index = FeatureIndex.load(built10k.models_dir)
    pid = index.ids[4321]
    ids, scores = ranking.similar(index, pid, n=30)
    query = ranking.similar_query(index.X, 4321, index.similar_scale)
    mask = np.ones(len(index), dtype=bool)
    mask[4321] = False
    rows, exact = _exact(index, query, 0, len(index), mask, 30)
    assert ids == [index.ids[r] for r in rows] and np.allclose(scores, exact)
    # A filter narrows the candidates before the top is taken, exactly as a full scan would.
    middle = int(index.dates[len(index) // 2])
    lo = int(np.searchsorted(index.dates, middle))
    ids, scores = ranking.similar(index, pid, Filters(since=dt.date.fromisoformat(from_day(middle))), n=10)
    mask = np.ones(len(index) - lo, dtype=bool)
    if 4321 >= lo:
        mask[4321 - lo] = False
    rows, exact = _exact(index, query, lo, len(index), mask, 10)
    assert ids == [index.ids[r] for r in rows] and np.allclose(scores, exact)
    # Search: the same answer as scoring every paper, positive scores only.
    vector = index.encoder.encode("graph neural networks")
    vector.resize((1, index.X.shape[1]))
    rows, exact = _exact(index, vector, 0, len(index), None, 15)
    ids, scores = ranking.search(index, "graph neural networks", n=15)
    assert ids == [index.ids[r] for r in rows] and np.allclose(scores, exact) and min(scores) > 0


def test_a_feed_window_past_the_matvec_budget_is_ranked_through_the_inverted_index(built10k):
    """An all-time feed at millions of papers is too many non-zeros for one mat-vec per request: past
    ``budget_nnz`` the model's largest weights pick candidates, scored exactly with the bias."""
    from recommender.features.index import FeatureIndex
    from recommender.learning.models import TrainParams, fit_user_weights

    index = FeatureIndex.load(built10k.models_dir)
    ids, _ = ranking.search(index, "graph neural networks", n=30)
    pos = np.array(sorted(index.row_of[p] for p in ids))
    w, b = fit_user_weights(index.X, pos, np.empty(0, np.int64), TrainParams(max_negatives=2000), seed=0)
    exact_ids, exact_scores = ranking.rank_linear(index, w, b, n=20)
    got_ids, got_scores = ranking.rank_linear(index, w, b, n=20, budget_nnz=index.X.nnz // 10)
    assert got_scores == sorted(got_scores, reverse=True)
    dots = index.X[[index.row_of[p] for p in got_ids]] @ w + b
    np.testing.assert_allclose(got_scores, dots, rtol=1e-5)  # exact scores of the candidates, bias included
    assert len(set(got_ids) & set(exact_ids)) >= 18, (got_ids, exact_ids)
    # Filters still apply before the top is taken.
    cat = index.categories[0]
    got_ids, _ = ranking.rank_linear(index, w, b, Filters(categories=(cat,)), n=10, budget_nnz=index.X.nnz // 10)
    assert all(index.row_of[p] in set(index.category_rows[cat].tolist()) for p in got_ids)


def test_bounded_pages_are_slices_of_one_ranking_and_deep_pages_scan_fully(built10k):
    from recommender.features.index import FeatureIndex

    index = FeatureIndex.load(built10k.models_dir)
    query = ranking.similar_query(index.X, 77, index.similar_scale)
    n_rows = len(index)
    budget = int(np.diff(index.XT.indptr)[query.indices].sum()) // 4
    whole = ranking.relevance_top(index, query, 0, n_rows, None, 140, 0, False, budget=budget, rescore=300)
    pages = [ranking.relevance_top(index, query, 0, n_rows, None, 20, k, False, budget=budget, rescore=300)
             for k in range(0, 140, 20)]
    assert np.array_equal(np.concatenate([rows for rows, _ in pages]), whole[0])
    # Past half the pool the bounded answer is refused, and the caller scans every posting.
    assert ranking.relevance_top(index, query, 0, n_rows, None, 20, 140, False, budget=budget, rescore=300) is None


def test_a_bounded_feed_never_ranks_negative_scores_above_untouched_papers(built10k):
    """Past the papers a model scores above 0, a full ranking continues with the papers it does not touch
    (score = bias); the bounded path hands such pages to the exact mat-vec."""
    from recommender.features.index import FeatureIndex

    index = FeatureIndex.load(built10k.models_dir)
    w = np.zeros(index.X.shape[1], dtype=np.float32)
    w[index.X[10].indices[:3]] = 1.0   # three features of one paper count for
    w[index.X[20].indices[:3]] = -1.0                   # and three of another against
    positives = int(((index.X @ w) > 0).sum())
    for offset in (0, max(0, positives - 5), positives + 10):
        exact = ranking.rank_linear(index, w, 0.25, n=10, offset=offset, budget_nnz=10 ** 12)
        bounded = ranking.rank_linear(index, w, 0.25, n=10, offset=offset, budget_nnz=0)
        assert np.allclose(bounded[1], exact[1]), offset
        if offset == 0:
            assert bounded[0] == exact[0]
