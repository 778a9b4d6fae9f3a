"""Ranking over a loaded :class:`~recommender.features.index.FeatureIndex`.

Every function returns ``(ids, scores)`` and takes the same filters. Each does
O(page) work or one sparse mat-vec: a date window is a row slice (rows are
date-sorted), a category is a precomputed row list, "arrived after" is an
O(window) scan of one int per row that also narrows the slice, and similar/search go
through the transposed matrix (an inverted index), touching only the rows
that share a term with the query.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp

from recommender.features import TEXT
from recommender.corpus.ids import InvalidArxivId, parse_arxiv_id
from recommender.features.index import FeatureIndex, to_day

try:
    from scipy.sparse._sparsetools import csr_matvec as _csr_matvec
except ImportError:  # pragma: no cover - depends on the scipy build
    _csr_matvec = None

MAX_N = 1000
POSTINGS_BUDGET = 1_000_000  # posting-list entries similar papers and search read in full (see relevance_top)
RESCORE = 2_000            # candidates rescored exactly when a query's postings exceed that
MATVEC_BUDGET = 100_000_000  # non-zeros one feed mat-vec may read; past it the feed is ranked as search is,
FEED_POSTINGS_BUDGET, FEED_RESCORE = 3_000_000, 5_000  # with these bounds (see rank_linear)


@dataclasses.dataclass(frozen=True)
class Filters:
    """Which papers may appear. ``since``/``until`` are inclusive dates; empty categories means all;
    ``arrived_after`` (unix seconds) keeps papers that entered the index later than that (see
    ``FeatureIndex.first_seen``; ignored by an index that does not record arrival)."""

    since: dt.date | None = None
    until: dt.date | None = None
    categories: tuple[str, ...] = ()
    exclude: frozenset[str] = frozenset()
    arrived_after: float | None = None

    def __post_init__(self):
        if self.since and self.until and self.since > self.until:
            raise ValueError(f"since ({self.since}) is after until ({self.until})")


def _window(index: FeatureIndex, f: Filters) -> tuple[int, int]:
    lo = 0 if f.since is None else int(np.searchsorted(index.dates, to_day(f.since), "left"))
    hi = len(index) if f.until is None else int(np.searchsorted(index.dates, to_day(f.until), "right"))
    return lo, max(lo, hi)


def candidate_mask(index: FeatureIndex, f: Filters) -> tuple[int, int, np.ndarray | None]:
    """``(lo, hi, mask)``: rows lo..hi pass the date filter; mask (length hi-lo) the rest, or None."""
    lo, hi = _window(index, f)
    arrived = None
    if f.arrived_after is not None and index.first_seen is not None:
        arrived = index.arrived_after(f.arrived_after, lo, hi)
        # Arrivals are mostly the newest rows: shrink the slice to them, so a mat-vec touches only those.
        lo, hi = (int(arrived[0]), int(arrived[-1]) + 1) if len(arrived) else (lo, lo)
    if not f.categories and not f.exclude and (arrived is None or len(arrived) == hi - lo):
        return lo, hi, None
    mask = np.ones(hi - lo, dtype=bool)
    if f.categories:
        mask[:] = False
        for cat in f.categories:
            rows = index.category_rows.get(cat, np.empty(0, np.int32))
            rows = rows[(rows >= lo) & (rows < hi)]
            mask[rows - lo] = True
    if arrived is not None:
        keep = np.zeros(hi - lo, dtype=bool)
        keep[arrived - lo] = True
        mask &= keep
    for pid in f.exclude:
        row = index.row_of.get(pid)
        if row is not None and lo <= row < hi:
            mask[row - lo] = False
    return lo, hi, mask


def count(index: FeatureIndex, f: Filters = Filters()) -> int:
    lo, hi, mask = candidate_mask(index, f)
    return int(mask.sum()) if mask is not None else hi - lo


def _check_page(n: int, offset: int) -> None:
    if not (isinstance(n, int) and 0 < n <= MAX_N):
        raise ValueError(f"n must be between 1 and {MAX_N}")
    if not (isinstance(offset, int) and 0 <= offset <= 100 * MAX_N):
        raise ValueError("offset must be between 0 and 100000")


def top_rows(scores: np.ndarray, lo: int, mask: np.ndarray | None, n: int, offset: int = 0):
    """Rows (absolute) and scores of the best ``offset..offset+n`` entries of ``scores`` over ``lo..``."""
    scores = np.asarray(scores, dtype=np.float32).ravel()
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    valid = int(np.isfinite(scores).sum()) if mask is not None else len(scores)
    k = min(n + offset, valid)
    if k <= offset:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    if k < len(scores):
        threshold = scores[np.argpartition(-scores, k - 1)[k - 1]]
        above = np.flatnonzero(scores > threshold)
        # Ties at the cut are taken newest row first, so pages never overlap or skip.
        ties = np.flatnonzero(scores == threshold)[::-1][:k - len(above)]
        part = np.concatenate([above, ties])
    else:
        part = np.arange(len(scores))
    order = part[np.lexsort((-part, -scores[part]))][offset:k]
    return order + lo, scores[order]


def window_matvec(X: sp.csr_matrix, lo: int, hi: int, w: np.ndarray) -> np.ndarray:
    """``X[lo:hi] @ w`` without copying the rows.

    Slicing, or building a CSR view of the slice, makes scipy copy the data
    (5 ms for the last month at 131k papers, more than the product itself).
    """
    if lo == 0 and hi == X.shape[0]:
        return X @ w
    out = np.zeros(hi - lo, dtype=np.result_type(X.dtype, w.dtype))
    if _csr_matvec is None:  # scipy without the private kernel: correct, only slower
        return X[lo:hi] @ w
    start = X.indptr[lo]
    _csr_matvec(hi - lo, X.shape[1], X.indptr[lo:hi + 1] - start, X.indices[start:X.indptr[hi]],
                X.data[start:X.indptr[hi]], w, out)
    return out


def _result(index: FeatureIndex, rows: np.ndarray, scores: np.ndarray):
    return [index.ids[r] for r in rows], [float(s) for s in scores]


def rank_linear(index: FeatureIndex, w: np.ndarray, b: float = 0.0, filters: Filters = Filters(),
                n: int = 20, offset: int = 0, budget_nnz: int = MATVEC_BUDGET):
    """Rank by a linear model ``X @ w + b``: one sparse mat-vec over the date window.

    A window holding more than ``budget_nnz`` non-zeros (every paper, at millions of papers: 450M at 2.7M,
    over a second) is ranked through the inverted index instead, as :func:`relevance_top` ranks search:
    the largest weights pick candidates, which are scored exactly (recall in docs/scaling.md).
    """
    _check_page(n, offset)
    lo, hi, mask = candidate_mask(index, filters)
    w = np.asarray(w, dtype=np.float32)
    if index.X.indptr[hi] - index.X.indptr[lo] > budget_nnz:
        cols = np.flatnonzero(w)
        query = sp.csr_matrix((w[cols], cols, [0, len(cols)]), shape=(1, index.X.shape[1]))
        found = relevance_top(index, query, lo, hi, mask, n, offset, positive_only=False,
                              budget=FEED_POSTINGS_BUDGET, rescore=FEED_RESCORE)
        if found is not None:
            return _result(index, found[0], found[1] + np.float32(b))
    scores = window_matvec(index.X, lo, hi, w) + b
    return _result(index, *top_rows(scores, lo, mask, n, offset))


def inverted_scores(XT: sp.csr_matrix, query: sp.csr_matrix) -> np.ndarray:
    """Dot products of ``query`` (1 x F) with every row, through the transposed matrix (an inverted index).

    Only the posting lists of the query's terms are touched: O(sum of their lengths), not O(nnz).
    """
    postings = XT[query.indices]
    return np.asarray(postings.T @ query.data.astype(np.float32)).ravel()


def similar_query(X: sp.csr_matrix, row: int, scale: np.ndarray | None) -> sp.csr_matrix:
    """The query vector of paper ``row`` for similar papers: its features, blocks reweighted by ``scale``."""
    query = X[row]
    if scale is not None:
        query.data = query.data * scale[query.indices]
    return query


def similar(index: FeatureIndex, pid: str, filters: Filters = Filters(), n: int = 20, offset: int = 0):
    """Papers most similar to ``pid``: the cosine of each feature block, weighted (text, shared authors,
    categories; weights in the generation's parameters). Raises ``KeyError`` for an unknown id."""
    _check_page(n, offset)
    base, _ = parse_arxiv_id(pid)
    row = index.row_of.get(base)
    if row is None:
        raise KeyError(f"{base} is not in the feature index (generation {index.generation})")
    filters = dataclasses.replace(filters, exclude=filters.exclude | {base})
    lo, hi, mask = candidate_mask(index, filters)
    query = similar_query(index.X, row, index.similar_scale)
    return _result(index, *_relevance(index, query, lo, hi, mask, n, offset, positive_only=False))


def search(index: FeatureIndex, query: str, filters: Filters = Filters(), n: int = 20, offset: int = 0):
    """TF-IDF relevance search. An arXiv id (optionally versioned, or an abs URL) finds that paper first."""
    _check_page(n, offset)
    query = (query or "").strip()
    if not query:
        raise ValueError("empty search query")
    if len(query) > 1000:
        raise ValueError("search query is longer than 1000 characters")
    exact = _id_match(index, query)
    if exact is not None:
        return ([exact], [1.0]) if offset == 0 else ([], [])
    vector = index.encoder.encode(query)
    lo, hi, mask = candidate_mask(index, filters)
    if vector.nnz == 0:
        return [], []
    vector = sp.csr_matrix((vector.data, vector.indices, vector.indptr), shape=(1, index.X.shape[1]))
    return _result(index, *_relevance(index, vector, lo, hi, mask, n, offset, positive_only=True))


def relevance_top(index: FeatureIndex, query: sp.csr_matrix, lo: int, hi: int, mask: np.ndarray | None, n: int,
                  offset: int, positive_only: bool, budget: int = POSTINGS_BUDGET, rescore: int = RESCORE):
    """The best rows of ``lo..hi`` (``mask``) by the dot product with ``query`` (1 x features), through the
    inverted index: ``(rows, scores)``, or None when only a full scan can answer (see below).

    Exact while the query's posting lists hold at most ``budget`` entries in all. Past it (a long paper's
    common terms at millions of papers), the heaviest query terms whose postings fit the budget pick
    candidates, and the best ``rescore`` of those are scored exactly from their own rows. This reads
    O(budget + rescore x row length) values, not O(postings); the recall against exact search is
    measured in docs/scaling.md. The pool is the same for every page, so pages never overlap or skip.

    None (the caller scans every row) for a page past ``rescore / 2`` of a bounded query, and, unless
    ``positive_only``, when fewer papers than the page needs score above 0: the rest of a full ranking is
    papers that share nothing with the query (score 0, newest first), then negative scores.
    """
    wanted = n + offset
    XT = index.XT
    lengths = XT.indptr[query.indices + 1] - XT.indptr[query.indices]
    order = np.argsort(-query.data, kind="stable")
    within = int(np.searchsorted(np.cumsum(lengths[order]), budget, "right"))
    pruned = within < len(order)
    if pruned and wanted > rescore // 2:
        return None
    terms = np.sort(order[:max(1, within)])
    partial = sp.csr_matrix((query.data[terms], query.indices[terms], [0, len(terms)]), shape=query.shape)
    window = inverted_scores(XT, partial)[lo:hi]
    touched = window != 0 if mask is None else (window != 0) & mask
    candidates = np.flatnonzero(touched)
    if pruned and len(candidates) > rescore:
        best, _ = top_rows(window[candidates], 0, None, rescore)
        candidates = np.sort(candidates[best])
    if pruned:
        scores = np.asarray((index.X[candidates + lo] @ query.T).todense(), dtype=np.float32).ravel()
    else:
        scores = window[candidates]
    keep = scores > 0
    candidates, scores = candidates[keep], scores[keep]
    if not positive_only and len(candidates) < wanted:
        return None
    rows, top = top_rows(scores, 0, None, n, offset)
    return candidates[rows] + lo, top


def _relevance(index: FeatureIndex, query: sp.csr_matrix, lo: int, hi: int, mask: np.ndarray | None, n: int,
               offset: int, positive_only: bool):
    """:func:`relevance_top`, or the full scan of every posting where it cannot answer."""
    found = relevance_top(index, query, lo, hi, mask, n, offset, positive_only)
    if found is not None:
        return found
    scores = inverted_scores(index.XT, query)[lo:hi]
    if positive_only:
        mask = scores > 0 if mask is None else mask & (scores > 0)
    return top_rows(scores, lo, mask, n, offset)


def _id_match(index: FeatureIndex, query: str) -> str | None:
    try:
        base, _ = parse_arxiv_id(query)
    except InvalidArxivId:
        return None
    return base if base in index.row_of else None


def recent(index: FeatureIndex, filters: Filters = Filters(), n: int = 20, offset: int = 0):
    """Newest first; the score is the publication day number."""
    _check_page(n, offset)
    lo, hi, mask = candidate_mask(index, filters)
    rows = np.arange(hi - 1, lo - 1, -1)
    if mask is not None:
        rows = rows[mask[rows - lo]]
    rows = rows[offset:offset + n]
    return _result(index, rows, index.dates[rows].astype(np.float32))


def random_papers(index: FeatureIndex, filters: Filters = Filters(), n: int = 20, seed: int | None = None):
    """A uniform sample of papers that pass the filters (score 0)."""
    _check_page(n, 0)
    lo, hi, mask = candidate_mask(index, filters)
    rows = np.arange(lo, hi) if mask is None else np.flatnonzero(mask) + lo
    rng = np.random.default_rng(seed)
    rows = rng.choice(rows, size=min(n, len(rows)), replace=False) if len(rows) else rows
    return _result(index, rows, np.zeros(len(rows), np.float32))


def _text_part(index: FeatureIndex, pid: str) -> sp.csr_matrix:
    row = index.X[index.row_of[parse_arxiv_id(pid)[0]]]
    return row[:, :index.blocks[0].stop] if len(index.blocks) > 1 else row


def top_terms(index: FeatureIndex, pid: str, n: int = 10) -> list[tuple[str, float]]:
    """A paper's own highest-weighted terms (text block only)."""
    row = _text_part(index, pid)
    order = np.argsort(-row.data)[:n]
    return [(index.feature_names[row.indices[i]], float(row.data[i])) for i in order]


@dataclasses.dataclass(frozen=True)
class Reason:
    """One feature that raised a paper's score: a term, an author or a category."""

    kind: str            # "text", "authors" or "categories"
    label: str
    contribution: float  # x_i * w_i
    in_library: int = 0  # authors and categories: how many of the user's papers share it


def explain(index: FeatureIndex, pid: str, w: np.ndarray, n: int = 10,
            library: Iterable[str] = ()) -> dict[str, list[Reason]]:
    """The features that raised a linear model's score for ``pid`` most, per block (positive only).

    With ``library`` (the user's paper ids), authors and categories say in how
    many of those papers they occur: O(library) work.
    """
    row = index.X[index.row_of[parse_arxiv_id(pid)[0]]]
    contributions = row.data * np.asarray(w, dtype=np.float32)[row.indices]
    rows = index.row_of.rows(library)
    shared = np.asarray((index.X[rows] != 0).sum(axis=0)).ravel() if len(rows) else None
    out: dict[str, list[Reason]] = {b.name: [] for b in index.blocks}
    for i in np.argsort(-contributions):
        if contributions[i] <= 0:
            break
        kind, label = index.describe(int(row.indices[i]))
        if len(out[kind]) < n:
            count = int(shared[row.indices[i]]) if shared is not None and kind != TEXT else 0
            out[kind].append(Reason(kind, label, float(contributions[i]), count))
    return out
