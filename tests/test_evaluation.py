"""Evaluation: metrics and paired statistics with known answers, name stripping, the protocols on real data,
the arxiv-sanity-lite recipe, and ``paperfeed evaluate`` itself."""
import dataclasses
import datetime as dt
import json

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from recommender.evaluation import authors, citations, curator, methods, readers, report, runner
from recommender.evaluation.cache import FeatureCache, stripped, stripped_recipe
from recommender.evaluation.metrics import paired, summarize, user_metrics
from recommender.evaluation.run import evaluate
from recommender.evaluation.tasks import Case, Task, load_corpus, same_author, strip_author
from recommender.features import AUTHORS, FeatureParams, build_features
from recommender.corpus.papers import Paper
from tests.conftest import require_shared, run_cli
from tests.helpers import TOPIC_A, TOPIC_B


def test_metrics_known_answers():
    rng = np.random.default_rng(0)
    scores = np.array([5.0, 4, 3, 2, 1])
    perfect = user_metrics(scores, np.array([0]), rng, ks=(1, 3))
    assert perfect == {"recall@1": 1.0, "ndcg@1": 1.0, "recall@3": 1.0, "ndcg@3": 1.0, "mrr": 1.0, "auc": 1.0}
    worst = user_metrics(scores, np.array([4]), rng, ks=(1, 3))
    assert (worst["recall@3"], worst["mrr"], worst["auc"]) == (0.0, 0.2, 0.0)
    mixed = user_metrics(scores, np.array([1, 3]), rng, ks=(3,))
    assert mixed["recall@3"] == 0.5 and mixed["auc"] == 0.5 and mixed["mrr"] == 0.5
    assert mixed["ndcg@3"] == pytest.approx((1 / np.log2(3)) / (1 + 1 / np.log2(3)))


def test_ties_are_broken_at_random_so_constant_scores_are_chance():
    rng = np.random.default_rng(1)
    aucs = [user_metrics(np.zeros(200), np.arange(20), rng)["auc"] for _ in range(50)]
    assert 0.4 < np.mean(aucs) < 0.6


def test_metrics_reject_degenerate_input():
    with pytest.raises(ValueError):
        user_metrics(np.ones(3), np.array([], dtype=int), np.random.default_rng(0))


def test_summary_reports_spread():
    s = summarize([{"auc": 0.5}, {"auc": 0.7}, {"auc": 0.9}])["auc"]
    assert s["mean"] == pytest.approx(0.7) and s["std"] == pytest.approx(0.2) and s["n"] == 3


def test_paired_statistics_match_a_hand_computed_example():
    a, b = [0.5, 0.7, 0.2, 0.4], [0.4, 0.4, 0.3, 0.4]
    p = paired(a, b)
    # by hand: differences +0.1, +0.3, -0.1, 0; mean +0.075; means 0.45 and 0.375, so +20%
    assert p["diff"] == pytest.approx(0.075) and p["rel"] == pytest.approx(0.2)
    assert (p["wins"], p["losses"], p["ties"], p["n"]) == (2, 1, 1, 4)
    # Two cases: a resample's mean difference is d1 (1/4), (d1 + d2) / 2 (1/2) or d2 (1/4), so the
    # percentile interval's ends are exactly d1 and d2.
    two = paired([0.3, 0.9], [0.2, 0.4])
    assert two["diff_ci"] == pytest.approx([0.1, 0.5]) and two["diff"] == pytest.approx(0.3)
    # The same difference everywhere leaves no doubt about it.
    same = paired([0.5, 0.6, 0.7], [0.4, 0.5, 0.6])
    assert same["diff_ci"] == pytest.approx([0.1, 0.1])
    with pytest.raises(ValueError):
        paired([0.1, 0.2], [0.1])


def test_paired_bootstrap_can_draw_a_readers_cases_together():
    # Reader x has cases 0 and 2 (differences +0.1 and 0), reader y case 1 (+0.5). Drawing two readers gives
    # xx: 0.05, xy: 0.2 or yy: 0.5, so the percentile interval runs from 0.05 to 0.5.
    p = paired([0.3, 0.9, 0.5], [0.2, 0.4, 0.5], clusters=["x", "y", "x"])
    assert p["diff_ci"] == pytest.approx([0.05, 0.5]) and p["clusters"] == 2 and p["diff"] == pytest.approx(0.2)


