"""docs/quality.md from the saved per-case JSON: tables, paired comparisons, the tuning grid, what lost.

Everything between ``<!-- results:KEY:start/end -->`` markers is generated;
the hand-written text around the markers is kept.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from recommender.storage import artifacts
from recommender.evaluation.grid import CENTER, DEFAULT, LITE, WITH_EMBEDDINGS
from recommender.evaluation.metrics import paired

START, END = "<!-- results:{}:start -->", "<!-- results:{}:end -->"
TITLES = {"authors": "Author pseudo-users without their own name", "readers": "Citing readers",
          "curator": "A real curator (ML papers of the week)", "citations": "Similar papers against citations"}
ORDER = ("authors", "readers", "curator", "citations")


def values(entry: dict, metric: str = "ndcg@100", task: str | None = None) -> list[float]:
    tasks = [task] if task else sorted(entry["per_task"])
    return [c[metric] for t in tasks for c in entry["per_task"][t]["per_case"]]


def _cases(entry: dict, task: str | None = None) -> list[str]:
    tasks = [task] if task else sorted(entry["per_task"])
    return [c["case"] for t in tasks for c in entry["per_task"][t]["per_case"]]


def compare(results: dict, a: str, b: str, task: str | None = None, metric: str = "ndcg@100") -> dict:
    """Paired comparison of variant ``a`` against ``b`` on the same cases (checked by id), one task or pooled.

    Pooled over cutoffs, one reader can appear at several cutoffs: the bootstrap draws them together.
    """
    ea, eb = results["variants"][a], results["variants"][b]
    cases = _cases(ea, task)
    if cases != _cases(eb, task):
        raise ValueError(f"{a!r} and {b!r} were run on different cases; run `paperfeed evaluate` again")
    return paired(values(ea, metric, task), values(eb, metric, task), clusters=cases)


def _mean_ci(v) -> str:
    v = np.asarray(v, dtype=float)
    half = 1.96 * v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0.0
    return f"{v.mean():.4f} ± {half:.4f}"


def _pct(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:+.1%}"


def _paired_cells(p: dict) -> str:
    return (f"{p['diff']:+.4f} [{p['diff_ci'][0]:+.4f}, {p['diff_ci'][1]:+.4f}] | {_pct(p['rel'])} "
            f"[{_pct(p['rel_ci'][0])}, {_pct(p['rel_ci'][1])}] | {p['wins']}/{p['losses']}")


def _tuned_lite(results: dict) -> str | None:
    return next((n for n in results["variants"] if n.startswith(f"{LITE}, tuned")), None)


def _complete(results: dict, name: str) -> bool:
    entry = results["variants"].get(name)
    return bool(entry) and all(t in entry["per_task"] for t in results["tasks"])


def test_table(results: dict) -> str:
    """Methods per cutoff and pooled (mean ± 95% CI), then paired comparisons of Paperfeed against lite."""
    names = [n for n in results["variants"] if _complete(results, n)]
    tasks = list(results["tasks"])
    head = "| method | " + " | ".join(f"nDCG@100 {t}" for t in tasks) + " | nDCG@100 pooled | recall@100 | AUC | s/case |"
    lines = [head, "|" + "---|" * (len(tasks) + 5)]
    for n in names:
        e = results["variants"][n]
        cells = [f"{np.mean(values(e, task=t)):.4f}" for t in tasks]
        secs = np.mean([e["per_task"][t]["seconds_per_case"] for t in tasks])
        lines.append(f"| {n} | " + " | ".join(cells) + f" | {_mean_ci(values(e))} | "
                     f"{np.mean(values(e, 'recall@100')):.4f} | {np.mean(values(e, 'auc')):.4f} | {secs:.2f} |")
    lines += ["", "Paired, per reader (nDCG@100 difference and relative change of the means, each with its "
              "bootstrap 95% interval; wins/losses of Paperfeed):", "",
              "| Paperfeed against | cutoff | n | difference [95% CI] | relative [95% CI] | wins/losses |",
              "|---|---|---|---|---|---|"]
    for base in (LITE, _tuned_lite(results), "previous release (text only, C 0.3)", "text only"):
        if not base or not _complete(results, base) or not _complete(results, DEFAULT):
            continue
        for t in [*tasks, None]:
            p = compare(results, DEFAULT, base, t)
            lines.append(f"| {base} | {t or '**pooled**'} | {p['n']} | {_paired_cells(p)} |")
    if _complete(results, WITH_EMBEDDINGS):
        lines += ["", f"With the optional embedding block ({WITH_EMBEDDINGS}, pooled):", "",
                  "| against | n | difference [95% CI] | relative [95% CI] | wins/losses |", "|---|---|---|---|---|"]
        for base in (LITE, _tuned_lite(results), DEFAULT):
            if base and _complete(results, base):
                p = compare(results, WITH_EMBEDDINGS, base)
                lines.append(f"| {base} | {p['n']} | {_paired_cells(p)} |")
    return "\n".join(lines)


def tuning_table(results: dict) -> str:
    """Every variant on the development cutoffs, pooled, paired against the tuning center and against lite."""
    if not _complete(results, CENTER):
        return "(the tuning center has not been run on the development cutoffs)"
    lite = values(results["variants"][LITE]) if _complete(results, LITE) else None
    lines = ["| variant | what it tests | nDCG@100 | against | difference [95% CI] | relative | W/L | "
             "vs lite | s/case |", "|---|---|---|---|---|---|---|---|---|"]
    for name, e in results["variants"].items():
        if not _complete(results, name):
            continue
        v = values(e)
        secs = np.mean([t["seconds_per_case"] for t in e["per_task"].values()])
        against = _reference(results, name)
        if against is None:
            versus = "— | — | — | —"
        else:
            p = compare(results, name, against)
            versus = f"{'center' if against == CENTER else against} | {p['diff']:+.4f} " \
                     f"[{p['diff_ci'][0]:+.4f}, {p['diff_ci'][1]:+.4f}] | {_pct(p['rel'])} | {p['wins']}/{p['losses']}"
        rel_lite = _pct(np.mean(v) / np.mean(lite) - 1) if lite else "n/a"
        bold = "**" if name in (DEFAULT, CENTER) else ""
        lines.append(f"| {bold}{name}{bold} | {e['why']} | {np.mean(v):.4f} | {versus} | {rel_lite} | {secs:.2f} |")
    return "\n".join(lines)


def lost(all_dev: dict) -> str:
    """Variants that scored below the defaults on a protocol's development cutoffs, with their numbers."""
    lines = []
    for protocol in ORDER:
        results = all_dev.get(protocol)
        if not results or not _complete(results, CENTER):
            continue
        rows = []
        for name, e in results["variants"].items():
            against = _reference(results, name)
            if against is None or name == DEFAULT or e["kind"] not in ("paperfeed", "similar", "feedback") \
                    or not _complete(results, name):
                continue
            p = compare(results, name, against)
            if p["diff"] < 0:
                sure = "interval below zero" if p["diff_ci"][1] < 0 else "within noise"
                versus = "the tuning center" if against == CENTER else against
                rows.append((p["diff"], f"- {name} ({e['why']}): {p['mean_a']:.4f} against {p['mean_b']:.4f} for "
                                        f"{versus}, {p['diff']:+.4f} [{p['diff_ci'][0]:+.4f}, "
                                        f"{p['diff_ci'][1]:+.4f}], {p['wins']}/{p['losses']}, {sure}"))
        if rows:
            lines.append(f"**{TITLES[protocol]}** (pooled development cutoffs, nDCG@100):")
            lines += [text for _, text in sorted(rows)]
            lines.append("")
    return "\n".join(lines).strip() or "(no development results yet)"


