"""Evaluation: metrics with known answers, and both protocols on real data."""
import datetime as dt
import json

import numpy as np
import pytest

from recommender.evaluation import authors, citations, methods, report
from recommender.evaluation.metrics import summarize, user_metrics
from recommender.evaluation.run import evaluate
from recommender.papers import Paper


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


def _paper(i, day, author, text):
    date = (dt.date(2025, 1, 1) + dt.timedelta(days=day)).isoformat()
    return Paper(id=f"2501.{i:05d}", version=1, title=text, abstract=text, authors=(author,), published=date,
                 updated=date)


def test_author_task_splits_by_time_and_respects_bounds():
    papers = [_paper(i, i, "Ada" if i % 2 else "Bob", f"topic {'quantum' if i % 2 else 'protein'} {i}")
              for i in range(1, 41)]
    task = authors.build_task(papers, dt.date(2025, 1, 31), window_days=30, n_users=2, min_before=8, min_after=3)
    by_name = {u.name: u for u in task.users}
    assert set(by_name) == {"Ada", "Bob"}
    for user in task.users:
        assert all(papers[r].published < "2025-01-31" for r in user.library)
        assert all(task.papers[task.candidates[c]].authors == (user.name,) for c in user.relevant)
    with pytest.raises(ValueError, match="qualify"):
        authors.build_task(papers, dt.date(2025, 1, 31), window_days=30, n_users=3)


@pytest.mark.slow
def test_author_protocol_on_the_real_sample(sample10k):
    """On real data, text methods beat random and most-recent by a wide margin."""
    task = authors.build_task(authors.load_corpus(sample10k), dt.date(2026, 1, 1), window_days=120, n_users=15,
                              min_before=3, min_after=2)
    chosen = [methods.RandomMethod(), methods.RecentMethod(), methods.CentroidMethod(), methods.PaperfeedMethod()]
    results = evaluate(chosen, task, task.users, lambda u: u.relevant)
    auc = {name: r["summary"]["auc"]["mean"] for name, r in results.items()}
    assert abs(auc["random"] - 0.5) < 0.1
    assert auc["paperfeed"] > auc["random"] + 0.15 and auc["centroid"] > auc["random"] + 0.15
    md = report.table(results, "paperfeed")
    assert md.count("\n") == len(chosen) + 1 and "nDCG@100 vs recipe" in md


@pytest.mark.slow
def test_citation_protocol_known_structure():
    from tests.conftest import require_shared

    task = citations.load_task(require_shared("arxiv/citations/paperscape_1991_1996.jsonl.gz"), n_queries=40)
    assert len(task.ids) == 49264
    # The data's README counts 145,674 edges inside the set; 30 of them are papers citing themselves.
    assert task.directed_edges == 145674 - 30
    assert sum(len(n) for n in task.links) // 2 <= task.directed_edges  # mutual citations merge when symmetrised
    assert all(len(task.links[q]) >= 3 for q in task.users)
    results = evaluate([citations.CitationRandom(), citations.CitationPaperfeed()], task, task.users,
                       lambda q: task.links[q])
    assert results["paperfeed"]["summary"]["auc"]["mean"] > results["random"]["summary"]["auc"]["mean"] + 0.15


def test_splice_keeps_hand_written_text(tmp_path):
    doc = tmp_path / "q.md"
    doc.write_text("# Title\n\nintro\n", encoding="utf-8")
    report.splice(doc, "authors", "table v1")
    report.splice(doc, "authors", "table v2")
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# Title\n\nintro") and "table v2" in text and "table v1" not in text
    report.write_json(tmp_path / "r.json", {"authors": {"m": {"summary": {}, "per_user": [1, 2]}}})
    assert "per_user" not in json.loads((tmp_path / "r.json").read_text())["authors"]["m"]
