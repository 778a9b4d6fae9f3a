"""``paperfeed harvest``: all of arXiv, or whole sets, through arXiv's OAI-PMH interface.

``--set`` names what to harvest (repeat it: ``cs``, ``math``, ``stat``, ``physics:hep-th``);
``--all`` harvests every record, with no set. One of them is required: a whole-arXiv
harvest is millions of records and hours of polite paging, so it is never a default.

Incremental: each set starts from the date its last complete harvest began (stored in
``<data dir>/harvest_state.json``); ``--from`` overrides it. Resumable: a killed run
continues from its stored resumption token. Exit codes suit cron: 0 when papers were
added or updated, 1 when nothing changed, 2 on error (one line on stderr; the pages
committed before it are kept and the next run resumes).
"""
from __future__ import annotations

import argparse
import sys
import time

from tqdm import tqdm

from recommender.corpus.store import PaperStore
from recommender.harvest import oaipmh

from .fetch import _date
from .output import emit, warn

SHOW = 20  # skipped and deleted records listed in the text summary (--json: up to oaipmh.MAX_REPORTED)


def _set(text: str) -> str:
    try:
        return oaipmh.check_set(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("-s", "--set", dest="sets", action="append", type=_set, metavar="SET",
                       help="an arXiv OAI-PMH set to harvest: cs, math, stat, q-bio, econ, eess, physics, or an "
                            "archive such as physics:hep-th; repeat for several")
    which.add_argument("--all", action="store_true", help="harvest all of arXiv (no set): millions of records")
    parser.add_argument("--from", dest="from_date", type=_date, metavar="YYYY-MM-DD",
                        help="records changed on or after this date (default: where the last complete harvest "
                             "of the set began; the first harvest takes everything)")
    parser.add_argument("--until", type=_date, metavar="YYYY-MM-DD",
                        help="records changed on or before this date (a window: the stored date is not moved)")
    parser.add_argument("--format", dest="fmt", choices=oaipmh.FORMATS, default="arXiv",
                        help="metadata format: arXiv (parsed author names; default) or arXivRaw (every version "
                             "with its date)")


def _summary(result: oaipmh.HarvestResult) -> str:
    lines = []
    for s in result.sets:
        lines.append(f"{oaipmh.set_label(s.set)} ({s.format}, from {s.from_date or 'the beginning'}"
                     f"{', until ' + s.until if s.until else ''}): {s.pages} page(s): {s.added} added, "
                     f"{s.updated} updated, {s.unchanged} unchanged, {s.deleted} deleted upstream "
                     f"({s.deleted_kept} of them kept in the store), {s.skipped} skipped")
        lines += [f"  note: {note}" for note in s.notes]
        lines += [f"  skipped {r.entry_id or '(no identifier)'}: {r.reason}" for r in s.skipped_records[:SHOW]]
        if s.skipped > SHOW:
            lines.append(f"  ... and {s.skipped - SHOW} more skipped (--json lists up to {oaipmh.MAX_REPORTED})")
        if s.deleted_kept_ids:
            shown = " ".join(s.deleted_kept_ids[:SHOW])
            more = f" ... and {s.deleted_kept - SHOW} more" if s.deleted_kept > SHOW else ""
            lines.append(f"  deleted on arXiv, kept here: {shown}{more}")
        if s.next_from:
            lines.append(f"  next harvest starts from {s.next_from}")
    return "\n".join(lines)


def run(args: argparse.Namespace, settings, *, session=None, sleep=time.sleep) -> int:
    """Harvest, print a summary (or JSON), and return 0 (changes), 1 (none) or 2 (error)."""
    if args.from_date and args.until and args.until < args.from_date:
        warn("paperfeed harvest: error: --until is before --from")
        return 2
    sets = [oaipmh.ALL] if args.all else args.sets
    with tqdm(desc="harvesting", unit="record", file=sys.stderr, disable=None) as bar:
        current = []

        def progress(spec: str, done: int, total: int | None) -> None:
            if current != [spec]:  # a new set: a new count
                current[:] = [spec]
                bar.reset(total)
                bar.set_description(f"harvesting {oaipmh.set_label(spec)}")
            bar.total = total
            bar.update(done - bar.n)

        try:
            with PaperStore(settings.papers_path) as store:
                result = oaipmh.harvest(store, settings, sets, fmt=args.fmt,
                                        from_date=args.from_date.isoformat() if args.from_date else None,
                                        until=args.until.isoformat() if args.until else None,
                                        session=session, sleep=sleep, progress=progress)
        except oaipmh.HarvestError as exc:
            bar.close()
            saved = exc.result
            kept = ""
            if saved and saved.sets:
                d = saved.to_dict()
                kept = (f" (kept {d['pages']} earlier page(s): {d['added']} added, {d['updated']} updated; "
                        "run again to resume)")
            warn(f"paperfeed harvest: error: {exc}{kept}")
            return 2
    emit(args, result.to_dict(), _summary(result))
    return 0 if result.changed else 1
