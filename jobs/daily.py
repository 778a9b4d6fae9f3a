"""``paperfeed daily``: the whole daily loop as one cron line: fetch, compute, train, digest.

- ``fetch`` brings the new papers (skip it with ``--no-fetch`` when papers come from ``paperfeed import``).
- ``compute`` runs when the fetch changed the store or there are no features yet; with ``--no-fetch``,
  when the paper store was written since the current features were computed (a ``paperfeed import``).
- ``train`` retrains the users whose tags or features changed (the others are up to date at once).
- ``digest`` mails the users whose digest is due, and resends what a failed run left pending.

A step that fails does not stop the later ones (yesterday's features still rank, pending digests still
go out), and each step holds its own job lock, so a ``paperfeed fetch`` started by hand meanwhile waits
its turn instead of colliding.

Exit codes, for a scheduler: 0 every step did its work (including "nothing new on arXiv today");
1 the steps ran, but some digests failed or are pending (retried on the next run; the summary names
the users); 2 a step failed (the summary says which and why).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import time

from recommender.features.index import NoGeneration
from recommender.storage import artifacts
from recommender.storage.locks import job_locks

from . import compute, digest, fetch, train
from .output import emit, warn

STEPS = ("fetch", "compute", "train", "digest")


def add_arguments(parser) -> None:
    parser.add_argument("--no-fetch", action="store_true",
                        help="skip the fetch (papers arrive by `paperfeed import`); compute then runs if the store "
                             "changed since the last compute")
    parser.add_argument("-c", "--category", action="append", type=fetch._category, metavar="CAT",
                        help="arXiv category to fetch; repeat for several (default: fetch's)")
    parser.add_argument("--since", type=fetch._date, metavar="YYYY-MM-DD",
                        help=f"fetch papers from this date (default: {fetch.DEFAULT_SINCE_DAYS} days ago; "
                             "papers already stored are not fetched twice)")
    parser.add_argument("--max-results", type=fetch._positive, metavar="N", help="fetch at most N papers")
    parser.add_argument("--no-digest", action="store_true", help="stop after train")
    parser.add_argument("--dry-run", action="store_true", help="run the digest step as `digest --dry-run`")


def _has_features(settings) -> bool:
    try:
        return artifacts.Generations(settings.models_dir).current() is not None
    except (OSError, NoGeneration):
        return False


def store_changed_since_features(settings) -> bool:
    """Whether the paper store may hold papers the current generation lacks: it was written (its file or
    write-ahead log modified) at or after the moment that generation's compute started. Errs towards
    True (no generation, an older one without ``computed_at``, anything unreadable): an unneeded compute
    costs time, a skipped one would leave new papers unranked."""
    try:
        gens = artifacts.Generations(settings.models_dir)
        name = gens.current()
        if name is None:
            return True
        started = artifacts.read_json(gens.path(name) / "meta.json").get("computed_at")
        if started is None:
            return True
        written = [path.stat().st_mtime for path in (settings.papers_path, settings.papers_path.with_name(
            settings.papers_path.name + "-wal")) if path.exists()]
    except (OSError, ValueError, NoGeneration):
        return True
    return not written or max(written) >= started


def _step(name: str, module, args: argparse.Namespace, settings, json_mode: bool) -> dict:
    """Run one job under its lock, capturing what it prints; ``{name, exit, seconds, output | error}``."""
    from .cli import describe  # the CLI's one-line error text (jobs.cli imports this module lazily)

    started, out = time.perf_counter(), io.StringIO()
    result = {"step": name}
    try:
        with job_locks(settings.models_dir, (name,)), contextlib.redirect_stdout(out):
            result["exit"] = module.run(args, settings)
    except Exception as exc:  # noqa: BLE001 -- one step's failure is reported; the loop goes on
        result["exit"], result["error"] = 2, describe(exc)
    result["seconds"] = round(time.perf_counter() - started, 2)
    text = out.getvalue().strip()
    if json_mode and text:
        try:
            result["output"] = json.loads(text)
        except ValueError:
            result["output"] = text
    elif text:
        result["output"] = text
    return result


def run(args, settings) -> int:
    json_mode = bool(getattr(args, "json", False))
    results, fetched = [], None
    if not args.no_fetch:
        fetch_args = argparse.Namespace(json=json_mode, category=args.category, since=args.since,
                                        max_results=args.max_results, ids=None)
        results.append(_step("fetch", fetch, fetch_args, settings, json_mode))
        fetched = results[-1]["exit"]
    if fetched == 1 and _has_features(settings):
        results.append({"step": "compute", "exit": 0, "seconds": 0.0, "output": "skipped: fetch found nothing new"})
    elif fetched is None and not store_changed_since_features(settings):
        results.append({"step": "compute", "exit": 0, "seconds": 0.0,
                        "output": "skipped: the paper store has not changed since the current features"})
    else:
        results.append(_step("compute", compute, argparse.Namespace(json=json_mode, max_features=None),
                             settings, json_mode))
    results.append(_step("train", train, argparse.Namespace(json=json_mode, all=False), settings, json_mode))
    if not args.no_digest:
        results.append(_step("digest", digest, argparse.Namespace(json=json_mode, dry_run=args.dry_run, user=None,
                                                                  force=False), settings, json_mode))
    failed = [r for r in results if r["exit"] == 2 or (r["step"] != "fetch" and r["exit"] not in (0, 1))]
    fetch_failed = any(r["step"] == "fetch" and r["exit"] == 2 for r in results)
    pending = any(r["step"] == "digest" and r["exit"] == 1 for r in results)
    code = 2 if failed or fetch_failed else 1 if pending else 0
    emit(args, {"exit": code, "steps": results}, _text(results, code))
    if code == 2:
        warn("paperfeed daily: error: " + "; ".join(f"{r['step']}: {r.get('error', 'failed')}"
                                                    for r in results if r["exit"] == 2))
    return code


def _text(results: list[dict], code: int) -> str:
    lines = []
    for r in results:
        state = {0: "ok", 1: "ok, with notes", 2: "FAILED"}.get(r["exit"], f"exit {r['exit']}")
        if r["step"] == "fetch" and r["exit"] == 1:
            state = "ok, nothing new"
        lines.append(f"== {r['step']}: {state} ({r['seconds']:.1f} s)")
        if r.get("output"):
            lines.append(str(r["output"]))
        if r.get("error"):
            lines.append(f"error: {r['error']}")
    lines.append(f"daily: exit {code}")
    return "\n".join(lines)
