"""``paperfeed useradd|tag|untag``: manage users and their libraries from the shell."""
from __future__ import annotations

import getpass
import sys
import time

from recommender.corpus.ids import InvalidArxivId, parse_arxiv_id
from recommender.learning import service
from recommender.library import importing
from recommender.library.formats import Entry, Parsed
from recommender.accounts.passwords import hash_password
from recommender.corpus.store import PaperStore
from recommender.accounts.users import UserError, UserStore

from .output import emit

MULTI_COMMAND = True


def add_arguments(parser, name: str) -> None:
    parser.add_argument("username")
    if name == "useradd":
        parser.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    else:
        parser.add_argument("tag")
        parser.add_argument("ids", nargs="+", metavar="ID", help="arXiv ids (a version suffix is ignored)")
        if name == "tag":
            parser.add_argument("--no-fetch", action="store_true",
                                help="do not fetch papers missing from the store from the arXiv API")


def run(args, settings, *, session=None, sleep=time.sleep) -> int:
    """``session`` and ``sleep`` are for tests of ``tag``'s fetch (a fake transport, no sleeping)."""
    with UserStore(settings.users_path, settings.limits) as users:
        if args.command == "useradd":
            return _useradd(args, users)
        user = users.get_user(args.username)
        if user is None:
            raise UserError(f"no user {args.username!r}: create it with `paperfeed useradd`")
        if args.command == "tag":
            return _tag(args, settings, users, user, session, sleep)
        changed = service.untag(users, user, args.tag, args.ids)
        emit(args, {"user": user.username, "tag": args.tag, "untagged": changed},
             f"untagged {changed} paper(s) as {args.tag!r} for {user.username}")
    return 0


def _tag(args, settings, users: UserStore, user, session, sleep) -> int:
    """Tag every valid id that resolves, fetching the missing ones; list the rest. Exit 1 if any was not tagged."""
    entries = []
    for raw in args.ids:
        try:
            pid, version = parse_arxiv_id(raw)
            entries.append(Entry(raw, "", pid, version))
        except InvalidArxivId as exc:
            entries.append(Entry(raw, "", error=str(exc)))
    with PaperStore(settings.papers_path) as papers:
        fetch = None if args.no_fetch else importing.arxiv_fetch(papers, settings, session=session, sleep=sleep)
        report = importing.import_entries(papers, users, user, Parsed("ids", entries), tag=args.tag,
                                          collections=False, fetch=fetch)
    changed = sum(report.tagged.values())
    failed = report.not_found + report.not_fetched + report.malformed
    lines = [f"tagged {changed} paper(s) as {report.tag!r} for {user.username}"
             + (f" ({len(report.fetched)} fetched from arXiv)" if report.fetched else "")]
    lines += [f"not tagged: {item['key']}: {item.get('reason', 'not found')}" for item in failed]
    emit(args, {"user": user.username, "tag": report.tag, "tagged": changed,
                "fetched": [i["id"] for i in report.fetched],
                "not_tagged": [{"id": i["key"], "reason": i.get("reason", "")} for i in failed]}, "\n".join(lines))
    return 1 if failed else 0


def _read_password(args) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        raise UserError("passwords do not match")
    return first


def _useradd(args, users: UserStore) -> int:
    user = users.add_user(args.username, hash_password(_read_password(args), args.username))
    emit(args, {"id": user.id, "username": user.username}, f"created user {user.username}")
    return 0
