"""Markdown tables, JSON and a recall@k plot for evaluation results."""
from __future__ import annotations

import json
import re
from pathlib import Path

from .. import artifacts

METRICS = ("ndcg@100", "recall@10", "recall@100", "mrr", "auc")
START, END = "<!-- results:{}:start -->", "<!-- results:{}:end -->"


def table(results: dict, baseline: str | None = None) -> str:
    """One row per method: mean ± 95% CI half-width; plus nDCG@100 relative to ``baseline``."""
    head = "| method | " + " | ".join(METRICS) + (" | nDCG@100 vs recipe |" if baseline else " |")
    lines = [head, "|" + "---|" * (len(METRICS) + 1 + bool(baseline))]
    base = results.get(baseline, {}).get("summary", {}).get("ndcg@100", {}).get("mean") if baseline else None
    for name, r in results.items():
        s = r["summary"]
        cells = [f"{s[m]['mean']:.4f} ± {s[m]['ci95']:.4f}" for m in METRICS]
        if baseline:
            rel = s["ndcg@100"]["mean"] / base - 1 if base else float("nan")
            cells.append("—" if name == baseline else f"{rel:+.1%}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for name, r in results.items():
        curve = r["recall_curve"]
        ax.plot(curve["k"], curve["recall"], marker="o", markersize=3, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("k (papers shown)")
    ax.set_ylabel("mean recall@k")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with artifacts.atomic_file(path) as handle:
        fig.savefig(handle, format="png")
    plt.close(fig)


def write_json(path: Path, payload: dict) -> None:
    slim = {k: ({m: {kk: vv for kk, vv in r.items() if kk != "per_user"} for m, r in v.items()}
                if isinstance(v, dict) and all(isinstance(r, dict) and "summary" in r for r in v.values()) else v)
            for k, v in payload.items()}
    with artifacts.atomic_file(path, "w") as handle:
        json.dump(slim, handle, indent=1, default=str)


def splice(doc: Path, key: str, text: str) -> None:
    """Replace the generated block ``key`` in ``doc`` (hand-written text around it is kept)."""
    start, end = START.format(key), END.format(key)
    old = doc.read_text(encoding="utf-8") if doc.exists() else ""
    block = f"{start}\n{text}\n{end}"
    if start in old and end in old:
        new = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _m: block, old, flags=re.S)
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    with artifacts.atomic_file(doc, "w") as handle:
        handle.write(new)
