"""Library import and export at the sizes a researcher brings: time per step on real papers.

    python benchmarks/bench_library_io.py [--corpus FILE] [--sizes 1000 5000] [--out docs/bench_library_io.json]

A store is filled with the 10k real sample. For each size N, N real papers are exported with Paperfeed's
exporter as BibTeX and CSL JSON (titles with LaTeX, accents and math as arXiv has them), then:
- ``parse``: the importer reads the file (bibtexparser 2 / json, LaTeX titles decoded);
- ``import``: ``paperfeed library import USER FILE --no-fetch`` end to end, in a fresh process
  (parse, resolve against the store, tag in one transaction, report);
- ``reimport``: the same again (a no-op);
- ``export``: ``paperfeed library export USER --format F`` in a fresh process.
Targets (issue 10): a 5,000-entry library (the per-tag limit) imports in under 10 s and exports in under 5 s.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from recommender.corpus.ingest import import_snapshots  # noqa: E402
from recommender.corpus.store import PaperStore  # noqa: E402
from recommender.library import export, formats  # noqa: E402

SHARED = Path(os.environ.get("PAPERFEED_SHARED", REPO.parent / "shared"))
CORPUS = SHARED / "arxiv" / "corpus" / "arxiv-metadata-2025-2026-sample10k.jsonl.gz"
FORMATS = {"bibtex": ("bibtex", ".bib"), "csljson": ("csl-json", ".json")}


def cli(args: list[str], workdir: Path, stdin: str | None = None) -> float:
    env = {**os.environ, "PAPERFEED_DATA_DIR": str(workdir / "data"), "PAPERFEED_MODELS_DIR": str(workdir / "models"),
           "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "jobs.cli", *args], env=env, check=True, input=stdin, text=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "bench_library_io.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="paperfeed-library-io-") as tmp:
        work = Path(tmp)
        (work / "data").mkdir()
        with PaperStore(work / "data" / "papers.sqlite") as store:
            import_snapshots(store, [args.corpus])
            papers = {p.id: p for p in store.iter_papers()}
        ids = sorted(papers)
        rows = []
        for n in args.sizes:
            chosen = ids[:n]
            for fmt, (parse_as, suffix) in FORMATS.items():
                user = f"u{n}{fmt}"
                cli(["useradd", user, "--password-stdin"], work, stdin="correct horse battery staple 42\n")
                text = export.export_library(fmt, {"papers": chosen}, papers)
                path = work / f"library-{n}{suffix}"
                path.write_text(text, encoding="utf-8")
                start = time.perf_counter()
                parsed = formats.parse(text, fmt=parse_as, max_bytes=64 * 2**20, max_entries=n)
                parse_s = time.perf_counter() - start
                assert len(parsed.entries) == n and all(e.arxiv_id for e in parsed.entries)
                import_s = cli(["library", "import", user, str(path), "--tag", "papers", "--no-fetch"], work)
                reimport_s = cli(["library", "import", user, str(path), "--tag", "papers", "--no-fetch"], work)
                export_s = cli(["library", "export", user, "--format", fmt, "-o", str(work / f"out{suffix}")], work)
                rows.append({"entries": n, "format": fmt, "bytes": len(text.encode()), "parse_s": round(parse_s, 2),
                             "import_cli_s": round(import_s, 2), "reimport_cli_s": round(reimport_s, 2),
                             "export_cli_s": round(export_s, 2)})
                print(json.dumps(rows[-1]), file=sys.stderr)
        # the CLI start-up alone, to read the rows above against
        startup = cli(["--version"], work)
    record = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
              "python": platform.python_version(), "corpus": str(args.corpus.name), "cli_startup_s": round(startup, 2),
              "rows": rows, "command": "python benchmarks/bench_library_io.py"}
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print("| entries | format | file | parse | `library import` | again (no-op) | `library export` |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['entries']:,} | {r['format']} | {r['bytes'] / 2**20:.1f} MiB | {r['parse_s']:.2f} s | "
              f"{r['import_cli_s']:.2f} s | {r['reimport_cli_s']:.2f} s | {r['export_cli_s']:.2f} s |")
    print(f"\nCLI start-up (`paperfeed --version`): {startup:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