def _reference(results: dict, name: str) -> str | None:
    """What a tuning row is compared with: the tuning center; for feedback, the same marks only hidden (both
    hide papers picked with the answers in hand, so only feedback against feedback is fair)."""
    if name == CENTER or not _complete(results, CENTER):
        return None
    entry = results["variants"][name]
    if entry["kind"] == "feedback":
        hidden = next((n for n, e in results["variants"].items() if e["kind"] == "feedback"
                       and not e["config"].get("retrain") and e["config"].get("marks") == entry["config"].get("marks")),
                      None)
        fallback = next((n for n, e in results["variants"].items() if e["kind"] == "feedback"
                         and not e["config"].get("retrain")), None)
        reference = hidden or fallback
        return None if reference in (None, name) or not _complete(results, reference) else reference
    return CENTER


def headline(results: dict) -> str:
    if not (_complete(results, DEFAULT) and _complete(results, LITE)):
        return "incomplete"
    p = compare(results, DEFAULT, LITE)
    return (f"{results['split']}: paperfeed nDCG@100 {p['mean_a']:.4f} vs arxiv-sanity-lite {p['mean_b']:.4f} "
            f"({_pct(p['rel'])}, 95% CI {_pct(p['rel_ci'][0])} to {_pct(p['rel_ci'][1])}, "
            f"wins/losses {p['wins']}/{p['losses']})")


