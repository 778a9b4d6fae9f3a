"""The serving index is memory-mapped: N processes share one copy of the matrix in the page cache.

On the real 10k sample: a computed generation loads with its arrays backed by the files (no copy, read-only);
feed, similar and search rank exactly as the in-memory load and an old-format (``X.npz``) generation do;
``paperfeed check`` names a missing or truncated ``.npy``; and several processes that each load the index
and read all of X and XT share its pages (``/proc/<pid>/smaps``), while an in-memory load holds them privately.
"""
from __future__ import annotations

import datetime as dt
import mmap
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recommender.features import FeatureParams, rowids
from recommender.features.index import MAPPED_FILES, FeatureIndex, compute_generation, is_old_layout
from recommender.learning import ranking
from recommender.corpus.store import PaperStore
from recommender.storage import artifacts
from recommender.storage.check import verify_generation
from tests.conftest import REPO
from tests.helpers import build_index

sys.path.insert(0, str(REPO / "benchmarks"))
from bench_serving_memory import mapped_files, smaps_rollup  # noqa: E402  (the /proc readers the benchmark reports with)

pytestmark = pytest.mark.slow

QUERIES = ("dark matter halo", "graph neural network", "black hole merger", "surface code", "protein folding")


def file_backed(array: np.ndarray) -> bool:
    """Whether ``array``'s memory is a view of an ``mmap`` (a mapped file), following ``.base``."""
    base = array
    while base is not None:
        if isinstance(base, mmap.mmap):
            return True
        base = getattr(base, "base", None)
    return False


def mapped_arrays(index: FeatureIndex) -> dict[str, np.ndarray]:
    arrays = {f"{name}.{part}": getattr(getattr(index, name), part)
              for name in ("X", "XT") for part in ("data", "indices", "indptr")}
    arrays["ids"] = index.ids._ids
    arrays["row_of order"] = index.row_of._order
    arrays["category rows"] = next(iter(index.category_rows.values()))
    return arrays


@pytest.fixture
def models(built10k, tmp_path) -> Path:
    """A private copy of the 10k sample's models directory."""
    shutil.copytree(built10k.models_dir, tmp_path / "models")
    return tmp_path / "models"


def current_folder(models_dir: Path) -> Path:
    gens = artifacts.Generations(models_dir)
    return gens.path(gens.current())


def to_old_layout(folder: Path) -> None:
    """Rewrite a generation as ``compute`` wrote it before the mapped layout: X.npz, ids.json and the
    category lists per row in rows.npz; no XT, no .npy files."""
    index = FeatureIndex.load(folder.parent.parent, folder.name, mapped=False)
    lists = [[] for _ in range(len(index))]
    for c, name in enumerate(index.categories):
        for row in index.category_rows[name]:
            lists[row].append(c)
    artifacts.write_csr(folder / "X.npz", index.X)
    artifacts.write_json(folder / "ids.json", list(index.ids))
    rows = artifacts.read_npz(folder / "rows.npz")
    artifacts.write_npz(folder / "rows.npz", **rows, cat_indptr=np.cumsum([0] + [len(c) for c in lists]),
                        cat_indices=np.array([c for row in lists for c in row], dtype=np.int32))
    for name in MAPPED_FILES:
        if name.endswith(".npy"):
            (folder / name).unlink()


