"""``paperfeed library export``: scaffolding, filled in by the export work of issue 10."""
from __future__ import annotations

HELP = "export a user's library, or one tag, as BibTeX, CSL JSON or CSV"


def add_arguments(parser) -> None:
    parser.add_argument("username")


def run(args, settings) -> int:
    raise NotImplementedError("paperfeed library export is not written yet")
