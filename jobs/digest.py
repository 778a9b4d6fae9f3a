"""``paperfeed digest``: email each subscriber the new papers ranked for them (run by cron after ``train``).

Exit codes: 0 when every due digest went out (or nothing was due, or ``--dry-run``); 1 when some
user's digest failed or is pending (a refused address, the SMTP server down): it is retried on the
next run and listed in the summary; 2 on an error before any sending (email not set up, no such user).
"""
from __future__ import annotations

from recommender.accounts.users import UserError, UserStore
from recommender.corpus.store import PaperStore
from recommender.delivery import digest, mailer
from recommender.features.index import NoGeneration
from recommender.storage.check import load_index

from .output import emit
from .progress import bar


def add_arguments(parser) -> None:
    parser.add_argument("--dry-run", action="store_true",
                        help="show what each user would get (with --user, the whole plain-text message); send "
                             "nothing, record nothing, need no SMTP server")
    parser.add_argument("--user", action="append", metavar="USER",
                        help="only this user (repeat for several); default: every user whose digest is on")
    parser.add_argument("--force", action="store_true",
                        help="send even if the user's last digest was less than a day (or week) ago")


def run(args, settings) -> int:
    if not args.dry_run:
        if not settings.public_url:
            raise mailer.NotConfigured("set PAPERFEED_PUBLIC_URL, the site's address as users reach it "
                                       "(every link in a digest starts with it), or use --dry-run")
        config = mailer.SMTPConfig.from_settings(settings)
    if not settings.users_path.exists():
        raise UserError(f"no user database at {settings.users_path}: create a user with `paperfeed useradd`")
    try:
        index = load_index(settings.models_dir)
    except NoGeneration:
        index = None  # no features yet: confirmations still go out; digests wait for `compute`
    with UserStore(settings.users_path, settings.limits) as users, PaperStore(settings.papers_path) as papers:
        only = None
        if args.user:
            only = []
            for name in args.user:
                user = users.get_user(name)
                if user is None:
                    raise UserError(f"no user {name!r}")
                only.append((user.id, user.username))
        ctx = digest.Context(settings, users, papers, index)
        with bar("digest", unit="user") as progress:
            def advance(done, total):
                progress.total = total
                progress.update(done - progress.n)

            if args.dry_run:
                summary = digest.run(ctx, None, only=only, dry_run=True, force=args.force, progress=advance)
                if not args.user:  # the whole messages only when asked about given users
                    for outcome in summary.outcomes:
                        outcome.text = None
            else:
                with mailer.Mailer(config) as outbox:
                    summary = digest.run(ctx, outbox, only=only, force=args.force, progress=advance)
    emit(args, summary.to_dict(), summary.text())
    return summary.exit_code