def rankings(index: FeatureIndex) -> list:
    """Feed (a linear model, with and without filters), similar papers and search, all on one index."""
    astro = index.category_rows["astro-ph.GA"]
    w = np.asarray(index.X[astro[:20]].mean(axis=0)).ravel().astype(np.float32)
    last = dt.date.fromisoformat(index.meta["last_date"])
    recent = ranking.Filters(since=last - dt.timedelta(days=30), categories=("astro-ph.GA", "astro-ph.CO"))
    out = [ranking.rank_linear(index, w, 0.1, n=50), ranking.rank_linear(index, w, 0.0, recent, n=50, offset=10),
           ranking.recent(index, recent, n=30), ranking.count(index, recent)]
    for row in (0, len(index) // 2, len(index) - 1, int(astro[3])):
        out.append(ranking.similar(index, index.ids[row], n=25))
        out.append(ranking.similar(index, index.ids[row], recent, n=25))
    for query in QUERIES:
        out.append(ranking.search(index, query, n=25))
        out.append(ranking.search(index, query, ranking.Filters(categories=("cs.LG",)), n=25))
    out.append(ranking.search(index, index.ids[7]))
    out.append(ranking.top_terms(index, index.ids[11]))
    out.append(ranking.explain(index, index.ids[int(astro[0])], w, library=[index.ids[r] for r in astro[1:10]]))
    return out


def test_a_computed_generation_loads_with_its_arrays_backed_by_the_files(built10k):
    index = FeatureIndex.load(built10k.models_dir)
    assert not is_old_layout(current_folder(built10k.models_dir)) and len(index) == 10000
    for name, array in mapped_arrays(index).items():
        assert file_backed(array), f"{name} was copied into the process"
        assert not array.flags.writeable, f"{name} is writable"
    # scipy keeps the index arrays as they are only if they share one dtype (else it casts: a private copy).
    assert index.X.indices.dtype == index.X.indptr.dtype == index.XT.indices.dtype == np.int32
    with pytest.raises(ValueError, match="read-only"):
        index.X.data[0] = 1.0
    memory = FeatureIndex.load(built10k.models_dir, mapped=False)
    assert not any(file_backed(a) for a in mapped_arrays(memory).values())


def test_ids_and_row_of_read_like_the_list_and_the_dict(built10k):
    index = FeatureIndex.load(built10k.models_dir)
    with PaperStore(built10k.papers_path, readonly=True) as store:
        papers = sorted(store.iter_papers(), key=lambda p: (p.published, p.id))
    ids = [p.id for p in papers]
    assert list(index.ids) == ids and index.ids[-1] == ids[-1] and index.ids[-3:] == ids[-3:] and len(index.ids) == 10000
    assert all(index.row_of[pid] == row for row, pid in enumerate(ids))
    assert len(index.row_of) == 10000 and ids[5] in index.row_of and index.row_of.get(ids[5]) == 5
    for absent in ("2501.99999", "", ids[0] + "\0", ids[0] + "x", "é", None, 5, ids[0][:-1]):
        assert absent not in index.row_of and index.row_of.get(absent) is None
    with pytest.raises(KeyError):
        index.row_of["2501.99999"]
    assert index.row_of.rows([ids[9], "nope", ids[2]]).tolist() == [9, 2]


def test_old_style_ids_keep_their_full_length_and_sort_among_new_ones(tmp_path):
    ids = ["2501.00002", "math.GT/0309136", "hep-th/9901001", "0704.0001", "cond-mat/0102536", "2501.00001"]
    rowids.write(tmp_path, ids)
    assert np.load(tmp_path / rowids.IDS).dtype == np.dtype("S16")  # as wide as the longest id, cond-mat/0102536
    listed, row_of = rowids.load(tmp_path)
    assert list(listed) == ids and [row_of[pid] for pid in ids] == list(range(len(ids)))
    assert "math.GT/030913" not in row_of and "math.GT/03091366" not in row_of and "hep-th/9901001v2" not in row_of
    assert artifacts.csr_index_dtype(2**31 - 1) == np.int32 and artifacts.csr_index_dtype(2**31) == np.int64


def test_rankings_equal_those_of_the_in_memory_and_the_old_format_load(built10k, models):
    mapped = rankings(FeatureIndex.load(built10k.models_dir))
    assert mapped == rankings(FeatureIndex.load(built10k.models_dir, mapped=False))
    assert len(mapped[0][0]) == 50 and all(ids for ids, _ in mapped[8:8 + 2 * len(QUERIES):2])  # real answers
    folder = current_folder(models)
    to_old_layout(folder)
    assert is_old_layout(folder) and verify_generation(folder) == []
    old = FeatureIndex.load(models)
    assert not file_backed(old.X.data) and rankings(old) == mapped


def test_the_next_compute_carries_first_seen_from_an_old_format_generation(settings):
    index = build_index(settings)
    to_old_layout(current_folder(settings.models_dir))
    with PaperStore(settings.papers_path) as store:
        compute_generation(store, settings.models_dir, FeatureParams(min_df=1, max_df=1.0),
                           now=index.meta["computed_at"] + 86400)
    again = FeatureIndex.load(settings.models_dir)
    assert not is_old_layout(current_folder(settings.models_dir))
    assert set(again.first_seen.tolist()) == {index.meta["computed_at"]}


@pytest.mark.parametrize("damage", ["truncate", "remove", "garbage"])
@pytest.mark.parametrize("name", ["X.data.npy", "XT.indices.npy", "ids.npy", "category_rows.npy"])
def test_check_names_a_missing_or_truncated_npy(models, name, damage):
    path = current_folder(models) / name
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:-100])
    elif damage == "remove":
        path.unlink()
    else:
        path.write_bytes(b"PK\x03\x04 not an array")
    problems = verify_generation(path.parent)
    assert len(problems) == 1 and name in problems[0], problems
    assert ("missing" if damage == "remove" else "unreadable or truncated") in problems[0]


