"""Building and loading a feature generation: the matrix, its id list and per-row metadata.

Rows are ordered by (published date, id), so a date window is a contiguous
slice and the newest papers are at the end. Loading needs no unpickling.

The large arrays (the matrix ``X``, its transpose ``XT``, the ids and the category row
lists) are ``.npy`` files that :meth:`FeatureIndex.load` memory-maps read-only: N web
processes share one copy in the page cache, and loading reads nothing but headers.
``XT`` (the inverted index behind search and similar papers) is built once here, at
compute time, not in every process at load. Generations written before this layout
(``X.npz``, ``ids.json``) still load, with ``XT`` and the lookups built in memory.

Each row also records when its paper first entered the index (``first_seen``,
unix seconds): arXiv announces papers one to three days after their
``published`` date, so "what arrived since you last looked" cannot be read
from the date. The time is carried by paper id from one generation to the next.
"""
from __future__ import annotations

import dataclasses
import functools
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from recommender.storage import artifacts
from recommender.features import rowids
from recommender.features import (AUTHORS, CATEGORIES, TEXT, Block, FeatureParams, Features, QueryEncoder, block_scale, build_features,
                       similar_weights)
from recommender.features.embeddings import MODEL as EMBEDDING_MODEL
from recommender.features.embeddings import EmbeddingStore
from recommender.corpus.papers import Paper
from recommender.corpus.store import PaperStore
from recommender.features.streaming import EPOCH, Rows, from_day, stream_features, to_day  # noqa: F401 (re-exported)

@dataclasses.dataclass
class ComputeResult:
    generation: str
    papers: int
    features: int
    nnz: int


def snapshot(store: PaperStore, progress: Callable[[int], None] | None = None) -> list[Paper]:
    """One consistent read of every paper, sorted by (published, id)."""
    papers = []
    for paper in store.iter_papers():
        papers.append(paper)
        if progress and len(papers) % 5000 == 0:
            progress(len(papers))
    papers.sort(key=lambda p: (p.published, p.id))
    return papers


def rows_of(papers: list[Paper], categories: list[str]) -> Rows:
    """The per-row record of papers held in memory (already in row order)."""
    cat_of = {c: i for i, c in enumerate(categories)}
    cat_lists = [[cat_of[c] for c in dict.fromkeys(p.categories)] for p in papers]
    return Rows([p.id for p in papers], np.array([to_day(p.published) for p in papers], dtype=np.int32),
                np.cumsum([0] + [len(c) for c in cat_lists], dtype=np.int64),
                np.array([i for c in cat_lists for i in c], dtype=np.int32), categories)


def compute_generation(store: PaperStore, models_dir: Path, params: FeatureParams,
                       progress: Callable[[str], None] | None = None, now: float | None = None,
                       n_jobs: int = 1) -> ComputeResult:
    """Build features for every stored paper and publish them as the new current generation.

    The papers are streamed in two passes on ``n_jobs`` processes (``features.streaming``), so memory does
    not grow with the abstracts. Rows and ids come from the first pass, so they cannot drift apart; a paper
    that an import updates between the passes gets its new text and authors with the date and categories
    the first pass read (the next ``compute`` reconciles them), and one removed between them stops the run. With the embedding block (which needs every paper's vector) they are read
    into memory as before. ``now`` (unix seconds, default the clock) is the ``first_seen`` of papers new to
    the index.
    """
    now = time.time() if now is None else now
    step = progress or (lambda _msg: None)
    if params.embedding_weight > 0:
        rows, features = _in_memory(store, models_dir, params, step)
    else:
        rows, features = stream_features(store, params, n_jobs=n_jobs, progress=step)
    step("writing generation")
    gens = artifacts.Generations(models_dir)
    first_seen = carried_first_seen(models_dir, rows.ids, now)
    with gens.new() as tmp:
        _write(tmp, rows, features, params, first_seen, now)
    X = features.X
    return ComputeResult(gens.current(), X.shape[0], X.shape[1], X.nnz)


