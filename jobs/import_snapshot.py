"""``paperfeed import FILE...``: stream Kaggle-snapshot JSON lines into the paper store."""
from __future__ import annotations

from recommender.ingest import import_snapshots
from recommender.store import PaperStore

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
    lines = [f"added {summary.added}, updated {summary.updated}, unchanged {summary.unchanged}, "
             f"bad lines skipped {summary.bad}"]
    for bad in summary.bad_lines[:SHOW_BAD]:
        lines.append(f"  {bad.path}:{bad.line}: {bad.reason}")
    if summary.bad > SHOW_BAD:
        lines.append(f"  ... and {summary.bad - SHOW_BAD} more (use --json for the first {len(summary.bad_lines)})")
    return "\n".join(lines)