def summary_table(all_test: dict) -> str:
    lines = ["| protocol | readers or queries | Paperfeed | arxiv-sanity-lite | relative [95% CI] | W/L | "
             "lite, tuned | relative [95% CI] | W/L |", "|---|---|---|---|---|---|---|---|---|"]
    for protocol in ORDER:
        r = all_test.get(protocol)
        if not r or not (_complete(r, DEFAULT) and _complete(r, LITE)):
            continue
        p = compare(r, DEFAULT, LITE)
        cells = [f"{p['mean_b']:.4f}", f"{_pct(p['rel'])} [{_pct(p['rel_ci'][0])}, {_pct(p['rel_ci'][1])}]",
                 f"{p['wins']}/{p['losses']}"]
        tuned = _tuned_lite(r)
        if tuned and _complete(r, tuned):
            q = compare(r, DEFAULT, tuned)
            cells += [f"{q['mean_b']:.4f}", f"{_pct(q['rel'])} [{_pct(q['rel_ci'][0])}, {_pct(q['rel_ci'][1])}]",
                      f"{q['wins']}/{q['losses']}"]
        else:
            cells += ["n/a"] * 3
        lines.append(f"| {TITLES[protocol]} | {p['n']} | {p['mean_a']:.4f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: dict, path: Path, title: str) -> None:
    """Mean recall@k of every method on the test cutoffs."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for name, e in results["variants"].items():
        if not _complete(results, name):
            continue
        curves = [t["recall_curve"] for t in e["per_task"].values()]
        weights = [len(t["per_case"]) for t in e["per_task"].values()]
        recall = np.average([c["recall"] for c in curves], axis=0, weights=weights)
        ax.plot(curves[0]["k"], recall, marker="o", markersize=3, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("k (papers shown)")
    ax.set_ylabel("mean recall@k")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    with artifacts.atomic_file(path) as handle:
        fig.savefig(handle, format="png")
    plt.close(fig)


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


def load_all(data: Path, split: str) -> dict:
    return {p: artifacts.read_json(data / f"{split}-{p}.json") for p in ORDER if (data / f"{split}-{p}.json").exists()}


def write_quality_md(doc: Path, data: Path) -> Path:
    """Regenerate every generated block of ``doc`` from the JSON files in ``data``."""
    dev, test = load_all(data, "dev"), load_all(data, "test")
    splice(doc, "summary", summary_table(test) if test else "(no test results yet)")
    for protocol in ORDER:
        if protocol in test:
            plot(test[protocol], data / f"test-{protocol}.png", f"recall@k, {TITLES[protocol]} (test)")
            splice(doc, f"test-{protocol}", test_table(test[protocol]) +
                   f"\n\n![recall@k, {protocol}, test](quality/test-{protocol}.png)")
        if protocol in dev:
            splice(doc, f"tuning-{protocol}", tuning_table(dev[protocol]))
    splice(doc, "lost", lost(dev))
    return doc