def _in_memory(store: PaperStore, models_dir: Path, params: FeatureParams, step) -> tuple[Rows, Features]:
    step("reading papers")
    papers = snapshot(store)
    if not papers:
        raise ValueError("the paper store is empty: run `paperfeed import` or `paperfeed fetch` first")
    embeddings = EmbeddingStore(Path(models_dir) / "embeddings" / EMBEDDING_MODEL)
    step(f"embedding {len(embeddings.missing(papers))} new papers")
    vectors = embeddings.vectors(papers, progress=lambda done, total: step(f"embedded {done} of {total}"))
    step(f"fitting features on {len(papers)} papers")
    features = build_features(papers, params, embeddings=vectors)
    return rows_of(papers, features.categories), features


# The files of a generation in the mapped layout; OLD_FILES those of one written before it.
MAPPED_FILES = (*artifacts.csr_files("X"), *artifacts.csr_files("XT"), rowids.IDS, rowids.ORDER,
                "category_rows.npy", "category_bounds.npy", "rows.npz", "vocab.json", "meta.json")
OLD_FILES = ("X.npz", "rows.npz", rowids.OLD_IDS, "vocab.json", "meta.json")


def is_old_layout(folder: Path) -> bool:
    """Whether a generation was written before the mapped layout (its matrix is one ``X.npz``)."""
    return (folder / "X.npz").exists() and not (folder / "X.data.npy").exists()


def carried_first_seen(models_dir: Path, ids: list[str], now: float) -> np.ndarray:
    """``first_seen`` for ``ids`` (int64 unix seconds): the current generation's time for a paper it holds,
    ``now`` for the rest. A generation written before ``first_seen`` existed vouches for its papers since
    its ids were written (the file's mtime): giving them ``now`` would make every paper "new" to every
    reader on the first compute after an upgrade."""
    out = np.full(len(ids), int(now), dtype=np.int64)
    gens = artifacts.Generations(models_dir)
    name = gens.current()
    if name is None:
        return out
    folder = gens.path(name)
    try:
        old_ids, old_row_of = rowids.load(folder)
        old = artifacts.read_npz(folder / "rows.npz").get("first_seen")
        if old is None or len(old) != len(old_ids):
            old = np.full(len(old_ids), int(rowids.ids_file(folder).stat().st_mtime), dtype=np.int64)
        rows = old_row_of.rows(ids, keep_missing=True)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile):  # unreadable: nothing to carry (`paperfeed check`)
        return out
    held = rows >= 0
    out[held] = old[rows[held]]
    return out


def _write(folder: Path, rows: Rows, features: Features, params: FeatureParams,
           first_seen: np.ndarray, now: float) -> None:
    groups, bounds = _category_groups(rows.cat_indptr, rows.cat_indices, len(features.categories))
    artifacts.write_npy(folder / "category_rows.npy", groups)
    artifacts.write_npy(folder / "category_bounds.npy", bounds)
    X = features.X
    X.sum_duplicates()  # canonical (sorted, no duplicates) in place: the mapped copy is read-only
    artifacts.write_csr_npy(folder, "X", X)
    _write_transpose(folder, X)
    artifacts.write_npz(folder / "rows.npz", dates=rows.dates, idf=features.idf,
                        first_seen=np.asarray(first_seen, dtype=np.int64))
    rowids.write(folder, rows.ids)
    artifacts.write_json(folder / "vocab.json", features.text_names)
    artifacts.write_json(folder / "authors.json", {"keys": features.authors.keys, "labels": features.authors.labels})
    artifacts.write_json(folder / "meta.json", {
        "params": dataclasses.asdict(params), "categories": features.categories, "papers": len(rows),
        "features": features.X.shape[1], "text_features": len(features.text_names),
        "blocks": [dataclasses.asdict(b) for b in features.blocks],
        "first_date": from_day(rows.dates[0]), "last_date": from_day(rows.dates[-1]), "computed_at": int(now),
    })


def _write_transpose(folder: Path, X: sp.csr_matrix) -> None:
    """``XT``, the inverted index, built once here rather than in every serving process. ``tocsc`` makes the
    one new copy (X's CSC arrays are XT's CSR arrays); it is freed as soon as it is written, so the peak is
    X plus one copy of it."""
    csc = X.tocsc()
    artifacts.write_csr_npy(folder, "XT", sp.csr_matrix((csc.data, csc.indices, csc.indptr),
                                                        shape=(X.shape[1], X.shape[0])))
    del csc


