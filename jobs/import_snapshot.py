"""``paperfeed import FILE...``: stream Kaggle-snapshot JSON lines into the paper store.

A bad line never aborts the import: the summary lists the first ``SHOW_BAD`` with their
file, line number and reason (``--json``: the first ``ingest.MAX_REPORTED_BAD``, 1,000, in
``bad_lines``, all of them counted in ``bad``). ``lines`` counts non-blank lines, so
``added + updated + unchanged + bad == lines``. Exit 0 even with bad lines; 2 when a
file cannot be read at all.
"""
from __future__ import annotations

from recommender.corpus.ingest import import_snapshots
from recommender.corpus.store import PaperStore

from .output import emit
from .progress import bar

SHOW_BAD = 20


def add_arguments(parser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="snapshot files: .jsonl, .json, .gz, .xz or .bz2")


def run(args, settings) -> int:
    with PaperStore(settings.papers_path) as store, bar("import", unit="B", unit_scale=True) as progress:
        def advance(path, done, total):
            progress.total = total
            progress.set_description(f"import {path.rsplit('/', 1)[-1]}")
            progress.n = done
            progress.refresh()

        summary = import_snapshots(store, args.files, advance)
    emit(args, summary.to_dict(), _text(summary))
    return 0


def _text(summary) -> str:
    lines = [f"{summary.lines} lines: added {summary.added}, updated {summary.updated}, "
             f"unchanged {summary.unchanged}, bad lines skipped {summary.bad}"]
    for bad in summary.bad_lines[:SHOW_BAD]:
        lines.append(f"  {bad.path}:{bad.line}: {bad.reason}")
    if summary.bad > SHOW_BAD:
        lines.append(f"  ... and {summary.bad - SHOW_BAD} more (use --json for the first {len(summary.bad_lines)})")
    return "\n".join(lines)
