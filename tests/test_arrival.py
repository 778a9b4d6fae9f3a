"""When papers arrived in the index (``first_seen``): carried across computes by paper id, and the
"arrived after" filter behind "since your last visit". Known answers on real papers from the 10k sample."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from recommender.corpus.ingest import import_snapshots
from recommender.corpus.store import PaperStore
from recommender.features import FeatureParams
from recommender.features.index import FeatureIndex, compute_generation
from recommender.learning import ranking
from recommender.settings import load_settings
from recommender.storage import artifacts
from recommender.storage.check import verify_generation

FRIDAY, MONDAY = 1_773_400_000, 1_773_650_000  # two computes, three days apart (unix seconds)


def _records(sample10k, n=1500):
    with gzip.open(sample10k, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for _, line in zip(range(n), handle)]


def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture
def two_computes(sample10k, tmp_path):
    """Friday's compute holds most papers; Monday's adds the rest, among them papers dated before the newest
    paper Friday already had (announced late, as arXiv does)."""
    records = _records(sample10k)
    s = load_settings(environ={}, data_dir=tmp_path / "data", models_dir=tmp_path / "models", n_jobs=1)
    with PaperStore(tmp_path / "scratch.sqlite") as store:  # to learn each paper's date as the store reads it
        import_snapshots(store, [_write(tmp_path / "all.jsonl", records)])
        dated = sorted((p.published, p.id) for p in store.iter_papers())
    # Held back on Friday: every tenth paper by date, so the late arrivals span the whole date range.
    late = {pid for i, (_, pid) in enumerate(dated) if i % 10 == 3}
    s.data_dir.mkdir(parents=True, exist_ok=True)
    with PaperStore(s.papers_path) as store:
        import_snapshots(store, [_write(tmp_path / "friday.jsonl", [r for r in records if r["id"] not in late])])
        compute_generation(store, s.models_dir, FeatureParams(), now=FRIDAY)
        friday = FeatureIndex.load(s.models_dir)
        import_snapshots(store, [_write(tmp_path / "monday.jsonl", [r for r in records if r["id"] in late])])
        compute_generation(store, s.models_dir, FeatureParams(), now=MONDAY)
    return s, friday, FeatureIndex.load(s.models_dir), late


def test_first_seen_is_carried_by_id_and_new_papers_get_the_compute_time(two_computes):
    _, friday, monday, late = two_computes
    assert friday.first_seen.dtype == np.int64 and set(friday.first_seen.tolist()) == {FRIDAY}
    assert len(monday) == len(friday) + len(late) and late
    seen = dict(zip(monday.ids, monday.first_seen.tolist()))
    assert {pid for pid, t in seen.items() if t == MONDAY} == late
    assert all(seen[pid] == FRIDAY for pid in friday.ids)  # a paper in both keeps its original time
    assert monday.meta["computed_at"] == MONDAY


def test_since_the_last_visit_holds_every_late_arrival_whatever_its_date(two_computes):
    _, friday, monday, late = two_computes
    visit_ended = FRIDAY + 3600  # the reader looked after Friday's compute
    f = ranking.Filters(arrived_after=visit_ended)
    assert ranking.count(monday, f) == len(late)
    ids, _ = ranking.recent(monday, f, n=ranking.MAX_N)
    assert set(ids) == late
    # Dated before the newest paper the reader already saw: a date window would have missed these.
    newest_seen = friday.dates[-1]
    older = [pid for pid in late if monday.dates[monday.row_of[pid]] < newest_seen]
    assert len(older) > len(late) // 2 and set(older) <= set(ids)
    # Ranking by a model goes through the same mask, and a category narrows it further.
    w = np.ones(monday.X.shape[1], dtype=np.float32)
    ranked, _ = ranking.rank_linear(monday, w, 0.0, f, n=ranking.MAX_N)
    assert set(ranked) == late
    cat = monday.categories[0]
    both = ranking.Filters(arrived_after=visit_ended, categories=(cat,))
    want = {pid for pid in late if pid in {monday.ids[r] for r in monday.category_rows[cat]}}
    assert set(ranking.recent(monday, both, n=ranking.MAX_N)[0]) == want
    assert ranking.count(monday, ranking.Filters(arrived_after=MONDAY)) == 0


def test_a_generation_without_first_seen_still_loads_and_passes_its_papers_on(two_computes):
    s, _, monday, late = two_computes
    folder = artifacts.Generations(s.models_dir).path(monday.generation)
    rows = artifacts.read_npz(folder / "rows.npz")
    del rows["first_seen"]
    artifacts.write_npz(folder / "rows.npz", **rows)
    old = FeatureIndex.load(s.models_dir)
    assert old.first_seen is None
    # The filter is ignored by an index that does not record arrival (the web falls back to dates).
    assert ranking.count(old, ranking.Filters(arrived_after=MONDAY)) == len(old)
    written = int((folder / "ids.npy").stat().st_mtime)
    with PaperStore(s.papers_path) as store:
        compute_generation(store, s.models_dir, FeatureParams(), now=MONDAY + 86400)
    again = FeatureIndex.load(s.models_dir)
    # Papers of the old generation were in the index since it was written, not "new" to everyone now.
    assert set(again.first_seen.tolist()) == {written}


def test_check_reports_a_first_seen_of_the_wrong_shape(two_computes):
    s, _, monday, _ = two_computes
    folder = artifacts.Generations(s.models_dir).path(monday.generation)
    assert not verify_generation(folder)
    rows = artifacts.read_npz(folder / "rows.npz")
    artifacts.write_npz(folder / "rows.npz", **{**rows, "first_seen": rows["first_seen"][:-1]})
    assert any("first_seen" in p for p in verify_generation(folder))