def column_keys(models_dir: Path, generation: str) -> list[str]:
    """A name for every feature column of a generation, stable across generations: ``t:`` and the term,
    ``a:`` and the author key, ``cp:``/``cl:`` and a primary/listed category, ``e:`` and an embedding
    dimension. A model's weights move to a new generation by these names (see ``models.align``).
    Reads only the small JSON files, never the matrix."""
    folder = artifacts.Generations(models_dir).path(generation)
    meta = artifacts.read_json(folder / "meta.json")
    names = artifacts.read_json(folder / "vocab.json")
    blocks = [Block(**b) for b in meta.get("blocks", [])] or [Block(TEXT, 0, len(names), 1.0)]
    keys: list[str] = []
    for b in blocks:
        if b.name == TEXT:
            keys += ["t:" + t for t in names]
        elif b.name == AUTHORS:
            keys += ["a:" + k for k in artifacts.read_json(folder / "authors.json")["keys"]]
        elif b.name == CATEGORIES:
            cats = meta["categories"]
            keys += ["cp:" + c for c in cats] + ["cl:" + c for c in cats]
        else:
            keys += [f"{b.name[:1]}:{i}" for i in range(b.stop - b.start)]
        if len(keys) != b.stop:
            raise ValueError(f"generation {generation}: block {b.name} has {b.stop - b.start} columns, "
                             f"its names do not match")
    return keys


class NoGeneration(LookupError):
    """``compute`` has not produced features yet."""


