"""The text block: TF-IDF over title and abstract.

Choices, starting from arxiv-sanity's (unigrams and bigrams, sublinear tf,
English stop words) with these changes:

- LaTeX control words (``\\mathbb``, ``\\alpha``) and inline-math markers are
  stripped before tokenising, so formulas do not flood the vocabulary;
- tokens must start with a letter and may hold digits (``bert``, ``gpt4``,
  ``3d`` is dropped, ``r2`` is kept);
- float32 throughout: half the memory of float64, same rankings.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from recommender.corpus.papers import Paper

TOKEN_PATTERN = r"(?u)\b[a-zA-Z_][a-zA-Z0-9_]+\b"
_LATEX = re.compile(r"\\[a-zA-Z]+|\$+|[{}^_]")


def paper_text(paper: Paper, title_repeat: int = 1) -> str:
    """The text a paper's features are built from: the title (``title_repeat`` times) and the abstract."""
    return f"{paper.title}. " * title_repeat + paper.abstract


def preprocess(text: str) -> str:
    return _LATEX.sub(" ", text).lower()


_WORD = re.compile(TOKEN_PATTERN)
_LATEX_MARKUP = re.compile(r"[\\$^_{}]")
# Commands that only format (their argument is what a reader would search for).
_FORMATTING = frozenset("""mathbb mathrm mathbf mathcal mathit mathsf mathtt mathfrak boldsymbol bm text textbf
textit emph operatorname left right big bigg frac dfrac tfrac sqrt hat tilde bar vec dot ddot overline
underline widehat widetilde displaystyle limits cdot cdots ldots dots quad qquad""".split())


def latex_only(query: str) -> bool:
    """True when ``query`` has LaTeX markup and nothing the index has words for (``$\\alpha$``,
    ``\\mathbb{R}``, ``$x^2$``): the features strip LaTeX, so such a query can only find nothing."""
    return bool(_LATEX_MARKUP.search(query or "")) and not _WORD.search(preprocess(query or ""))


def latex_words(query: str) -> str:
    """Words to search for instead of a LaTeX-only query: its command names, formatting left out
    (``$\\alpha$`` gives ``alpha``, ``\\mathbb{R}`` gives nothing)."""
    names = [m[1:] for m in re.findall(r"\\[a-zA-Z]+", query or "")]
    return " ".join(dict.fromkeys(n for n in names if n not in _FORMATTING and len(n) > 1))


def text_vectorizer(params, vocabulary=None) -> TfidfVectorizer:
    """The TF-IDF vectorizer for ``params`` (a :class:`~recommender.features.FeatureParams`).

    With a saved ``vocabulary`` it only transforms (queries), so df bounds do not apply.
    """
    return TfidfVectorizer(
        preprocessor=preprocess, strip_accents="unicode", stop_words="english",
        token_pattern=TOKEN_PATTERN, ngram_range=(1, params.ngram_max),
        max_features=None if vocabulary is not None else params.max_features,
        min_df=1 if vocabulary is not None else params.min_df,
        max_df=1.0 if vocabulary is not None else params.max_df,
        sublinear_tf=True, norm="l2", dtype=np.float32, vocabulary=vocabulary,
    )


def fit_tfidf(texts: Iterable[str], params) -> tuple[sp.csr_matrix, list[str], np.ndarray]:
    """Fit TF-IDF; returns ``(X, feature_names, idf)`` with X float32 CSR, rows l2-normalised.

    Raises ``ValueError`` if the corpus is too small for ``min_df``.
    """
    texts = list(texts)
    vectorizer = text_vectorizer(_fit_to_corpus(params, len(texts)))
    try:
        X = vectorizer.fit_transform(texts)
    except ValueError as exc:
        raise ValueError(f"cannot build features from {len(texts)} papers: {exc}") from None
    X = sp.csr_matrix(X, dtype=np.float32)
    X.sort_indices()
    return X, vectorizer.get_feature_names_out().tolist(), vectorizer.idf_.astype(np.float32)


def _fit_to_corpus(params, n_docs: int):
    """A tiny corpus (a demo fetch of a few dozen papers) cannot meet min_df; relax it."""
    if n_docs < 20 * params.min_df:
        return dataclasses.replace(params, min_df=1, max_df=1.0)
    return params


class QueryEncoder:
    """Turns free text into a row in the feature space of a stored generation.

    Rebuilt from the saved vocabulary and idf, so no pickled vectorizer is loaded.
    """

    def __init__(self, feature_names: list[str], idf: np.ndarray, params):
        vocabulary = {term: i for i, term in enumerate(feature_names)}
        self._vectorizer = text_vectorizer(params, vocabulary=vocabulary)
        self._vectorizer.idf_ = idf.astype(np.float64)

    def encode(self, text: str) -> sp.csr_matrix:
        return sp.csr_matrix(self._vectorizer.transform([text]), dtype=np.float32)