def test_saved_results_of_other_cases_are_not_reused():
    task, _ = _tiny_task()
    variant = runner.Variant("v", "test")
    results = {"variants": {"v": {"per_task": {"tiny": {"per_case": []}, "gone": {"per_case": []}}},
                            "old variant": {"per_task": {"tiny": {}}}},
               "task_fingerprints": {"tiny": runner.fingerprint(task)}}
    runner._forget_stale(results, [task], [variant])
    assert list(results["variants"]) == ["v"] and list(results["variants"]["v"]["per_task"]) == ["tiny"]
    other = Task(task.protocol, task.split, task.name, task.papers, task.cases[:0])  # same name, other cases
    runner._forget_stale(results, [other], [variant])
    assert results["variants"]["v"]["per_task"] == {}


# ---- name stripping ----------------------------------------------------------------------------------------

def _paper(i, text, authors_, cats=("quant-ph",), day=0):
    date = (dt.date(2025, 4, 1) + dt.timedelta(days=day)).isoformat()
    return Paper(id=f"2504.{i:05d}", version=1, title=text.split(" with ")[0], abstract=text,
                 authors=tuple(authors_), categories=tuple(cats), published=date, updated=date)


def _team_corpus():
    """John Smith writes with Ada Lovelace; one of his papers spells him "J. Smith"; Jane Smith is someone else."""
    papers = []
    for i, text in enumerate(TOPIC_A + TOPIC_B):
        if i % 3 == 0:
            names = ["John Smith", "Ada Lovelace"] if i != 6 else ["J. Smith", "Ada Lovelace"]
        elif i % 3 == 1:
            names = ["Jane Smith", "Grace Hopper"]
        else:
            names = [f"Solo Writer{i}", "Grace Hopper"]
        papers.append(_paper(i + 1, text, names, day=i))
    return papers


def test_same_author_matches_spellings_but_not_namesakes():
    assert same_author("john smith", "John Smith") and same_author("john smith", "J. Smith")
    assert same_author("john smith", "John A. Smith") and not same_author("john smith", "Jane Smith")
    assert strip_author(("J. Smith", "Ada Lovelace", "Jane Smith"), "john smith") == ("Ada Lovelace", "Jane Smith")


def test_stripping_leaves_no_trace_of_the_name_in_paperfeed_features():
    papers = _team_corpus()
    params = FeatureParams(min_df=1, max_df=1.0, author_weight=1.0, category_weight=0.3)
    task = Task("authors", "dev", "t", papers, [])
    case = Case("john smith", np.array([0]), np.arange(len(papers)), np.array([1]), strip="john smith")
    features = build_features(papers, params)
    before = features.X.copy()
    column = features.authors.column["john smith"]
    block = next(b for b in features.blocks if b.name == AUTHORS)
    without = [dataclasses.replace(p, authors=strip_author(p.authors, "john smith")) for p in papers]
    expected = build_features(without, params)  # features built from papers that never had the name
    with stripped(features, params, task, case) as X:
        assert X[:, block.start + column].count_nonzero() == 0
        j_smith = features.authors.column.get("j smith")
        assert j_smith is None or X[:, block.start + j_smith].count_nonzero() == 0
        ada_old, ada_new = features.authors.column["ada lovelace"], expected.authors.column["ada lovelace"]
        assert X[:, block.start + ada_old].count_nonzero() == len([p for p in papers if "Ada Lovelace" in p.authors])
        np.testing.assert_allclose(X[:, block.start + ada_old].toarray(),
                                   expected.X[:, expected.blocks[1].start + ada_new].toarray(), rtol=1e-6)
        np.testing.assert_allclose(X[:, :block.start].toarray(), expected.X[:, :block.start].toarray())
        jane = features.authors.column["jane smith"]
        assert X[:, block.start + jane].count_nonzero() == 5  # a namesake is not stripped
    assert (features.X != before).nnz == 0  # restored afterwards


