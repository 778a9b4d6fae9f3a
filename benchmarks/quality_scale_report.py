"""The paired tables of docs/quality.md's "Compact user models" and "The vocabulary at all of arXiv's size".

Usage:  python benchmarks/quality_scale_report.py [docs/quality-scale/*.json]

Each file is the per-case JSON `paperfeed evaluate --model-weights ...` or `--vocabulary-sample ...` wrote
(`<out>/quality/test-authors.json`, copied to docs/quality-scale/). The first row of each file (dense weights,
or the vocabulary on every paper) is the reference; every other row is compared with it case by case with
`metrics.paired`, a reader's cases drawn together in the bootstrap.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from recommender.evaluation.metrics import paired  # noqa: E402

METRICS = ("ndcg@10", "ndcg@100", "recall@100")


def cases(variant: dict, metric: str) -> dict:
    return {(task, c["case"]): c[metric] for task, t in variant["per_task"].items() for c in t["per_case"]}


def report(path: Path) -> None:
    variants = json.loads(path.read_text())["variants"]
    names = list(variants)
    reference = variants[names[0]]
    print(f"{path.name}: against {names[0]!r}")
    for name in names[1:]:
        cells = []
        for metric in METRICS:
            base, mine = cases(reference, metric), cases(variants[name], metric)
            keys = sorted(base)
            r = paired([mine[k] for k in keys], [base[k] for k in keys], clusters=[k[1] for k in keys])
            lo, hi = r["rel_ci"]
            cells.append(f"{metric} {r['mean_a']:.4f} vs {r['mean_b']:.4f}, {r['rel']:+.2%} [{lo:+.2%}, {hi:+.2%}] "
                         f"({r['wins']} better / {r['losses']} worse / {r['ties']} equal)")
        print(f"  {name}: n={len(keys)}\n    " + "\n    ".join(cells))


def main() -> None:
    paths = [Path(p) for p in sys.argv[1:]] or sorted((REPO / "docs" / "quality-scale").glob("*.json"))
    for path in paths:
        report(path)


if __name__ == "__main__":
    main()
