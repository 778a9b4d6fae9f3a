"""The category block: the primary category and every listed category.

Columns ``0..k`` are "primary is c", columns ``k..2k`` are "listed in c" for the
``k`` category names of the generation. A paper's row is l2-normalised, so a
paper cross-listed in five categories spreads its weight over them.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp


def category_names(category_lists: Sequence[Sequence[str]]) -> list[str]:
    return sorted({c for cats in category_lists for c in cats})


def category_matrix(category_lists: Sequence[Sequence[str]], names: Sequence[str]) -> sp.csr_matrix:
    """``(papers, 2 * len(names))`` rows: primary one-hot beside all-categories, l2-normalised together."""
    column = {c: i for i, c in enumerate(names)}
    k = len(names)
    indptr, indices, data = [0], [], []
    for cats in category_lists:
        known = [column[c] for c in dict.fromkeys(cats) if c in column]
        cols = ([known[0]] if known else []) + [k + i for i in sorted(known)]
        value = 1.0 / np.sqrt(len(cols)) if cols else 0.0
        indices.extend(cols)
        data.extend([value] * len(cols))
        indptr.append(len(indices))
    return sp.csr_matrix((np.array(data, np.float32), np.array(indices, np.int32), np.array(indptr, np.int64)),
                         shape=(len(category_lists), 2 * k))