def test_stripping_the_recipe_removes_the_name_from_its_text():
    papers = _team_corpus()
    task = Task("authors", "dev", "t", papers, [])
    case = Case("john smith", np.array([0]), np.arange(len(papers)), np.array([1]), strip="john smith")
    tfidf = {**methods.RECIPE_TFIDF, "min_df": 1, "max_df": 1.0}
    vectorizer = TfidfVectorizer(**tfidf)
    X = vectorizer.fit_transform([methods.lite_text(p) for p in papers]).astype(np.float32).tocsr()
    out = stripped_recipe(X, vectorizer, task, case, methods.lite_text)
    vocab = vectorizer.vocabulary_
    for term in ("john", "john smith", "smith ada"):
        assert out[:, vocab[term]].count_nonzero() == 0, term
    assert out[:, vocab["jane smith"]].count_nonzero() == 5
    rows = task.rows_of_author("john smith")
    assert len(rows) == 6
    expected = vectorizer.transform([methods.lite_text(dataclasses.replace(papers[r], authors=("Ada Lovelace",)))
                                     for r in rows])
    np.testing.assert_allclose(out[rows].toarray(), expected.toarray(), rtol=1e-6)


# ---- the recipe ---------------------------------------------------------------------------------------------

def test_recipe_is_arxiv_sanity_lite_as_shipped():
    # compute.py: TfidfVectorizer(..., ngram_range=(1, 2), max_features=20000, min_df=5, max_df=0.1, sublinear_tf)
    assert {k: methods.RECIPE_TFIDF[k] for k in ("ngram_range", "max_features", "min_df", "max_df", "sublinear_tf",
                                                  "stop_words", "token_pattern", "strip_accents")} == {
        "ngram_range": (1, 2), "max_features": 20000, "min_df": 5, "max_df": 0.1, "sublinear_tf": True,
        "stop_words": "english", "token_pattern": r"(?u)\b[a-zA-Z_][a-zA-Z0-9_]+\b", "strip_accents": "unicode"}
    # serve.py with scikit-learn 1.0.1: LinearSVC(class_weight="balanced", C=0.01, tol=1e-6, max_iter=10000), dual=True
    assert methods.RECIPE_SVM == {"class_weight": "balanced", "C": 0.01, "tol": 1e-6, "max_iter": 10000, "dual": True}
    paper = _paper(1, "A title with words", ["Ada Lovelace", "Alan Turing"])
    assert methods.lite_text(paper) == "A title A title with words Ada Lovelace Alan Turing"


def _tiny_task():
    papers = [_paper(i + 1, t, [f"Writer{i}"], day=i) for i, t in enumerate(
        [x for pair in zip(TOPIC_A, TOPIC_B) for x in pair])]
    quantum = np.array([i for i in range(len(papers)) if i % 2 == 0])
    library, unseen = quantum[:4], quantum[4:]
    candidates = np.setdiff1d(np.arange(len(papers)), library)
    case = Case("reader", library, candidates, np.searchsorted(candidates, unseen))
    return Task("authors", "dev", "tiny", papers, [case]), case


def test_the_defaults_reuse_a_row_with_the_same_method_and_rows_keep_the_grid_order(tmp_path, monkeypatch):
    task, _ = _tiny_task()
    features, train = FeatureParams(min_df=1, max_df=1.0), runner.TrainParams()
    twin = runner.Variant("same as the defaults", "test", base="settings")
    other = runner.Variant("C 0.5", "test", base="settings", train={"C": 0.5})
    default = runner.Variant(runner.DEFAULT, "test", base="settings")
    calls = []

    def counting(methods_, task_, cache, progress=None):
        calls.append(methods_[0].name)
        return evaluate(methods_, task_, cache, progress=progress)

    monkeypatch.setattr(runner, "evaluate", counting)
    runner.run_protocol("authors", "dev", [other, twin], [task], features, train, FeatureCache(), tmp_path)
    results = runner.run_protocol("authors", "dev", [twin, default, other], [task], features, train,
                                  FeatureCache(), tmp_path)
    assert calls == ["C 0.5", "same as the defaults"]  # the defaults were not run again
    saved = json.loads((tmp_path / "dev-authors.json").read_text())
    assert list(saved["variants"]) == ["same as the defaults", runner.DEFAULT, "C 0.5"]
    assert saved["variants"][runner.DEFAULT]["per_task"] == saved["variants"]["same as the defaults"]["per_task"]
    assert results["variants"][runner.DEFAULT]["config"] == results["variants"]["same as the defaults"]["config"]


