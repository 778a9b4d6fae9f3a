"""``paperfeed library export USER [--tag T] --format bibtex|csljson|csv [-o FILE]``.

Writes to stdout, or atomically to ``FILE`` (a temp file renamed into place, so a reader never sees half a file).
An unknown user or tag is one line on stderr and exit 2 (``jobs.cli``).
"""
from __future__ import annotations

import sys

from recommender.accounts.users import UserError, UserStore
from recommender.corpus.store import PaperStore
from recommender.library import export
from recommender.storage.artifacts import atomic_file

from .output import warn

HELP = "export a user's library, or one tag, as BibTeX, CSL JSON or CSV"


def add_arguments(parser) -> None:
    parser.add_argument("username")
    parser.add_argument("--tag", help="export only this tag (default: every paper of every tag, once)")
    parser.add_argument("--format", required=True, choices=export.FORMATS, type=export.format_name,
                        help="bibtex (@misc entries with eprint), csljson (Zotero imports it) or csv")
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE (atomically) instead of stdout")


class _NoPapers:
    """Stands in for a paper store that does not exist yet: every tagged paper is exported as missing."""

    @staticmethod
    def get_many(ids):
        return {}


def run(args, settings) -> int:
    if not settings.users_path.exists():
        raise UserError(f"no user {args.username!r}: there is no user database yet ({settings.users_path})")
    with UserStore(settings.users_path, settings.limits, readonly=True) as users:
        user = users.get_user(args.username)
        if user is None:
            raise UserError(f"no user {args.username!r}: create it with `paperfeed useradd`")
        if settings.papers_path.exists():
            with PaperStore(settings.papers_path, readonly=True) as papers:
                text, missing = _export(users, papers, user.id, args)
        else:
            text, missing = _export(users, _NoPapers(), user.id, args)
    if args.output:
        with atomic_file(args.output) as handle:
            handle.write(text.encode("utf-8"))
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    if missing:
        warn(f"paperfeed library export: {missing} paper(s) are not in the paper store; exported with id and "
             "URL only (fetch them with `paperfeed fetch --id ID...`)")
    return 0


def _export(users, papers, user_id: int, args) -> tuple[str, int]:
    try:
        result = export.export_user(users, papers, user_id, args.format, args.tag)
    except export.UnknownTag:
        raise UserError(f"{args.username} has no tag {args.tag!r}") from None
    return result.text, result.missing
