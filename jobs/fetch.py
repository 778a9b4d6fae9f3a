"""``paperfeed fetch``: pull new papers from the arXiv API into the paper store.

Exit codes suit cron: 0 when papers were added or updated, 1 when nothing
changed (later jobs can be skipped), 2 on error.
"""
from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
import time
from pathlib import Path

from tqdm import tqdm

from recommender.harvest import arxiv_api
from recommender.corpus.ids import parse_arxiv_id
from recommender.corpus.store import PaperStore

from .output import emit, warn

DEFAULT_SINCE_DAYS = 7


def _date(text: str) -> dt.date:
    # fromisoformat alone would also take "20250318" and "2025-W12-1".
    try:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text, re.ASCII):
            raise ValueError
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2025-03-18 (YYYY-MM-DD)") from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def _category(text: str) -> str:
    try:
        arxiv_api.category_search([text])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``fetch`` options to ``parser``."""
    parser.add_argument("-c", "--category", action="append", type=_category, metavar="CAT",
                        help="arXiv category to fetch; repeat for several "
                             f"(default: {' '.join(arxiv_api.DEFAULT_CATEGORIES)})")
    parser.add_argument("--since", type=_date, metavar="YYYY-MM-DD",
                        help="only papers submitted or updated on or after this date "
                             f"(default: {DEFAULT_SINCE_DAYS} days ago)")
    parser.add_argument("--max-results", type=_positive, metavar="N",
                        help="stop after N papers (default: no limit besides --since)")
    parser.add_argument("--id", dest="ids", nargs="+", type=_paper_id, metavar="ID",
                        help="fetch these papers by arXiv id (new or old style, a version or an abs/pdf URL is "
                             "fine) instead of the newest in the categories")


def _paper_id(text: str) -> str:
    try:
        return parse_arxiv_id(text)[0]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _summary(result: arxiv_api.FetchResult) -> str:
    lines = [f"fetched {result.pages} page(s): {result.added} added, {result.updated} updated, "
             f"{result.unchanged} unchanged, {len(result.skipped)} skipped"]
    lines += [f"  skipped {s.entry_id or '(no id)'}: {s.reason}" for s in result.skipped]
    if result.not_found:
        lines.append(f"not on arXiv ({len(result.not_found)}): {' '.join(result.not_found)}")
    return "\n".join(lines)


def _remove_if_empty(path: Path) -> None:
    with PaperStore(path) as store:
        empty = len(store) == 0
    if empty:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def run(args: argparse.Namespace, settings, *, session=None, sleep=time.sleep) -> int:
    """Fetch, print a summary (or JSON), and return 0 (changes), 1 (none) or 2 (error).

    ``session`` and ``sleep`` exist for tests: a fake transport and a clock that never sleeps.
    """
    since = args.since or dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=DEFAULT_SINCE_DAYS)
    categories = args.category or arxiv_api.DEFAULT_CATEGORIES
    # tqdm disables itself when stderr is not a terminal, so cron logs stay clean.
    with tqdm(desc="fetching", unit="paper", file=sys.stderr, disable=None) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total if args.max_results else None  # with --since alone the end is unknown
            bar.update(done - bar.n)

        new_store = not settings.papers_path.exists()
        try:
            with PaperStore(settings.papers_path) as store:
                if getattr(args, "ids", None):
                    result = arxiv_api.fetch_ids(store, settings, args.ids, session=session, sleep=sleep,
                                                 progress=progress)
                else:
                    result = arxiv_api.fetch_new(store, settings, categories, since, args.max_results,
                                                 session=session, sleep=sleep, progress=progress)
        except arxiv_api.FetchError as exc:
            bar.close()
            if new_store:
                _remove_if_empty(settings.papers_path)  # a failed first fetch leaves no half-made store
            saved = exc.result
            kept = f" (kept {saved.pages} earlier page(s): {saved.added} added, {saved.updated} updated)" \
                if saved and saved.pages else ""
            warn(f"paperfeed fetch: error: {exc}{kept}")
            return 2
    emit(args, result.to_dict(), _summary(result))
    return 0 if result.changed else 1
