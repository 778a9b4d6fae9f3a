"""The ``paperfeed`` command: one sub-command per job module.

Each job module defines ``add_arguments(parser)`` and ``run(args, settings) -> int``.

Exit codes, the same for every command:

- 0: done (for ``check``: healthy, or every problem repaired).
- 1: ran, but reports a condition cron may act on: ``fetch`` or ``harvest`` found nothing new,
  ``digest`` (or ``daily``) left some users' digests failed or pending for the next run,
  ``check`` found problems it did not (or could not) repair, ``tag`` left an id untagged,
  ``library import`` could not fetch some papers (offline: run it again to complete it).
- 2: failed. One line on stderr, ``paperfeed <command>: error: <what>``, plus a
  hint where one helps (disk full, read-only directory, permission, locked or
  damaged database, another run of the same job). Never a traceback: every
  exception ends here, the unexpected ones (a bug) with their type and
  "run with PAPERFEED_DEBUG=1 for the traceback". With ``PAPERFEED_DEBUG=1`` the
  traceback is printed too; the exit code stays 2.
- 130: interrupted (Ctrl-C). Usage errors exit 2 (argparse).

Jobs that write (``import``, ``fetch``, ``harvest``, ``compute``, ``train``, ``digest``, ``check --repair``)
hold a lock (:mod:`recommender.storage.locks`, ``<models_dir>/locks/<job>.lock``) so two
runs of the same job never overlap; ``check --repair`` takes all of them.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import importlib.metadata
import os
import sqlite3
import sys
import traceback
import zipfile
from importlib.metadata import entry_points

from recommender.storage.locks import JobRunning, job_locks
from recommender.settings import load_settings

# command -> (module, one-line help)
COMMANDS = {
    "import": ("jobs.import_snapshot", "import papers from Kaggle-snapshot JSON lines (.jsonl, .gz, .xz, .bz2)"),
    "fetch": ("jobs.fetch", "fetch new papers from the arXiv API"),
    "harvest": ("jobs.harvest", "harvest all of arXiv, or whole sets (cs, math, physics:hep-th), through OAI-PMH: "
                                "incremental and resumable"),
    "compute": ("jobs.compute", "build TF-IDF features and the inverted index for search and similar papers (a new generation)"),
    "train": ("jobs.train", "train per-user, per-tag SVMs and save ranked recommendations"),
    "useradd": ("jobs.users", "create a user"),
    "tag": ("jobs.users", "tag papers into a user's library"),
    "untag": ("jobs.users", "remove papers from a user's tag"),
    "recommend": ("jobs.query", "ranked recommendations for a user"),
    "similar": ("jobs.query", "papers similar to a paper"),
    "popular": ("jobs.popular", "the papers the most readers tagged in the past day, week or month (counts only)"),
    "search": ("jobs.query", "search papers by keywords or arXiv id"),
    "stats": ("jobs.query", "paper count, date range, users and artifact generation"),
    "evaluate": ("jobs.evaluate", "offline quality of the ranking methods on real data (author and citation protocols)"),
    "library": ("jobs.library", "a user's library in and out: import BibTeX, CSL JSON, Zotero RDF or id lists; export "
                                "BibTeX, CSL JSON or CSV"),
    "account": ("jobs.account", "show or change a user's digest settings (address, how often, how many, which "
                                "tags) and make private Atom feeds"),
    "digest": ("jobs.digest", "email each subscriber the new papers ranked for them (after train; --dry-run shows them)"),
    "daily": ("jobs.daily", "the daily loop in one command: fetch, compute, train, digest (for cron)"),
    "check": ("jobs.check", "verify the paper store, user database, features and user models; --repair fixes what it can"),
    "demo": ("jobs.demo", "import or fetch papers, compute, create a demo user, train, then serve: the one command to try Paperfeed"),
}


PLUGIN_GROUP = "paperfeed.commands"

# command -> the job locks it holds while it runs (``check`` only with --repair; see _locks)
LOCKS = {"import": ("import",), "fetch": ("fetch",), "harvest": ("harvest",), "compute": ("compute",), "train": ("train",),
         "digest": ("digest",), "daily": ("daily",)}  # ``daily`` also takes each step's lock in turn
REPAIR_LOCKS = ("import", "fetch", "harvest", "compute", "train", "digest", "check")


def plugin_commands() -> dict:
    """Commands other packages register (``webapp`` adds ``serve``) without jobs importing them."""
    return {ep.name: ep for ep in entry_points(group=PLUGIN_GROUP)}


def common_options(nested: bool = False) -> argparse.ArgumentParser:
    """The options every command takes. ``nested`` is for a command's own sub-commands (``library import``):
    their defaults are suppressed so they never overwrite a value given before the sub-command."""
    common = argparse.ArgumentParser(add_help=False)
    quiet = {"default": argparse.SUPPRESS} if nested else {}
    common.add_argument("--data-dir", help="paper store and user database (env PAPERFEED_DATA_DIR, default ./data)",
                        **quiet)
    common.add_argument("--models-dir", help="artifacts directory (env PAPERFEED_MODELS_DIR, default ./models)",
                        **quiet)
    common.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout", **quiet)
    return common


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``paperfeed`` parser. With ``only`` (a command name, or "" for none), just that command's module is
    imported and its options added: the others stay listed with their help line, so ``--version``, ``--help``
    and the light commands start without importing scikit-learn. None builds every command (for tests)."""
    parser = argparse.ArgumentParser(prog="paperfeed", description="Personalized arXiv paper recommender.")
    parser.add_argument("--version", action="version", version=version_line())
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = common_options()
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        if only is None or only == name:
            module = importlib.import_module(module_name)
            module.add_arguments(p, name) if _takes_name(module) else module.add_arguments(p)
            p.set_defaults(_module=module)
    for name, ep in plugin_commands().items():
        if only is not None and only != name:  # loading it would import its package (webapp: flask and all)
            sub.add_parser(name, parents=[common], help=f"from the {ep.module.split('.')[0]} package: "
                                                         f"`paperfeed {name} -h` for its options")
            continue
        module = ep.load()
        p = sub.add_parser(name, parents=[common], help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def _command(argv: list[str]) -> str | None:
    """The command ``argv`` names: its first word that is not an option (None for ``--version`` or ``-h``)."""
    return next((word for word in argv if not word.startswith("-")), None)


def version_line() -> str:
    """``paperfeed 0.2.0 (Python 3.11.7)``: the installed distribution's version, else the source tree's."""
    try:
        version = importlib.metadata.version("paperfeed")
    except importlib.metadata.PackageNotFoundError:
        from recommender import __version__ as version
    return f"paperfeed {version} (Python {sys.version.split()[0]})"


def _takes_name(module) -> bool:
    return getattr(module, "MULTI_COMMAND", False)


def _locks(args) -> tuple[str, ...]:
    if args.command == "check":
        return REPAIR_LOCKS if getattr(args, "repair", False) else ()
    return LOCKS.get(args.command, ())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command(argv)
    known = command in COMMANDS or command in plugin_commands()
    args = build_parser(command if known else "").parse_args(argv)
    try:
        settings = load_settings(data_dir=args.data_dir, models_dir=args.models_dir)
        with job_locks(settings.models_dir, _locks(args)):
            return args._module.run(args, settings)
    except KeyboardInterrupt:
        print("paperfeed: interrupted; nothing half-written was kept", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `paperfeed search x | head`: the reader left, which is not an error
        _silence_stdout()
        return 0
    except Exception as exc:  # noqa: BLE001 -- the one place every failure becomes one line
        print(f"paperfeed {args.command}: error: {describe(exc)}", file=sys.stderr)
        if os.environ.get("PAPERFEED_DEBUG", "") not in ("", "0"):
            traceback.print_exc()
        return 2


EXPECTED = (JobRunning, sqlite3.Error, OSError, ValueError, LookupError, MemoryError, EOFError,
            zipfile.BadZipFile)

_ERRNO_HINTS = {
    errno.ENOSPC: "the disk is full: free some space (old generations under models/features can go) and run again",
    errno.EDQUOT: "the disk quota is exceeded: free some space and run again",
    errno.EROFS: "the file system is read-only: run writing jobs where the data and models directories are writable",
    errno.EACCES: "permission denied: run the jobs as the user that owns the data and models directories",
    errno.EPERM: "operation not permitted: run the jobs as the user that owns the data and models directories",
}

_SQLITE_HINTS = (
    ("not writable by this user", None),  # the message says it all
    ("locked", "another process is writing this database; try again when it has finished"),
    ("busy", "another process is writing this database; try again when it has finished"),
    ("disk is full", _ERRNO_HINTS[errno.ENOSPC]),
    ("readonly database", "the database or its directory is read-only: writing jobs need a writable data directory"),
    ("unable to open", "the data directory is missing, unreadable, or read-only (SQLite keeps its -wal and -shm "
                       "files beside the database, so even reading needs them there or a writable directory)"),
    ("malformed", "the database file is damaged: run `paperfeed check`, then restore it from a backup"),
    ("not a database", "the database file is damaged: run `paperfeed check`, then restore it from a backup"),
)


def describe(exc: BaseException) -> str:
    """One line for any exception: its message, and a hint for the classes operators meet."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, OSError) and exc.errno in _ERRNO_HINTS and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror}{where}: {_ERRNO_HINTS[exc.errno]}"
    if isinstance(exc, sqlite3.Error):
        lowered = text.lower()
        hint = next((h for key, h in _SQLITE_HINTS if key in lowered), None)
        if hint and hint not in text:
            text = f"{text}: {hint}"
        return text if "database" in lowered else f"database error: {text}"
    if isinstance(exc, MemoryError):
        return "out of memory: lower PAPERFEED_MAX_FEATURES, or run on a machine with more memory"
    if isinstance(exc, zipfile.BadZipFile):
        return f"{text}: an artifact under the models directory is damaged: run `paperfeed check --repair`"
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    if not isinstance(exc, EXPECTED):
        return f"unexpected {type(exc).__name__}: {text} (run with PAPERFEED_DEBUG=1 for the traceback)"
    return text


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