def test_test_runs_add_the_embedding_block_only_when_asked():
    names = [v.name for v in runner.test_variants("readers", None)]
    assert runner.DEFAULT in names and runner.WITH_EMBEDDINGS not in names
    with_block = runner.test_variants("citations", None, embeddings=True)
    assert with_block[-1].name == runner.WITH_EMBEDDINGS and with_block[-1].kind == "similar"
    assert with_block[-1].features == {"embedding_weight": 0.5} and with_block[-1].base == "settings"


def test_recipe_and_paperfeed_rank_the_readers_topic_first():
    task, case = _tiny_task()
    lite = methods.Recipe(tfidf={"min_df": 1, "max_df": 1.0})
    mine = methods.Paperfeed(features=FeatureParams(min_df=1, max_df=1.0))
    results = evaluate([lite, mine], task, FeatureCache())
    for name in (lite.name, mine.name):
        assert results[name]["per_case"][0]["ndcg@10"] == pytest.approx(1.0), name
        assert results[name]["per_case"][0]["auc"] == pytest.approx(1.0), name


def test_similar_methods_find_a_papers_neighbours():
    papers = [_paper(i + 1, t, [f"Writer{i}"], day=i) for i, t in enumerate(TOPIC_A + TOPIC_B)]
    candidates = np.arange(1, len(papers))
    case = Case(papers[0].id, np.array([0]), candidates, np.arange(0, 7))  # the other quantum papers
    task = Task("citations", "dev", "tiny", papers, [case])
    lite = methods.Recipe(tfidf={"min_df": 1, "max_df": 1.0})
    mine = methods.PaperfeedSimilar(features=FeatureParams(min_df=1, max_df=1.0))
    results = evaluate([lite, mine], task, FeatureCache())
    assert results[lite.name]["per_case"][0]["auc"] == pytest.approx(1.0)
    assert results[mine.name]["per_case"][0]["auc"] == pytest.approx(1.0)


def test_feature_cache_is_keyed_by_content_not_identity(tmp_path):
    task, _ = _tiny_task()
    same = Task("authors", "dev", "other name", list(task.papers), [])
    shorter = Task("authors", "dev", "tiny", task.papers[:-1], [])
    assert task.key == same.key and task.key != shorter.key
    cache = FeatureCache(tmp_path)
    params = FeatureParams(min_df=1, max_df=1.0)
    first = cache.text(task, params)[0]
    again = FeatureCache(tmp_path).text(same, params)[0]  # from disk, a fresh cache object
    assert (first != again).nnz == 0 and len(list(tmp_path.glob("text-*.npz"))) == 1


def test_feedback_hides_the_marked_papers_and_retrains():
    task, case = _tiny_task()
    params = FeatureParams(min_df=1, max_df=1.0)
    hide = methods.PaperfeedFeedback("hide", params, marks=2, retrain=False)
    hide.prepare(task, FeatureCache())
    scores = hide.scores(case)
    assert np.isneginf(scores).sum() == 2 and not np.isneginf(scores[case.relevant]).any()


# ---- protocols on real data ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sample_papers(sample10k):
    return load_corpus(sample10k)


@pytest.mark.slow
def test_author_protocol_on_the_real_sample(sample_papers):
    task = authors.build_task(sample_papers, dt.date(2026, 1, 1), window_days=120, n_users=12, min_before=2,
                              min_after=1)
    for case in task.cases:
        assert case.strip == case.id
        assert all(task.papers[r].published < "2026-01-01" for r in case.positives)
        picked = [task.papers[case.candidates[i]] for i in case.relevant]
        assert picked and all(p.published >= "2026-01-01" for p in picked)
        assert all(any(same_author(case.id, a) for a in p.authors) for p in picked)
    chosen = [methods.RandomMethod(), methods.Recipe(), methods.Paperfeed()]
    results = evaluate(chosen, task, FeatureCache())
    auc = {name: r["summary"]["auc"]["mean"] for name, r in results.items()}
    assert abs(auc["random"] - 0.5) < 0.15
    assert auc["paperfeed"] > auc["random"] + 0.15 and auc["arxiv-sanity-lite"] > auc["random"] + 0.1
    assert all(len(r["per_case"]) == len(task.cases) for r in results.values())


