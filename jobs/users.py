"""``paperfeed useradd|tag|untag``: manage users and their libraries from the shell."""
from __future__ import annotations

import getpass
import sys

from recommender.learning import service
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


def run(args, settings) -> int:
    with UserStore(settings.users_path, settings.limits) as users:
        if args.command == "useradd":
            return _useradd(args, users)
        user = users.get_user(args.username)
        if user is None:
            raise UserError(f"no user {args.username!r}: create it with `paperfeed useradd`")
        if args.command == "tag":
            with PaperStore(settings.papers_path) as papers:
                changed = service.tag(users, papers, user, args.tag, args.ids)
        else:
            changed = service.untag(users, user, args.tag, args.ids)
        verb = "tagged" if args.command == "tag" else "untagged"
        emit(args, {"user": user.username, "tag": args.tag, verb: changed},
             f"{verb} {changed} paper(s) as {args.tag!r} for {user.username}")
    return 0


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
