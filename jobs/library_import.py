"""``paperfeed library import USER FILE``: tag the papers of a BibTeX, CSL JSON, Zotero RDF or id-list file.

Papers missing from the store are fetched from the arXiv API by id. Exit 0 when every entry that names an
arXiv paper was resolved (tagged, or arXiv has no such paper), 1 when some could not be fetched (arXiv
unreachable: run again later to complete it), 2 on an error (unreadable file, unknown user, a limit).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from recommender.accounts.users import UserError, UserStore
from recommender.corpus.store import PaperStore
from recommender.library import formats, importing

from .output import emit
from .progress import bar

HELP = "import papers into a user's library from BibTeX, CSL JSON, Zotero RDF or a list of arXiv ids"
SHOWN = 50  # lines per list in the text report; --json lists everything


def add_arguments(parser) -> None:
    parser.add_argument("username")
    parser.add_argument("file", help="a .bib, CSL .json, Zotero .rdf or .txt (one arXiv id or URL a line); - reads stdin")
    parser.add_argument("--tag", help=f"tag that gets every paper found (default: {importing.DEFAULT_TAG!r})")
    parser.add_argument("--format", choices=formats.FORMATS, type=formats.format_name,
                        help="the file's format (default: judged by content)")
    parser.add_argument("--no-collections", action="store_true",
                        help="do not turn collections or groups in the file into tags")
    parser.add_argument("--no-fetch", action="store_true", help="only tag papers already in the store")


def _read(path: str, limit: int) -> bytes:
    if path == "-":
        stream = getattr(sys.stdin, "buffer", None)  # a text-only stdin (tests, some wrappers) has no buffer
        return stream.read(limit + 1) if stream is not None else sys.stdin.read(limit + 1).encode("utf-8")
    with open(path, "rb") as handle:  # read one byte past the limit: a huge file is refused, not loaded
        return handle.read(limit + 1)


def run(args, settings, *, session=None, sleep=time.sleep) -> int:
    """``session`` and ``sleep`` exist for tests (a fake transport, a clock that never sleeps)."""
    data = _read(args.file, settings.import_max_bytes)
    parsed = formats.parse(data, filename=None if args.file == "-" else Path(args.file).name, fmt=args.format,
                           max_bytes=settings.import_max_bytes, max_entries=settings.import_max_entries)
    with UserStore(settings.users_path, settings.limits) as users, PaperStore(settings.papers_path) as papers, \
            bar("fetching", unit="paper") as progress:
        user = users.get_user(args.username)
        if user is None:
            raise UserError(f"no user {args.username!r}: create it with `paperfeed useradd`")

        def shown(done: int, total: int) -> None:
            progress.total = total
            progress.update(done - progress.n)

        fetch = None if args.no_fetch else importing.arxiv_fetch(papers, settings, session=session, sleep=sleep,
                                                                 progress=shown)
        report = importing.import_entries(papers, users, user, parsed, tag=args.tag,
                                          collections=not args.no_collections, fetch=fetch)
    emit(args, {"user": user.username, **report.to_dict()}, render(report, user.username))
    return 0 if report.complete else 1


def render(report: importing.ImportReport, username: str) -> str:
    """The text report: counts, then each list that needs the user's attention."""
    c = report.counts
    tags = ", ".join(f"{t!r} +{n}" for t, n in report.tagged.items()) or "nothing new"
    lines = [f"{report.entries} entries ({report.format}): {c['matched']} matched, {c['fetched']} fetched, "
             f"{c['not_found']} not found on arXiv, {c['not_fetched']} not fetched, {c['not_on_arxiv']} not on "
             f"arXiv, {c['malformed']} malformed", f"tagged for {username}: {tags}"]
    if report.fetched:
        lines.append("fetched papers join feeds and search after the next `paperfeed compute`")
    sections = [("not fetched", report.not_fetched, "reason"), ("not found on arXiv", report.not_found, None),
                ("not on arXiv (no arXiv id)", report.not_on_arxiv, None), ("malformed", report.malformed, "reason")]
    for title, items, why in sections:
        if not items:
            continue
        lines.append(f"{title} ({len(items)}):")
        for item in items[:SHOWN]:
            parts = [item.get("id"), repr(item["title"]) if item["title"] else None,
                     f"-- {item[why]}" if why and item.get(why) else None]
            lines.append(f"  {item['key']}: " + " ".join(p for p in parts if p))
        if len(items) > SHOWN:
            lines.append(f"  ... and {len(items) - SHOWN} more (--json lists every one)")
    if report.not_fetched:
        lines.append("run the same import again later to fetch the rest: what is tagged stays tagged")
    return "\n".join(lines)
