"""Small known-answer corpora for unit tests (the only place made-up text is used)."""
from __future__ import annotations

import datetime as dt

from recommender.features import FeatureParams
from recommender.features.index import FeatureIndex, compute_generation
from recommender.corpus.papers import Paper
from recommender.corpus.store import PaperStore

TOPIC_A = [  # quantum error correction
    "surface code quantum error correction with logical qubits and stabilizer measurements",
    "decoding the surface code with minimum weight matching for fault tolerant qubits",
    "stabilizer codes and logical qubit error thresholds in fault tolerant quantum computing",
    "quantum error correction threshold for noisy qubits with surface code decoders",
    "fault tolerant logical qubits from concatenated stabilizer quantum codes",
    "lattice surgery on surface code patches for logical qubit operations",
    "measurement errors in stabilizer readout and quantum error correction decoders",
    "qubit leakage and error correction in superconducting surface code experiments",
]
TOPIC_B = [  # protein structure
    "protein folding prediction with deep networks on amino acid sequences",
    "amino acid contact maps improve protein structure prediction",
    "protein structure refinement with molecular dynamics and folding energy",
    "predicting protein binding sites from amino acid sequence embeddings",
    "coevolution of amino acid residues reveals protein folding contacts",
    "protein design by inverse folding of backbone structure",
    "enzyme protein stability prediction from amino acid mutations",
    "membrane protein structure and folding pathways",
]


def make_papers(start: str = "2025-04-01") -> list[Paper]:
    """Alternating A and B papers, one per day; ids 2504.000NN; A in quant-ph, B in q-bio.BM."""
    day0 = dt.date.fromisoformat(start)
    papers = []
    for i, (a, b) in enumerate(zip(TOPIC_A, TOPIC_B)):
        for j, (text, cat) in enumerate(((a, "quant-ph"), (b, "q-bio.BM"))):
            k = 2 * i + j
            date = (day0 + dt.timedelta(days=k)).isoformat()
            papers.append(Paper(id=f"2504.{k + 1:05d}", version=1, title=text.split(" with ")[0].capitalize(),
                                abstract=text, authors=("A. Author",), categories=(cat,), published=date, updated=date))
    return papers


def topic_of(pid: str) -> str:
    return "A" if (int(pid.split(".")[1]) - 1) % 2 == 0 else "B"


def build_index(settings, papers=None, params: FeatureParams | None = None) -> FeatureIndex:
    with PaperStore(settings.papers_path) as store:
        store.upsert_many(papers or make_papers())
        compute_generation(store, settings.models_dir, params or FeatureParams(min_df=1, max_df=1.0))
    return FeatureIndex.load(settings.models_dir)
