"""benchmarks/scaled_corpus.py: the corpus grown from real papers for scaling benchmarks (issue 12) is valid input
for ``paperfeed import``, sorted by date, with unique ids, and its copies are not identical rows."""
from __future__ import annotations

import sys

from recommender.corpus.papers import paper_from_kaggle
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import scaled_corpus  # noqa: E402


def test_a_grown_corpus_is_valid_sorted_unique_and_not_a_copy(sample10k):
    records = scaled_corpus.load(sample10k)
    grown = list(scaled_corpus.generate(records, 25_000, seed=1))
    papers = [paper_from_kaggle(r) for r in grown]  # the import's validation: raises on any bad record
    assert len({p.id for p in papers}) == 25_000
    dates = [p.published for p in papers]
    assert dates == sorted(dates) and dates[0] == "2007-04-01" and dates[-1] < "2026-07-01"
    # Every real paper appears once as itself, then as perturbed copies: no two abstracts or titles the same.
    assert len({p.abstract for p in papers}) > 0.99 * len(papers)
    assert len({p.title for p in papers}) > 0.95 * len(papers)
    real_titles = {r["title"] for r in records}
    assert sum(p.title in real_titles for p in papers) >= len(records) * 0.99
    # The same seed gives the same corpus.
    small = list(scaled_corpus.generate(records, 2_000, seed=1))
    assert list(scaled_corpus.generate(records, 2_000, seed=1)) == small
    assert list(scaled_corpus.generate(records, 2_000, seed=2)) != small


def test_months_grow_like_arxiv_and_old_ids_keep_four_digits():
    counts = scaled_corpus.monthly_counts(2_700_000)
    assert sum(c for _, c in counts) == 2_700_000 and len(counts) == 231
    assert 4_500 < counts[0][1] < 5_500 and 20_000 < counts[-1][1] < 25_000
    assert max(c for month, c in counts if month.year < 2015) <= 9_999
    stamps = scaled_corpus.stamps(50_000)
    first = next(stamps)
    assert first[1] == "0704.0001"
