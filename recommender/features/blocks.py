"""A paper's feature row: weighted blocks side by side, so serving stays one sparse mat-vec.

``X = [text | author_weight * authors | category_weight * categories]``. Each
block is l2-normalised on its own, so its weight alone sets how much it can
count against the others, and each weight is tuned separately
(docs/quality.md). A block whose weight is 0 is left out.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from recommender.corpus.papers import Paper
from recommender.settings import Settings, default
from recommender.features.authors import AuthorVocabulary, author_matrix, fit_authors
from recommender.features.categories import category_matrix, category_names
from recommender.features.text import fit_tfidf, paper_text

TEXT, AUTHORS, CATEGORIES, EMBEDDING = "text", "authors", "categories", "embedding"


@dataclasses.dataclass(frozen=True)
class FeatureParams:
    """How features are built. Defaults come from the settings table (``recommender.settings``)."""

    max_features: int = default("max_features")
    vocabulary_sample: int = default("vocabulary_sample")
    min_df: int = default("min_df")
    max_df: float = default("max_df")
    title_repeat: int = default("title_repeat")
    ngram_max: int = 2
    author_weight: float = default("author_weight")
    author_min_papers: int = default("author_min_papers")
    author_names: str = default("author_names")
    author_idf: bool = True
    category_weight: float = default("category_weight")
    embedding_weight: float = default("embedding_weight")
    similar_author_weight: float = default("similar_author_weight")
    similar_category_weight: float = default("similar_category_weight")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides) -> "FeatureParams":
        """The configured parameters (what ``compute`` uses), with explicit overrides on top."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {n: getattr(settings, n) for n in names if hasattr(settings, n)}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    @classmethod
    def from_meta(cls, stored: dict) -> "FeatureParams":
        """Parameters saved with a generation; keys a newer version added take their defaults."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in stored.items() if k in names})


@dataclasses.dataclass(frozen=True)
class Block:
    name: str
    start: int
    stop: int
    weight: float


@dataclasses.dataclass
class Features:
    """A built feature matrix and what its columns mean."""

    X: sp.csr_matrix
    text_names: list[str]
    idf: np.ndarray
    authors: AuthorVocabulary
    categories: list[str]
    blocks: list[Block]


def build_features(papers: Sequence[Paper], params: FeatureParams, text=None,
                   embeddings: np.ndarray | None = None) -> Features:
    """Features for ``papers`` (rows in the same order).

    ``text`` may carry an already fitted ``(X, names, idf)`` text block for
    these papers and params (the evaluation caches it); otherwise it is fitted.
    ``embeddings`` (one unit row per paper) is needed when ``embedding_weight`` > 0.
    """
    if text is None:
        text = fit_tfidf((paper_text(p, params.title_repeat) for p in papers), params)
    T, names, idf = text
    vocab = fit_authors([p.authors for p in papers], params.author_min_papers, params.author_names)
    cats = category_names([p.categories for p in papers])
    parts = [(TEXT, T, 1.0)]
    if params.author_weight > 0 and len(vocab):
        parts.append((AUTHORS, author_matrix([p.authors for p in papers], vocab, params.author_idf),
                      params.author_weight))
    if params.category_weight > 0 and cats:
        parts.append((CATEGORIES, category_matrix([p.categories for p in papers], cats), params.category_weight))
    if params.embedding_weight > 0:
        if embeddings is None or len(embeddings) != len(papers):
            raise ValueError("the embedding block needs one embedding per paper")
        parts.append((EMBEDDING, sp.csr_matrix(embeddings, dtype=np.float32), params.embedding_weight))
    X, blocks = stack(parts)
    return Features(X, names, idf, vocab, cats, blocks)


def stack(parts: list[tuple[str, sp.csr_matrix, float]]) -> tuple[sp.csr_matrix, list[Block]]:
    """Scale each block by its weight and put them side by side (float32 CSR, sorted indices)."""
    blocks, start = [], 0
    for name, M, weight in parts:
        blocks.append(Block(name, start, start + M.shape[1], float(weight)))
        start += M.shape[1]
    X = sp.hstack([M * np.float32(w) if w != 1.0 else M for _, M, w in parts], format="csr", dtype=np.float32)
    X.sort_indices()
    return X, blocks


def block_scale(blocks: Sequence[Block], target: dict[str, float]) -> np.ndarray | None:
    """Per-column factors that turn stored block weights into ``target`` weights in a dot product.

    ``x . (q * f)`` with ``f = (target / stored)**2`` on each block equals the dot
    product of rows stored with the target weights. None when nothing changes.
    """
    factors = []
    for b in blocks:
        want = target.get(b.name, b.weight)
        factors.append((b.stop - b.start, (want / b.weight) ** 2 if b.weight else 0.0))
    if all(f == 1.0 for _, f in factors):
        return None
    return np.repeat(np.array([f for _, f in factors], np.float32), [n for n, _ in factors])


def similar_weights(params: FeatureParams) -> dict[str, float]:
    return {AUTHORS: params.similar_author_weight, CATEGORIES: params.similar_category_weight}
