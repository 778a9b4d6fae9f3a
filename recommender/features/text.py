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
import hashlib
import re
from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.preprocessing import normalize

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


def _analyzer_options() -> dict:
    return dict(preprocessor=preprocess, strip_accents="unicode", stop_words="english", token_pattern=TOKEN_PATTERN,
                dtype=np.float32)


def text_vectorizer(params, vocabulary=None) -> TfidfVectorizer:
    """The TF-IDF vectorizer for ``params`` (a :class:`~recommender.features.FeatureParams`).

    With a saved ``vocabulary`` it only transforms (queries), so df bounds do not apply.
    """
    return TfidfVectorizer(
        **_analyzer_options(), ngram_range=(1, params.ngram_max),
        max_features=None if vocabulary is not None else params.max_features,
        min_df=1 if vocabulary is not None else params.min_df,
        max_df=1.0 if vocabulary is not None else params.max_df,
        sublinear_tf=True, norm="l2", vocabulary=vocabulary,
    )


def count_vectorizer(params, vocabulary: dict[str, int]) -> CountVectorizer:
    """Raw term counts over a fixed ``vocabulary``, tokenised exactly as :func:`text_vectorizer` does."""
    return CountVectorizer(**_analyzer_options(), ngram_range=(1, params.ngram_max), vocabulary=vocabulary)


def in_vocabulary_sample(text: str, fraction: float) -> bool:
    """Whether a paper's text is in the sample the vocabulary is fitted on: a hash of the text, so the
    sample is the same whatever order the papers are read in, and the same on every run."""
    if fraction >= 1.0:
        return True
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") < fraction * 2.0 ** 64


def sample_fraction(params, n_docs: int) -> float:
    """The share of ``n_docs`` papers the vocabulary is fitted on (1.0: all of them)."""
    limit = params.vocabulary_sample
    return 1.0 if not limit or n_docs <= limit else limit / n_docs


def fit_vocabulary(sample: list[str], params) -> tuple[list[str], sp.csr_matrix]:
    """The vocabulary (sorted terms) fitted on ``sample`` with the df bounds and ``max_features`` of
    ``params``, and the sample's term counts over it (float32 CSR, so its texts need not be tokenised again).

    Raises ``ValueError`` if the sample is too small for ``min_df``.
    """
    fitted = _fit_to_corpus(params, len(sample))
    vectorizer = CountVectorizer(**_analyzer_options(), ngram_range=(1, params.ngram_max),
                                 max_features=fitted.max_features, min_df=fitted.min_df, max_df=fitted.max_df)
    counts = _fit_transform(vectorizer, sample)
    return vectorizer.get_feature_names_out().tolist(), counts


def smooth_idf(df: np.ndarray, n_docs: int) -> np.ndarray:
    """scikit-learn's smoothed idf, ``ln((1 + n) / (1 + df)) + 1``, in float32 as its float32 fit computes it."""
    idf = np.full(len(df), n_docs + 1, dtype=np.float32)
    idf /= df.astype(np.float32) + np.float32(1)
    np.log(idf, out=idf)
    idf += np.float32(1)
    return idf


def weigh_counts(counts: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
    """Counts to TF-IDF in place, as the fitted vectorizer does: sublinear tf, times idf, rows l2-normalised."""
    np.log(counts.data, out=counts.data)
    counts.data += np.float32(1)
    counts.data *= idf[counts.indices]
    return normalize(counts, norm="l2", copy=False)


def fit_tfidf(texts: Iterable[str], params) -> tuple[sp.csr_matrix, list[str], np.ndarray]:
    """Fit TF-IDF; returns ``(X, feature_names, idf)`` with X float32 CSR, rows l2-normalised.

    Past ``params.vocabulary_sample`` papers the vocabulary is fitted on a sample (:func:`in_vocabulary_sample`)
    and the idf on every paper, as ``compute`` does at scale; below it this is scikit-learn's ``fit_transform``.
    Raises ``ValueError`` if the corpus is too small for ``min_df``.
    """
    texts = list(texts)
    fraction = sample_fraction(params, len(texts))
    if fraction < 1.0:
        names, _ = fit_vocabulary([t for t in texts if in_vocabulary_sample(t, fraction)], params)
        counts = count_vectorizer(params, {t: i for i, t in enumerate(names)}).transform(texts)
        counts = sp.csr_matrix(counts, dtype=np.float32)
        idf = smooth_idf(np.bincount(counts.indices, minlength=len(names)), len(texts))
        X = weigh_counts(counts, idf)
        X.sort_indices()
        return X, names, idf
    vectorizer = text_vectorizer(_fit_to_corpus(params, len(texts)))
    X = _fit_transform(vectorizer, texts)
    return X, vectorizer.get_feature_names_out().tolist(), vectorizer.idf_.astype(np.float32)


def _fit_transform(vectorizer, texts: list[str]) -> sp.csr_matrix:
    """``vectorizer.fit_transform(texts)`` as float32 CSR with sorted indices; a corpus too small for
    ``min_df`` is one clear ``ValueError``."""
    try:
        X = vectorizer.fit_transform(texts)
    except ValueError as exc:
        raise ValueError(f"cannot build features from {len(texts)} papers: {exc}") from None
    X = sp.csr_matrix(X, dtype=np.float32)
    X.sort_indices()
    return X


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
