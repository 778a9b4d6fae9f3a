"""Features for a paper store of any size, read in two streamed passes: no step holds every abstract.

``build_features`` fits on a list of papers in memory, which at all of arXiv (2.7M papers) would hold every
abstract and tens of millions of distinct bigrams at once. This builds the same matrix from the store:

1. **Scan** every paper once, keeping per paper only its id, day and category numbers; count the author
   names; keep the texts of a seeded sample (``vocabulary_sample`` papers, chosen by a hash of the text, see
   ``text.in_vocabulary_sample``). The text vocabulary is fitted on that sample.
2. **Transform** the papers in row order (published date, then id) in chunks, on ``n_jobs`` processes that
   each read their chunk from the store: term counts over the fixed vocabulary, the author and category
   blocks. The document frequencies are summed as chunks arrive, so the idf is that of every paper.
3. **Weigh** each chunk's counts (sublinear tf, idf, l2) and copy it into the final arrays, freeing it.

Below ``vocabulary_sample`` papers the vocabulary is fitted on every paper, and the matrix equals
``build_features``' (tests/test_streaming_features.py checks it on the 10k sample). Peak memory is the sample's
fit plus about twice the final matrix's non-zeros, whatever the number of papers.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import multiprocessing
import os
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from recommender.corpus.store import PaperStore
from recommender.features.authors import AuthorCounter, AuthorVocabulary, author_matrix
from recommender.features.blocks import AUTHORS, CATEGORIES, TEXT, Block, FeatureParams, Features
from recommender.features.categories import category_matrix
from recommender.features.text import (count_vectorizer, fit_vocabulary, in_vocabulary_sample, paper_text,
                                       sample_fraction, smooth_idf, weigh_counts)

EPOCH = dt.date(1970, 1, 1)
CHUNK = 10_000


def to_day(value: str | dt.date) -> int:
    """ISO date (or date) -> days since 1970-01-01."""
    if isinstance(value, str):
        value = dt.date.fromisoformat(value)
    return (value - EPOCH).days


def from_day(day: int) -> str:
    return (EPOCH + dt.timedelta(days=int(day))).isoformat()


class StoreChanged(RuntimeError):
    """A paper seen by the scan was gone when its chunk was read (the store was rewritten meanwhile)."""


@dataclasses.dataclass
class Rows:
    """What a generation records per row besides the features, in row order (published date, then id)."""

    ids: list[str]
    dates: np.ndarray        # int32 days since 1970-01-01
    cat_indptr: np.ndarray   # int64: row i's categories are cat_indices[cat_indptr[i]:cat_indptr[i + 1]]
    cat_indices: np.ndarray  # int32 positions in ``categories``, the primary first
    categories: list[str]    # sorted names

    def __len__(self) -> int:
        return len(self.ids)

    def category_lists(self, lo: int, hi: int) -> list[list[str]]:
        return [[self.categories[c] for c in self.cat_indices[self.cat_indptr[i]:self.cat_indptr[i + 1]]]
                for i in range(lo, hi)]


@dataclasses.dataclass
class _Scan:
    rows: Rows
    sample: list[str]      # the texts the vocabulary is fitted on
    sample_ids: list[str]  # their papers, in the same order
    authors: AuthorCounter


def scan(store: PaperStore, params: FeatureParams, step: Callable[[str], None]) -> _Scan:
    """Pass 1: ids, days, categories and author counts of every paper, and the vocabulary sample's texts."""
    fraction = sample_fraction(params, len(store))
    ids, days, cat_counts, cat_flat, sample, sample_ids = [], [], [], [], [], []
    cat_number: dict[str, int] = {}
    authors = AuthorCounter(params.author_names)
    for paper in store.iter_papers():
        ids.append(paper.id)
        days.append(to_day(paper.published))
        cats = list(dict.fromkeys(paper.categories))
        cat_counts.append(len(cats))
        cat_flat.extend(cat_number.setdefault(c, len(cat_number)) for c in cats)
        authors.add(paper.authors)
        text = paper_text(paper, params.title_repeat)
        if in_vocabulary_sample(text, fraction):
            sample.append(text)
            sample_ids.append(paper.id)
        if len(ids) % 100_000 == 0:
            step(f"read {len(ids)} papers")
    names = sorted(cat_number)
    renumber = np.empty(len(names), np.int32)
    for new, name in enumerate(names):
        renumber[cat_number[name]] = new
    dates = np.array(days, dtype=np.int32)
    order = np.lexsort((np.array(ids), dates)) if ids else np.empty(0, np.int64)
    counts = np.array(cat_counts, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    flat = renumber[np.array(cat_flat, dtype=np.int64)]
    # Reorder the category lists row by row into date order, keeping each list's own order (primary first).
    new_counts = counts[order]
    new_starts = np.concatenate([[0], np.cumsum(new_counts)]).astype(np.int64)
    take = np.repeat(starts[order] - new_starts[:-1], new_counts) + np.arange(new_starts[-1])
    rows = Rows([ids[i] for i in order], dates[order], new_starts, flat[take].astype(np.int32), names)
    return _Scan(rows, sample, sample_ids, authors)


# Set in the parent before the worker processes fork, so the vocabularies are not pickled per chunk.
_JOB: dict = {}


def _transform(bounds: tuple[int, int]):
    """Pass 2 for rows ``lo..hi``: ``(term counts, author block, category block)``."""
    job, (lo, hi) = _JOB, bounds
    ids = job["rows"].ids[lo:hi]
    with PaperStore(job["store"], readonly=True) as store:
        found = store.get_many(ids)
    missing = [pid for pid in ids if pid not in found]
    if missing:
        raise StoreChanged(f"{len(missing)} papers (e.g. {missing[0]}) left the store while compute ran: "
                           "run `paperfeed compute` again")
    papers = [found[pid] for pid in ids]
    params = job["params"]
    blocks = [_text_counts(papers, job, params)]
    if job["authors"] is not None:
        blocks.append(author_matrix([p.authors for p in papers], job["authors"], params.author_idf))
    if job["categories"]:
        blocks.append(category_matrix(job["rows"].category_lists(lo, hi), job["categories"]))
    return [sp.csr_matrix(b, dtype=np.float32) for b in blocks]


def _text_counts(papers, job: dict, params: FeatureParams) -> sp.csr_matrix:
    """Term counts of ``papers``: the vocabulary sample's rows as the fit counted them, the rest tokenised now."""
    known, sample_row = job["sample_counts"], job["sample_row"]
    rest = [i for i, p in enumerate(papers) if p.id not in sample_row]
    fresh = sp.csr_matrix(job["counter"].transform([paper_text(papers[i], params.title_repeat) for i in rest]),
                          dtype=np.float32) if rest else None
    if fresh is not None and len(rest) == len(papers):
        fresh.sort_indices()
        return fresh
    # Rows of ``known`` for sample papers, of ``fresh`` for the others, in the chunk's order.
    order = np.empty(len(papers), dtype=np.int64)
    order[rest] = known.shape[0] + np.arange(len(rest))
    is_known = np.ones(len(papers), dtype=bool)
    is_known[rest] = False
    order[is_known] = [sample_row[p.id] for p, k in zip(papers, is_known) if k]
    stacked = sp.vstack([known, fresh], format="csr") if fresh is not None else known
    counts = stacked[order]
    counts.sort_indices()
    return counts


@contextlib.contextmanager
def _mapper(n_jobs: int, chunks: int):
    """``map`` over chunks, in order: forked worker processes, or this process for one job or one chunk."""
    context = None
    if n_jobs > 1 and chunks > 1 and "fork" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("fork")
    if context is None:
        yield map
        return
    with context.Pool(n_jobs) as pool:
        yield lambda fn, items: pool.imap(fn, items, chunksize=1)


def stream_features(store: PaperStore, params: FeatureParams, n_jobs: int = 1,
                    progress: Callable[[str], None] | None = None, chunk: int = CHUNK) -> tuple[Rows, Features]:
    """Features for every paper in ``store``, rows in (published, id) order, built in two streamed passes.

    Raises ``ValueError`` for an empty store or one too small for ``min_df``, :class:`StoreChanged` when a
    paper disappears between the passes. The embedding block is not built here (see ``compute_generation``).
    """
    step = progress or (lambda _msg: None)
    step("reading papers")
    found = scan(store, params, step)
    rows = found.rows
    if not len(rows):
        raise ValueError("the paper store is empty: run `paperfeed import` or `paperfeed fetch` first")
    step(f"fitting the vocabulary on {len(found.sample)} of {len(rows)} papers")
    names, sample_counts = fit_vocabulary(found.sample, params)
    found.sample.clear()
    vocab = found.authors.vocabulary(params.author_min_papers)
    found.authors = None
    use_authors = params.author_weight > 0 and len(vocab) > 0
    use_categories = params.category_weight > 0 and bool(rows.categories)
    _JOB.update(store=str(store.path), rows=rows, params=params, authors=vocab if use_authors else None,
                categories=rows.categories if use_categories else [],
                counter=count_vectorizer(params, {t: i for i, t in enumerate(names)}), sample_counts=sample_counts,
                sample_row={pid: i for i, pid in enumerate(found.sample_ids)})
    bounds = [(lo, min(lo + chunk, len(rows))) for lo in range(0, len(rows), chunk)]
    jobs = n_jobs if n_jobs > 0 else max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    parts, df = [], np.zeros(len(names), dtype=np.int64)
    try:
        with _mapper(min(jobs, len(bounds)), len(bounds)) as mapped:
            for done, blocks in enumerate(mapped(_transform, bounds), 1):
                df += np.bincount(blocks[0].indices, minlength=len(names))
                parts.append(blocks)
                step(f"transformed {min(done * chunk, len(rows))} of {len(rows)} papers")
    finally:
        _JOB.clear()
    idf = smooth_idf(df, len(rows))
    weights = [1.0] + ([params.author_weight] if use_authors else []) + (
        [params.category_weight] if use_categories else [])
    block_names = [TEXT] + ([AUTHORS] if use_authors else []) + ([CATEGORIES] if use_categories else [])
    widths = [p.shape[1] for p in parts[0]]
    blocks, start = [], 0
    for name, width, weight in zip(block_names, widths, weights):
        blocks.append(Block(name, start, start + width, float(weight)))
        start += width
    step("weighing and assembling the matrix")
    X = _assemble(parts, idf, weights, len(rows), start)
    return rows, Features(X, names, idf, vocab, rows.categories, blocks)


def _assemble(parts: list[list[sp.csr_matrix]], idf: np.ndarray, weights: list[float], n_rows: int,
              n_cols: int) -> sp.csr_matrix:
    """Weigh each chunk's text counts and stack its blocks side by side, copying the chunks into one
    preallocated matrix and freeing each as it goes, so the peak is the matrix plus one chunk."""
    nnz = sum(b.nnz for blocks in parts for b in blocks)
    data = np.empty(nnz, dtype=np.float32)
    indices = np.empty(nnz, dtype=np.int32)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    row = at = 0
    for i in range(len(parts)):
        blocks = parts[i]
        parts[i] = None  # freed once copied
        blocks[0] = weigh_counts(blocks[0], idf)
        scaled = [b * np.float32(w) if w != 1.0 else b for b, w in zip(blocks, weights)]
        chunk = sp.hstack(scaled, format="csr", dtype=np.float32)
        chunk.sort_indices()
        n = chunk.shape[0]
        data[at:at + chunk.nnz] = chunk.data
        indices[at:at + chunk.nnz] = chunk.indices
        indptr[row + 1:row + n + 1] = chunk.indptr[1:] + at
        row, at = row + n, at + chunk.nnz
    return sp.csr_matrix((data, indices, indptr), shape=(n_rows, n_cols))
