"""``paperfeed account USER``: show or change a user's delivery settings (digest, Atom feeds) from the shell.

With no option it prints the settings. An operator's ``--email`` is trusted: the address counts as
confirmed at once (addresses typed on the web are confirmed by mail first).
"""
from __future__ import annotations

import argparse
import datetime as dt

from recommender.accounts import subscriptions
from recommender.accounts.users import UserError, UserStore

from .output import emit


def _size(text: str) -> int:
    try:
        return subscriptions.validate_size(text)
    except subscriptions.SubscriptionError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser) -> None:
    parser.add_argument("username")
    parser.add_argument("--email", metavar="ADDR", help="the digest's address (confirmed at once); '' removes it")
    parser.add_argument("--digest", choices=subscriptions.FREQUENCIES, help="how often the digest is sent")
    parser.add_argument("--digest-size", type=_size, metavar="N",
                        help=f"papers per digest (1-{subscriptions.MAX_SIZE}, default {subscriptions.DEFAULT_SIZE})")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--digest-tag", action="append", metavar="TAG", dest="digest_tags",
                       help="rank the digest for this tag (repeat for several); default the whole library")
    scope.add_argument("--whole-library", action="store_true", help="rank the digest for the whole library")
    parser.add_argument("--popular", action=argparse.BooleanOptionalAction, default=None,
                        help="add the papers popular with other readers to the digest")
    parser.add_argument("--nothing-new", action=argparse.BooleanOptionalAction, default=None,
                        help="send a short notice when nothing new matched")
    parser.add_argument("--feed-token", action="store_true",
                        help="make a new private Atom feed and print its address (shown once)")
    parser.add_argument("--feed-tag", metavar="TAG", help="with --feed-token: the feed of this tag only")


def run(args, settings) -> int:
    with UserStore(settings.users_path, settings.limits) as users:
        user = users.get_user(args.username)
        if user is None:
            raise UserError(f"no user {args.username!r}: create it with `paperfeed useradd`")
        changes = {}
        if args.email is not None:
            changes.update(email=args.email, confirmed=True)
        if args.digest is not None:
            changes["frequency"] = args.digest
        if args.digest_size is not None:
            changes["size"] = args.digest_size
        if args.digest_tags:
            changes["tags"] = args.digest_tags
        elif args.whole_library:
            changes["tags"] = None
        if args.popular is not None:
            changes["popular"] = args.popular
        if args.nothing_new is not None:
            changes["nothing_new"] = args.nothing_new
        if args.feed_tag and not args.feed_token:
            raise UserError("--feed-tag needs --feed-token")
        if changes.get("frequency", "off") != "off" and not (changes.get("email")
                                                              or subscriptions.get(users, user.id).email):
            raise UserError("a digest needs an address: add --email ADDR")
        prefs = subscriptions.update(users, user.id, **changes) if changes else subscriptions.get(users, user.id)
        data = {"user": user.username, "digest": prefs.public()}
        if args.feed_token:
            _, secret = users.create_feed_token(user.id, "command line", args.feed_tag)
            path = f"/feeds/{secret}.atom"
            data["feed"] = {"path": path, "url": settings.public_url + path if settings.public_url else None,
                            "tag": args.feed_tag}
        data["feeds"] = [{"id": f["id"], "name": f["name"], "tag": f["tag"]} for f in users.feed_tokens(user.id)]
    emit(args, data, _text(data, settings))
    return 0


def _when(value) -> str:
    return dt.datetime.fromtimestamp(value, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if value else "never"


def _text(data: dict, settings) -> str:
    d = data["digest"]
    address = d["email"] or "(no address)"
    if d["email"] and not d["email_confirmed"]:
        address += " (not confirmed yet)"
    lines = [f"user {data['user']}",
             f"  digest: {d['frequency']}, {d['size']} papers, "
             f"{'tags ' + ', '.join(d['tags']) if d['tags'] else 'whole library'}"
             f"{', with popular papers' if d['popular'] else ''}{', nothing-new notices' if d['nothing_new'] else ''}",
             f"  email: {address}",
             f"  last sent: {_when(d['last_sent'])}"]
    if d["last_error"]:
        lines.append(f"  last error ({d['failures']} failed attempt(s) in a row): {d['last_error']}")
    if "feed" in data:
        f = data["feed"]
        lines.append(f"new Atom feed (copy it now, it is shown once): {f['url'] or f['path']}")
        if not f["url"]:
            lines.append("  (prefix the path with the site's address; set PAPERFEED_PUBLIC_URL to get the full URL)")
    lines.append(f"  Atom feeds: {len(data['feeds'])}"
                 + "".join(f"\n    #{f['id']} {f['name']} ({'tag ' + f['tag'] if f['tag'] else 'whole library'})"
                           for f in data["feeds"]))
    return "\n".join(lines)