def test_check_finds_an_xt_that_is_not_the_transpose_and_duplicate_ids(models):
    folder = current_folder(models)
    data = np.load(folder / "XT.data.npy")
    artifacts.write_npy(folder / "XT.data.npy", data * 2)
    assert any("not its transpose" in p for p in verify_generation(folder))
    artifacts.write_npy(folder / "XT.data.npy", data)
    ids = np.load(folder / "ids.npy")
    ids[1] = ids[0]
    artifacts.write_npy(folder / "ids.npy", ids)
    assert any("duplicate ids" in p for p in verify_generation(folder))


def test_check_finds_meta_that_does_not_match_the_matrix(models):
    """A generation FeatureIndex.load refuses is never reported healthy (nor chosen by `check --repair`)."""
    folder = current_folder(models)
    assert verify_generation(folder) == []
    meta = artifacts.read_json(folder / "meta.json")
    wrong = dict(meta, blocks=[dict(b) for b in meta["blocks"]])
    wrong["blocks"][-1]["stop"] += 1
    artifacts.write_json(folder / "meta.json", wrong)
    assert any("blocks end at column" in p for p in verify_generation(folder))
    with pytest.raises(ValueError, match="inconsistent"):
        FeatureIndex.load(models)
    artifacts.write_json(folder / "meta.json", dict(meta, papers=meta["papers"] + 1))
    assert any("meta.json does not match" in p for p in verify_generation(folder))


# sharing across processes ---------------------------------------------------------------------------------------
TOUCH = """
import sys
from recommender.features.index import FeatureIndex
index = FeatureIndex.load(sys.argv[1], mapped=sys.argv[2] == "mapped")
total = 0.0
for m in (index.X, index.XT):
    total += float(m.data.sum()) + float(m.indices.sum()) + float(m.indptr.sum())
print(total, flush=True)
sys.stdin.readline()
"""


def start_loaders(models_dir: Path, mode: str, count: int) -> list[subprocess.Popen]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", TOUCH, str(models_dir), mode], env=env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE) for _ in range(count)]
    totals = {p.stdout.readline().strip() for p in procs}  # each has loaded and read everything
    assert len(totals) == 1 and "" not in totals, "a loader failed"
    return procs


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.stdin.close()
        p.wait(timeout=60)


def test_processes_that_map_the_index_share_its_pages_and_an_in_memory_load_does_not(built10k):
    if not Path(f"/proc/{os.getpid()}/smaps").exists():
        pytest.skip("/proc/<pid>/smaps does not exist on this system (Linux only)")
    folder = current_folder(built10k.models_dir)
    matrix_files = [f for f in MAPPED_FILES if f.startswith(("X.", "XT.")) and not f.endswith("shape.npy")]
    matrix_kb = sum((folder / f).stat().st_size for f in matrix_files) / 1024
    mapped = start_loaders(built10k.models_dir, "mapped", 3)
    memory = start_loaders(built10k.models_dir, "memory", 1)
    try:
        for p in mapped:
            found = mapped_files(p.pid, folder)
            assert set(matrix_files) <= set(found), f"not mapped: {set(matrix_files) - set(found)}"
            rss = sum(found[f]["Rss"] for f in matrix_files)
            pss = sum(found[f]["Pss"] for f in matrix_files)
            assert rss >= 0.9 * matrix_kb  # every page was read ...
            assert pss < 0.5 * rss, (rss, pss)  # ... and is shared: three processes pay a third each
        private = mapped_files(memory[0].pid, folder)
        assert not set(matrix_files) & set(private), "the in-memory load maps the matrix"
        # It holds the arrays in its own anonymous memory instead: at least the matrix's size more.
        extra = smaps_rollup(memory[0].pid)["Anonymous"] - smaps_rollup(mapped[0].pid)["Anonymous"]
        assert extra >= 0.75 * matrix_kb, (extra, matrix_kb)
    finally:
        stop(mapped + memory)