@pytest.mark.slow
def test_curator_weeks_train_on_earlier_picks(sample_papers):
    picks = curator.load_picks(require_shared("arxiv/ground_truth/dairai_ml_papers_of_the_week.jsonl"))
    assert len(picks) == 635
    ids = {p.id for p in sample_papers}
    in_sample = [p for p in picks if p.arxiv_id in ids]
    weeks = tuple(sorted({p.week for p in in_sample}))
    task = curator.build_task(sample_papers, picks, weeks)
    for case in task.cases:
        week = case.id.removeprefix("week ")
        assert all(task.papers[r].id in {p.arxiv_id for p in picks if p.week < week} for r in case.positives)
        assert {task.papers[case.candidates[i]].id for i in case.relevant} <= {p.arxiv_id for p in picks
                                                                             if p.week == week}


@pytest.mark.slow
def test_citation_and_reader_protocols_known_structure():
    data = citations.load_data(require_shared("arxiv/citations/paperscape_1991_1996.jsonl.gz"))
    assert len(data.papers) == 49264
    # The data's README counts 145,674 edges inside the set; 30 of them are papers citing themselves.
    assert data.directed_edges == 145674 - 30
    task = citations.build_task(data, fold=0, n_queries=20)
    for case in task.cases:
        q = int(case.positives[0])
        assert q not in case.candidates and len(case.relevant) >= 3
        assert set(case.candidates[case.relevant]) == set(data.links[q])
    folds = [set(c.id for c in citations.build_task(data, f, 20).cases) for f in range(3)]
    assert not (folds[0] & folds[1]) and not (folds[1] & folds[2])
    reader = readers.build_task(data, dt.date(1995, 1, 1), n_users=10)
    for case in reader.cases:
        assert all(reader.papers[r].published < "1995-01-01" for r in case.positives)
        assert all(reader.papers[case.candidates[i]].published >= "1995-01-01" for i in case.relevant)
        assert not any(same_author(case.id, a) for r in case.candidates[case.relevant] for a in reader.papers[r].authors)


@pytest.mark.slow
def test_paperfeed_evaluate_writes_per_case_json_and_the_report(settings, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERFEED_AUTHOR_WEIGHT", "0.8")  # evaluate measures the configured settings
    out = tmp_path / "docs"
    code, stdout, err = run_cli(["evaluate", "--protocol", "citations", "--protocol", "readers", "--users", "4",
                                 "--queries", "4", "--out", str(out), "--json"], settings, capsys)
    assert code == 0, err
    data = json.loads(stdout)
    assert set(data["protocols"]) == {"citations", "readers"}
    saved = json.loads((out / "quality" / "test-readers.json").read_text())
    assert saved["features"]["author_weight"] == 0.8
    assert saved["tasks"] == list(readers.TEST_CUTOFFS)
    entry = saved["variants"][runner.DEFAULT]
    assert all(len(entry["per_task"][t]["per_case"]) == 4 for t in saved["tasks"])
    page = (out / "quality.md").read_text()
    for key in ("summary", "test-readers", "test-citations", "lost"):
        assert f"<!-- results:{key}:start -->" in page
    pooled = np.mean(report.values(entry))
    assert f"{pooled:.4f}" in page
    code, _, err = run_cli(["evaluate", "--report", "--out", str(out)], settings, capsys)
    assert code == 0 and (out / "quality.md").read_text() == page  # the report is a function of the JSON


def test_splice_keeps_hand_written_text(tmp_path):
    doc = tmp_path / "q.md"
    doc.write_text("# Title\n\nintro\n", encoding="utf-8")
    report.splice(doc, "authors", "table v1")
    report.splice(doc, "authors", "table v2")
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# Title\n\nintro") and "table v2" in text and "table v1" not in text
