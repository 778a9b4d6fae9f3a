"""The ``paperfeed`` command: one sub-command per job module.

Each job module defines ``add_arguments(parser)`` and ``run(args, settings) -> int``.
Domain errors (``ValueError`` and ``OSError`` subclasses raised with a clear
message) become one line on stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from importlib.metadata import entry_points

from recommender.settings import load_settings

# command -> (module, one-line help)
COMMANDS = {
    "import": ("jobs.import_snapshot", "import papers from Kaggle-snapshot JSON lines (.jsonl, .gz, .xz, .bz2)"),
    "fetch": ("jobs.fetch", "fetch new papers from the arXiv API"),
    "compute": ("jobs.compute", "build TF-IDF features and the inverted index for search and similar papers (a new generation)"),
    "train": ("jobs.train", "train per-user, per-tag SVMs and save ranked recommendations"),
    "useradd": ("jobs.users", "create a user"),
    "tag": ("jobs.users", "tag papers into a user's library"),
    "untag": ("jobs.users", "remove papers from a user's tag"),
    "recommend": ("jobs.query", "ranked recommendations for a user"),
    "similar": ("jobs.query", "papers similar to a paper"),
    "search": ("jobs.query", "search papers by keywords or arXiv id"),
    "stats": ("jobs.query", "paper count, date range, users and artifact generation"),
    "evaluate": ("jobs.evaluate", "offline quality of the ranking methods on real data (author and citation protocols)"),
    "demo": ("jobs.demo", "import or fetch papers, compute, create a demo user, train, then serve: the one command to try Paperfeed"),
}


PLUGIN_GROUP = "paperfeed.commands"


def plugin_commands() -> dict:
    """Commands other packages register (``webapp`` adds ``serve``) without jobs importing them."""
    return {ep.name: ep for ep in entry_points(group=PLUGIN_GROUP)}


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", help="paper store and user database (env PAPERFEED_DATA_DIR, default ./data)")
    common.add_argument("--models-dir", help="artifacts directory (env PAPERFEED_MODELS_DIR, default ./models)")
    common.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paperfeed", description="Personalized arXiv paper recommender.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common()
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        module.add_arguments(p, name) if _takes_name(module) else module.add_arguments(p)
        p.set_defaults(_module=module)
    for name, ep in plugin_commands().items():
        module = ep.load()
        p = sub.add_parser(name, parents=[common], help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def _takes_name(module) -> bool:
    return getattr(module, "MULTI_COMMAND", False)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(data_dir=args.data_dir, models_dir=args.models_dir)
        return args._module.run(args, settings)
    except KeyboardInterrupt:
        print("paperfeed: interrupted; nothing half-written was kept", file=sys.stderr)
        return 130
    except (ValueError, OSError, LookupError) as exc:
        print(f"paperfeed {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
