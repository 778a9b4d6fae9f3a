"""``paperfeed library import``: scaffolding, filled in by the import work of issue 10."""
from __future__ import annotations

HELP = "import papers into a user's library from BibTeX, CSL JSON, Zotero RDF or a list of arXiv ids"


def add_arguments(parser) -> None:
    parser.add_argument("username")


def run(args, settings) -> int:
    raise NotImplementedError("paperfeed library import is not written yet")
