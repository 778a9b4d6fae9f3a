"""Ratios, the plot and the Markdown section for bench_vs_arxiv_sanity.py (kept apart to keep that file short)."""
from __future__ import annotations

from pathlib import Path

# endpoint -> (Paperfeed measurement, lite measurement, label)
ENDPOINTS = {
    "feed": ("feed", "feed", "feed, recommended (whole library; Paperfeed: list saved by `train`)"),
    "feed_live": ("feed_live", "feed", "feed, recommended (both tags ticked; Paperfeed: live mat-vec over all papers)"),
    "similar": ("similar", "similar", "similar papers"),
    "search": ("search", "search", "search"),
}
SYSTEMS = ("paperfeed", "arxiv_sanity")


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 1) if b else None


def add_ratios(results: dict) -> None:
    """lite / Paperfeed for every latency and job: how many times faster (or leaner) Paperfeed is."""
    for size in results["sizes"]:
        lat, jobs = size["latency"], size["jobs"]
        ratios = {}
        for name, (pf, base, _) in ENDPOINTS.items():
            p, b = lat[pf]["paperfeed"], lat[base]["arxiv_sanity"]
            ratios[name] = {"p50": _ratio(b["p50_ms"], p["p50_ms"]), "p99": _ratio(b["p99_ms"], p["p99_ms"])}
        for job in ("import", "compute"):
            p, b = jobs["paperfeed"][job], jobs["arxiv_sanity"][job]
            ratios[job] = {"seconds": _ratio(b["seconds"], p["seconds"]),
                           "peak_rss": _ratio(b["peak_rss_mb"], p["peak_rss_mb"])}
        size["ratios"] = ratios