@dataclasses.dataclass
class FeatureIndex:
    """One loaded generation, read-only. Load once per process with :meth:`load`."""

    generation: str
    ids: rowids.IdList  # the id of each row, like a read-only list
    dates: np.ndarray
    X: sp.csr_matrix
    XT: sp.csr_matrix
    feature_names: list[str]  # the text block's terms
    categories: list[str]
    category_rows: dict[str, np.ndarray]
    encoder: QueryEncoder
    meta: dict
    row_of: rowids.RowOf | None = dataclasses.field(repr=False, default=None)  # id -> row, like a read-only dict
    blocks: list[Block] = dataclasses.field(default_factory=list)
    author_labels: list[str] = dataclasses.field(repr=False, default_factory=list)
    # When each row's paper first entered the index (int64 unix seconds); None for a generation written
    # before it was recorded, where "since your last visit" falls back to the published date.
    first_seen: np.ndarray | None = dataclasses.field(repr=False, default=None)

    @classmethod
    def load(cls, models_dir: Path, generation: str | None = None, mapped: bool = True) -> "FeatureIndex":
        """The current generation (or ``generation``). Its large arrays are memory-mapped read-only and
        shared with every other process that maps them; ``mapped=False`` reads them into this process's
        memory instead (what every load did before the mapped layout)."""
        gens = artifacts.Generations(models_dir)
        name = generation or gens.current()
        if name is None:
            raise NoGeneration(f"no features in {gens.root}: run `paperfeed compute` first")
        folder = gens.path(name)
        rows = artifacts.read_npz(folder / "rows.npz")
        meta = artifacts.read_json(folder / "meta.json")
        if is_old_layout(folder):
            X = artifacts.read_csr(folder / "X.npz")
            XT = X.T.tocsr()
            category_rows = _category_groups(rows["cat_indptr"], rows["cat_indices"], len(meta["categories"]))
        else:
            X, XT = artifacts.map_csr(folder, "X", mapped), artifacts.map_csr(folder, "XT", mapped)
            category_rows = (artifacts.map_npy(folder / "category_rows.npy", mapped),
                             artifacts.map_npy(folder / "category_bounds.npy", mapped))
        if XT.shape != X.shape[::-1] or XT.nnz != X.nnz:
            raise ValueError(f"generation {name}: XT is {XT.shape[0]} x {XT.shape[1]} with {XT.nnz} entries, "
                             f"X {X.shape[0]} x {X.shape[1]} with {X.nnz}")
        ids, row_of = rowids.load(folder, mapped)
        names = artifacts.read_json(folder / "vocab.json")
        # Generations written before the author and category blocks hold the text block only.
        blocks = [Block(**b) for b in meta.get("blocks", [])] or [Block(TEXT, 0, len(names), 1.0)]
        labels = artifacts.read_json(folder / "authors.json")["labels"] if any(
            b.name == AUTHORS for b in blocks) else []
        if len(ids) != X.shape[0] or blocks[-1].stop != X.shape[1] or blocks[0].stop != len(names):
            raise ValueError(f"generation {name} is inconsistent: {len(ids)} ids and {blocks[-1].stop} columns "
                             f"for a {X.shape[0]} x {X.shape[1]} matrix")
        return cls(
            generation=name, ids=ids, dates=rows["dates"], X=X, XT=XT, feature_names=names,
            categories=meta["categories"], category_rows=_category_rows(*category_rows, meta["categories"]),
            encoder=QueryEncoder(names, rows["idf"], FeatureParams.from_meta(meta["params"])), meta=meta,
            row_of=row_of, blocks=blocks, author_labels=labels,
            first_seen=rows["first_seen"] if "first_seen" in rows and len(rows["first_seen"]) == len(ids) else None,
        )

    @property
    def params(self) -> FeatureParams:
        return FeatureParams.from_meta(self.meta["params"])

    @functools.cached_property
    def similar_scale(self) -> np.ndarray | None:
        """Per-column factors that give similar papers their own block weights (see ``features.block_scale``)."""
        return block_scale(self.blocks, similar_weights(self.params))

    def arrived_after(self, when: float, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Rows in ``lo..hi`` whose paper entered the index after ``when`` (unix seconds), ascending.
        O(hi - lo): arrival does not follow the row (date) order, so this is a scan, not a slice."""
        hi = len(self) if hi is None else hi
        if self.first_seen is None:
            raise ValueError(f"generation {self.generation} does not record when papers arrived")
        return np.flatnonzero(self.first_seen[lo:hi] > when) + lo

    def block(self, name: str) -> Block | None:
        return next((b for b in self.blocks if b.name == name), None)

    def describe(self, column: int) -> tuple[str, str]:
        """``(block, label)`` of one feature column: a term, an author's name, or a category."""
        for b in self.blocks:
            if b.start <= column < b.stop:
                i = column - b.start
                if b.name == TEXT:
                    return TEXT, self.feature_names[i]
                if b.name == AUTHORS:
                    return AUTHORS, self.author_labels[i]
                if b.name == CATEGORIES:
                    k = len(self.categories)
                    return CATEGORIES, self.categories[i % k] + (" (primary)" if i < k else "")
                return b.name, f"{b.name} dimension {i}"
        raise IndexError(f"column {column} is outside the {self.X.shape[1]} features")

    def __len__(self) -> int:
        return len(self.ids)


def _category_groups(indptr: np.ndarray, indices: np.ndarray, categories: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-row category lists (CSR ``indptr``/``indices``) turned around: ``(rows, bounds)``, where
    ``rows[bounds[c]:bounds[c + 1]]`` are the sorted rows of the papers listed in category ``c``."""
    row_numbers = np.repeat(np.arange(len(indptr) - 1, dtype=np.int32), np.diff(indptr))
    order = np.argsort(indices, kind="stable")
    sorted_cats, sorted_rows = indices[order], row_numbers[order]
    return sorted_rows, np.searchsorted(sorted_cats, np.arange(categories + 1)).astype(np.int64)


def _category_rows(rows: np.ndarray, bounds: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """Category name -> sorted row numbers of papers listed in it (primary or cross-list): views of ``rows``."""
    if len(bounds) != len(names) + 1 or (len(bounds) and bounds[-1] != len(rows)):
        raise ValueError(f"category row lists for {len(bounds) - 1} categories, meta.json names {len(names)}")
    return {name: rows[bounds[i]:bounds[i + 1]] for i, name in enumerate(names)}
