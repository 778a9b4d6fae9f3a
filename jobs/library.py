"""``paperfeed library import|export``: a user's library in and out (the formats are in ``recommender.library``).

Each action is a module with ``HELP``, ``add_arguments(parser)`` and ``run(args, settings) -> int``, like the
top-level commands.
"""
from __future__ import annotations

import argparse

from . import library_export, library_import
from .cli import common_options

ACTIONS = {"import": library_import, "export": library_export}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, module in ACTIONS.items():
        action = sub.add_parser(name, parents=[common_options(nested=True)], help=module.HELP,
                                description=module.HELP)
        module.add_arguments(action)
        action.set_defaults(_action=module)


def run(args, settings) -> int:
    return args._action.run(args, settings)