def plot(results: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = results["sizes"]
    papers = [s["papers"] for s in sizes]
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    panels = [("feed (recommended)", [("feed", "paperfeed", "Paperfeed, saved list"),
                                       ("feed_live", "paperfeed", "Paperfeed, live mat-vec"),
                                       ("feed", "arxiv_sanity", "arxiv-sanity way")]),
              ("similar papers", [("similar", "paperfeed", "Paperfeed"),
                                  ("similar", "arxiv_sanity", "arxiv-sanity way")]),
              ("search", [("search", "paperfeed", "Paperfeed"), ("search", "arxiv_sanity", "arxiv-sanity way")])]
    for ax, (title, lines) in zip(axes.flat, panels):
        for ep, system, label in lines:
            ax.plot(papers, [s["latency"][ep][system]["p50_ms"] for s in sizes], marker="o", label=label,
                    color="tab:red" if system != "paperfeed" else "tab:cyan" if ep == "feed_live" else "tab:blue",
                    linestyle="--" if ep == "feed_live" else "-")
        _axes(ax, f"{title}: p50 latency over HTTP", "ms")
    ax = axes.flat[3]
    for job, marker in (("import", "o"), ("compute", "s")):
        for system, color in zip(SYSTEMS, ("tab:blue", "tab:red")):
            ax.plot(papers, [s["jobs"][system][job]["seconds"] for s in sizes], marker=marker, color=color,
                    label=f"{'Paperfeed' if system == 'paperfeed' else 'arxiv-sanity way'} {job}",
                    linestyle="-" if job == "import" else ":")
    _axes(ax, "batch jobs: wall time", "s")
    fig.suptitle("Paperfeed vs the arxiv-sanity-lite way (log-log; lower is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _axes(ax, title: str, unit: str) -> None:
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("papers in the corpus")
    ax.set_ylabel(unit)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def _ms(v: float) -> str:
    return f"{v:,.0f} ms" if v >= 100 else f"{v:.3g} ms"


def _x(v) -> str:
    return "n/a" if v is None else f"**{v:,.1f}x**" if v >= 10 else f"{v:,.1f}x"


def _job(j: dict) -> str:
    return f"{j['seconds']:,} s, {j['peak_rss_mb']:,} MB"


def jobs_table(results: dict) -> list[str]:
    rows = ["| papers | step | Paperfeed | arxiv-sanity way | ratio (time) |", "|---|---|---|---|---|"]
    for s in results["sizes"]:
        pf, base = s["jobs"]["paperfeed"], s["jobs"]["arxiv_sanity"]
        for job in ("import", "compute"):
            rows.append(f"| {s['papers']:,} | {job} | {_job(pf[job])} | {_job(base[job])} | "
                        f"{_x(s['ratios'][job]['seconds'])} |")
        rows.append(f"| {s['papers']:,} | train (1 user) | {_job(pf['train'])} | none: fits an SVM inside every"
                    f" feed and similar request (below) | |")
    return rows


def latency_table(results: dict) -> list[str]:
    rows = ["| papers | request | Paperfeed p50 / p99 (n) | arxiv-sanity way p50 / p99 (n) | ratio p50 | ratio p99 |",
            "|---|---|---|---|---|---|"]
    for s in results["sizes"]:
        for name, (pf_ep, base_ep, label) in ENDPOINTS.items():
            p, b = s["latency"][pf_ep]["paperfeed"], s["latency"][base_ep]["arxiv_sanity"]
            errors = p["errors"] + (b["errors"] if name != "feed_live" else 0)
            note = f" ({errors} errors)" if errors else ""
            rows.append(f"| {s['papers']:,} | {label}{note} | {_ms(p['p50_ms'])} / {_ms(p['p99_ms'])} ({p['n']}) | "
                        f"{_ms(b['p50_ms'])} / {_ms(b['p99_ms'])} ({b['n']}) | {_x(s['ratios'][name]['p50'])} | "
                        f"{_x(s['ratios'][name]['p99'])} |")
    return rows


def breakdown_table(results: dict) -> list[str]:
    rows = ["| papers | lite request | p50 total | of which: reload features.p | of which: fit the SVM |",
            "|---|---|---|---|---|"]
    for s in results["sizes"]:
        for ep in ("feed", "similar"):
            b = s["latency"][ep]["arxiv_sanity"]
            rows.append(f"| {s['papers']:,} | {ep} | {_ms(b['p50_ms'])} | {_ms(b['load_p50_ms'])} | "
                        f"{_ms(b['train_p50_ms'])} |")
    return rows


def memory_rows(results: dict) -> list[str]:
    rows = []
    for s in results["sizes"]:
        pf, base = s["server_memory_mb"]["paperfeed"], s["server_memory_mb"]["arxiv_sanity"]
        rows.append(f"- {s['papers']:,} papers: Paperfeed {pf['VmRSS']:,} MB resident ({pf['VmHWM']:,} MB peak); "
                    f"arxiv-sanity way {base['VmRSS']:,} MB resident ({base['VmHWM']:,} MB peak).")
    return rows


def _settings(results: dict) -> str:
    last = results["sizes"][-1]
    out = last["jobs"]["paperfeed"]["compute"]["output"]
    shown = ", ".join(f"`{k}` {v}" for k, v in last["paperfeed_settings"].items() if k != "n_jobs")
    return f"{shown}; {out['features']:,} features and {out['nnz']:,} non-zeros at {last['papers']:,} papers"


def method(results: dict) -> list[str]:
    n, k = results["baseline_requests"], results["paperfeed_per_baseline"]
    return [
        "How each system runs:", "",
        "- Paperfeed: the real CLI (`paperfeed import`, `compute`, `train`) and `paperfeed serve --dev` (waitress,"
        " 8 threads), a bearer token. Feed: `GET /api/feed?limit=25` (whole library, answered from the ranked list"
        " `train` saved) and `GET /api/feed?tag=A&tag=B&limit=25` (both tags ticked: one sparse mat-vec over every"
        " paper per request); `/api/papers/<id>/similar?limit=25`; `/api/search?q=...&limit=25`.",
        "- The arxiv-sanity way: `benchmarks/arxiv_sanity_way.py`, written from a reading of karpathy/arxiv-sanity-lite"
        " (`aslite/db.py`, `arxiv_daemon.py`, `compute.py`, `serve.py`). Ingest pickles each paper into sqlitedict"
        " (`papers` and `metas` tables, a commit after every write, as lite's `get_papers_db` autocommits; lite also"
        " zlib-compresses each value, left out here, which only favours the baseline). Compute reads every paper and"
        " fits `TfidfVectorizer(ngram_range=(1, 2), max_features=20000, min_df=5, max_df=0.1, sublinear_tf=True, ...)`"
        " on title + abstract + authors, transforms in a second pass as lite does, and pickles `{pids, x, vocab, idf}`."
        " Its Flask app (on waitress, 8 threads) reloads `features.p` and fits `LinearSVC(class_weight=\"balanced\","
        " C=0.01, tol=1e-6, max_iter=10000, dual=True)` over all papers on every feed and similar request (lite pins"
        " scikit-learn 1.0.1, whose default is `dual=True`; today's default would pick the slower primal solver on"
        " this corpus, which an earlier version of this benchmark did by mistake; similar: the one"
        " paper is the only positive), then scores every paper; search counts the query words in every paper's"
        " authors, title and abstract, unpickled from sqlitedict (lite's `search_rank`).",
        "- Training: `paperfeed train` is a batch job (in the job table). The arxiv-sanity way has no batch training:"
        " it trains inside every feed and similar request, so its training cost is part of those latencies (broken"
        " down in the third table).",
        "- Same inputs for both: the same corpus file (decompressed to plain JSON lines first, so both read the same"
        " bytes), the same library (2 tags of 10 papers, picked by `bench_pipeline.make_users` and written to both),"
        " the same paper ids for similar and the same 9 keyword queries for search (`bench_http`'s arXiv-id query is"
        " left out: Paperfeed answers it with a lookup).",
        f"- Interleaved, so load from other work hits both alike and the ratios stay fair: per round and endpoint,"
        f" {k} Paperfeed requests and 1 baseline request, the order flipped every round; one warm-up request per"
        f" endpoint and server, not counted. Jobs alternate too: Paperfeed import, baseline ingest, baseline compute,"
        f" Paperfeed compute. Bounded: {n} baseline requests per endpoint and size (seconds each at full size) and"
        f" {n * k} Paperfeed requests, so p99 of the baseline is close to its maximum.",
        f"- Not like for like in output, only in the request: Paperfeed uses its own settings ({_settings(results)}),"
        " builds features from title, abstract, authors and categories (separate blocks), trains on the library"
        " against sampled negatives, and ranks"
        " search by TF-IDF relevance, so the 25 papers returned differ.", "",
    ]


def markdown(results: dict) -> str:
    m, last = results["machine"], results["sizes"][-1]
    r = last["ratios"]
    loads = ", ".join(f"{s['papers']:,}: {s['loadavg_1m']['before']} -> {s['loadavg_1m']['after']}"
                      for s in results["sizes"])
    lines = [
        "## Paperfeed vs the arxiv-sanity-lite way (issue 4, re-run for issue 8)", "",
        f"- Machine: {m['cpu']}, `nproc` = {m['nproc']}, {m['ram_gib']} GiB RAM, Python {m['python']}, "
        f"scikit-learn {m['scikit_learn']}, numpy {m['numpy']}.",
        f"- Command: `{results['command']}` (raw output: [bench_vs_arxiv_sanity.json](bench_vs_arxiv_sanity.json));"
        f" the whole run took {results['runtime_s'] / 60:.1f} min.",
        f"- 1-minute load average before -> after each size: {loads}.",
        *([f"- {results['note']}"] if results.get("note") else []), "", *method(results),
        f"Headline at {last['papers']:,} papers (p50 ratio, arxiv-sanity way / Paperfeed): recommended feed "
        f"{_x(r['feed']['p50'])} (live mat-vec {_x(r['feed_live']['p50'])}), similar {_x(r['similar']['p50'])}, "
        f"search {_x(r['search']['p50'])}; import {_x(r['import']['seconds'])}, "
        f"compute {_x(r['compute']['seconds'])}.", "",
        "### Batch jobs (each its own process; peak RSS from `os.wait4`)", "", *jobs_table(results), "",
        "### Requests over HTTP (waitress on 127.0.0.1, one at a time, 25 results each)", "",
        *latency_table(results), "",
        "Where the arxiv-sanity way's ranked requests spend their time (reported by the server per request):", "",
        *breakdown_table(results), "",
        "Server memory after the requests:", "", *memory_rows(results), "",
        "![p50 latency and job time vs corpus size, both systems](bench_vs_arxiv_sanity.png)", "",
    ]
    return "\n".join(lines) + "\n"
