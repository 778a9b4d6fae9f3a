"""The email digest: per user, the top-ranked papers that are new since their last digest, mailed once.

What a digest holds, for one user whose digest is on, confirmed and due (:data:`subscriptions.PERIOD_S`):
the ``size`` best papers by the user's model (the whole library, or the chosen tags) among those that
entered the index after the user's window start (``since``: when the digest was turned on, then moved
to the newest arrival each sent digest covered), leaving out papers the user tagged, marked "not
interested", or was ever shown (digest, feed, Atom) or opened. Optionally a few papers popular with
other readers. No new papers means no email, unless the user asked for "nothing new" notices.

Reliability (the order of writes is the point):

1. The message's papers and Message-ID are written as a *pending* send (:func:`subscriptions.add_pending`).
2. The message goes to the SMTP server.
3. One transaction records the send, marks its papers seen (``via="digest"``) and moves the window.

A run killed between 1 and 3 leaves the pending send; the next run sends that same message again
(same papers, same Message-ID, which mail systems use to drop a duplicate) instead of a new one. A
refused recipient or an SMTP error is one user's failure: recorded, reported, retried next run; the
others go on. An unreachable server stops the run and leaves every remaining digest pending.

Unconfirmed addresses (typed on the web) get one confirmation message a day instead, never a digest.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from urllib.parse import quote, urlsplit

import jinja2

from recommender.accounts import popular as popular_feed
from recommender.accounts import subscriptions
from recommender.accounts.subscriptions import DigestSettings, PERIOD_S, Send
from recommender.accounts.users import UserStore
from recommender.corpus import links as paper_links
from recommender.corpus.papers import Paper
from recommender.corpus.store import PaperStore
from recommender.features.index import FeatureIndex
from recommender.learning import ranking, service
from recommender.learning.models import ALL, UserModel

from . import mailer
from .links import Link, Signer, email_hash, link_key

log = logging.getLogger(__name__)

POPULAR_SIZE = 5
NOTHING_NEW = "nothing new since the last digest"
CONFIRM_EVERY_S = 86400   # an unconfirmed address gets at most one confirmation message a day
ABSTRACT_CHARS = 360
AUTHORS_SHOWN = 6
DRY_RUN_URL = "https://paperfeed.invalid"  # links in a --dry-run without PAPERFEED_PUBLIC_URL
ARXIV_ABS = "https://arxiv.org/abs/"
ARXIV_PDF = "https://arxiv.org/pdf/"

clock: Callable[[], float] = time.time  # the digest's "now"; tests move it a day on

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("recommender.delivery", "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


@dataclasses.dataclass(frozen=True)
class Item:
    """One paper as a digest shows it."""

    paper: Paper
    authors: str
    abstract: str
    reasons: list[str]
    code_url: str | None
    page_url: str
    arxiv_url: str
    pdf_url: str
    tag_url: str | None = None
    not_interested_url: str | None = None
    tag: str | None = None
    readers: int | None = None  # the popular section: how many readers tagged it


@dataclasses.dataclass
class Outcome:
    user: str
    status: str          # sent, resent, nothing-new, confirm, would-send, skipped, failed, pending
    detail: str = ""
    papers: list[str] = dataclasses.field(default_factory=list)
    popular: list[str] = dataclasses.field(default_factory=list)
    message_id: str | None = None
    subject: str | None = None
    text: str | None = None   # the plain-text body (dry runs)


@dataclasses.dataclass
class Summary:
    outcomes: list[Outcome]
    dry_run: bool
    stopped: str | None = None  # why sending stopped early (the server became unreachable)

    def count(self, *statuses: str) -> int:
        return sum(o.status in statuses for o in self.outcomes)

    @property
    def exit_code(self) -> int:
        """0: every due digest went out (or a dry run); 1: some failed or are pending (retried next run)."""
        return 1 if self.count("failed", "pending") else 0

    def to_dict(self) -> dict:
        return {"dry_run": self.dry_run, "stopped": self.stopped,
                "sent": self.count("sent", "resent", "nothing-new"), "confirmations": self.count("confirm"),
                "failed": self.count("failed"), "pending": self.count("pending"),
                "skipped": self.count("skipped"),
                "users": [{k: v for k, v in dataclasses.asdict(o).items() if v not in (None, [], "")}
                          for o in self.outcomes]}

    def text(self) -> str:
        verb = "would send" if self.dry_run else "sent"
        lines = [f"digest: {verb} {self.count('sent', 'resent', 'nothing-new', 'would-send')}, "
                 f"{self.count('confirm')} confirmation request(s), {self.count('skipped')} skipped, "
                 f"{self.count('failed')} failed, {self.count('pending')} pending"]
        for o in self.outcomes:
            if o.status == "skipped" and not self.dry_run:
                continue
            extra = f" ({len(o.papers)} papers{f' + {len(o.popular)} popular' if o.popular else ''})" \
                if o.papers or o.popular else ""
            lines.append(f"  {o.user}: {o.status}{extra}{': ' + o.detail if o.detail else ''}")
            if o.text:
                lines += ["", *("    " + line for line in o.text.splitlines()), ""]
        if self.stopped:
            lines.append(f"stopped early: {self.stopped}; the rest stay pending for the next run")
        return "\n".join(lines)


class Context:
    """What a run reads: settings, stores, the feature index, the signer, the site's address, the time."""

    def __init__(self, settings, users: UserStore, papers: PaperStore, index: FeatureIndex | None,
                 now: float | None = None, base_url: str | None = None):
        self.settings, self.users, self.papers, self.index = settings, users, papers, index
        self.now = clock() if now is None else now
        self.base_url = (base_url or settings.public_url or DRY_RUN_URL).rstrip("/")
        self.signer = Signer(link_key(settings.data_dir))
        self.host = urlsplit(self.base_url).hostname or "paperfeed.invalid"

    def url(self, path: str) -> str:
        return self.base_url + path

    def link(self, link: Link) -> str:
        return self.url("/email/" + self.signer.dumps(link))


# choosing the papers ---------------------------------------------------------------------------------
def _digest_tags(prefs: DigestSettings, tags: dict[str, list[str]]) -> list[str] | None:
    if prefs.tags is None:
        return None
    kept = [t for t in prefs.tags if t in tags]
    return kept or None  # every chosen tag is gone: the whole library


def choose(ctx: Context, user_id: int, prefs: DigestSettings) -> tuple[list[str], list[tuple[str, int]], str]:
    """``(ranked ids, [(popular id, readers)], why empty)`` for one user's next digest."""
    index, users = ctx.index, ctx.users
    if index is None or not len(index):
        return [], [], "no features yet: run `paperfeed compute`"
    tags = users.tags(user_id)
    library = {p for ids in tags.values() for p in ids}
    hidden = set(users.not_interested(user_id))
    seen = users.seen_ids(user_id)
    model = service.current_model(ctx.settings, index, user_id)
    chosen, why = [], ""
    if not library:
        why = "no tagged papers yet"
    elif model is None:
        why = "no model yet: run `paperfeed train`"
    else:
        filters = ranking.Filters(arrived_after=prefs.since, exclude=frozenset(library | seen))
        wanted = _digest_tags(prefs, tags)
        try:
            chosen, _ = service.recommend(index, model, library, wanted, filters, prefs.size, not_interested=hidden)
        except KeyError:  # a chosen tag not trained yet: the whole library until it is
            chosen, _ = service.recommend(index, model, library, None, filters, prefs.size, not_interested=hidden)
        except service.NoModel:
            why = "no model for the current features yet: run `paperfeed train`"
        why = why or ("" if chosen else NOTHING_NEW)
    picked_popular: list[tuple[str, int]] = []
    if prefs.popular:
        window = "day" if prefs.frequency == "daily" else "week"
        skip = library | hidden | seen | set(chosen)
        found = popular_feed.popular(users, ctx.papers, window, min_users=ctx.settings.popular_min_users,
                                     n=POPULAR_SIZE + min(len(skip), 200), now=ctx.now)
        picked_popular = [(pid, n) for pid, n in zip(found.ids, found.readers) if pid not in skip][:POPULAR_SIZE]
    return list(chosen), picked_popular, why


def _suggested_tag(model: UserModel | None, index: FeatureIndex, pid: str, wanted: list[str] | None) -> str | None:
    """The tag whose model scores ``pid`` highest (among the digest's tags, if it has some)."""
    if model is None or pid not in index.row_of:
        return wanted[0] if wanted else None
    names = [t for t in (wanted or model.tags) if t != ALL and t in model.tags]
    if not names:
        return None
    x = index.X[index.row_of[pid]]
    scores = [(float((x @ model.weights([t])[0])[0]), t) for t in names]
    return max(scores)[1]


def _reasons(index: FeatureIndex, model: UserModel | None, pid: str, wanted, library) -> list[str]:
    if model is None or pid not in index.row_of:
        return []
    w, _ = model.weights(wanted)
    found = ranking.explain(index, pid, w, n=3, library=library)
    out = [r.label for r in found.get("text", [])[:3]]
    for r in found.get("authors", [])[:1]:
        out.append(f"{r.label} ({r.in_library} of your papers)" if r.in_library else r.label)
    return out


def _short(text: str, limit: int) -> str:
    text = " ".join((text or "").split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;:.") + " …"


def _authors(names: tuple[str, ...]) -> str:
    if not names:
        return "(no authors listed)"
    shown = ", ".join(names[:AUTHORS_SHOWN])
    return shown + (f" and {len(names) - AUTHORS_SHOWN} more" if len(names) > AUTHORS_SHOWN else "")


def items(ctx: Context, user_id: int, prefs: DigestSettings, ids: list[str],
          popular: list[tuple[str, int]] = ()) -> tuple[list[Item], list[Item]]:
    """The digest's papers and popular section as shown, with their signed links."""
    index = ctx.index
    tags = ctx.users.tags(user_id)
    library = [p for ids_ in tags.values() for p in ids_]
    wanted = _digest_tags(prefs, tags)
    model = service.current_model(ctx.settings, index, user_id) if index is not None else None
    if model is not None and wanted and not all(t in model.tags for t in wanted):
        wanted = None
    found = ctx.papers.get_many([*ids, *(p for p, _ in popular)])

    def item(pid: str, readers: int | None) -> Item:
        p = found[pid]
        suggested = _suggested_tag(model, index, pid, wanted) if index is not None else None
        return Item(
            paper=p, authors=_authors(p.authors), abstract=_short(p.abstract, ABSTRACT_CHARS),
            reasons=[] if readers or index is None else _reasons(index, model, pid, wanted, library),
            code_url=paper_links.code_url(paper_links.find_links(p.abstract, p.comments)),
            page_url=ctx.url("/papers/" + quote(pid, safe="/")), arxiv_url=ARXIV_ABS + pid, pdf_url=ARXIV_PDF + pid,
            tag_url=ctx.link(Link("tag", user_id, prefs.link_epoch, paper=pid, tag=suggested)),
            not_interested_url=ctx.link(Link("not-interested", user_id, prefs.link_epoch, paper=pid)),
            tag=suggested, readers=readers)

    return ([item(pid, None) for pid in ids if pid in found],
            [item(pid, n) for pid, n in popular if pid in found])


# the message ---------------------------------------------------------------------------------------------
def _subject(n: int, prefs: DigestSettings, day: str, kind: str) -> str:
    if kind == "nothing-new":
        return f"Paperfeed: nothing new for you ({day})"
    scope = f" in {', '.join(prefs.tags[:2])}{' …' if len(prefs.tags) > 2 else ''}" if prefs.tags else ""
    return f"Paperfeed: {n} new paper{'s' if n != 1 else ''} for you{scope} ({day})"


def _headers(ctx: Context, msg: EmailMessage, to: str, subject: str, message_id: str, sender: str) -> None:
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = to
    msg["Date"] = format_datetime(dt.datetime.fromtimestamp(ctx.now, dt.timezone.utc))
    msg["Message-ID"] = message_id
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: vacation responders stay quiet


def build_digest(ctx: Context, username: str, prefs: DigestSettings, send: Send, sender: str) -> EmailMessage:
    """The multipart (plain text and HTML) message of ``send``, with List-Unsubscribe (RFC 2369, 8058)."""
    papers, popular_items = items(ctx, prefs.user_id, prefs, send.papers,
                                  _popular_readers(ctx, send.popular))
    day = dt.datetime.fromtimestamp(ctx.now, dt.timezone.utc).date().isoformat()
    unsubscribe = ctx.link(Link("unsubscribe", prefs.user_id, prefs.link_epoch))
    values = dict(username=username, papers=papers, popular=popular_items, prefs=prefs, day=day,
                  kind=send.kind, unsubscribe_url=unsubscribe, settings_url=ctx.url("/account#digest"),
                  feed_url=ctx.url("/"), period="day" if prefs.frequency == "daily" else "week")
    msg = EmailMessage()
    _headers(ctx, msg, prefs.email, _subject(len(papers), prefs, day, send.kind), send.message_id, sender)
    msg["List-Unsubscribe"] = f"<{unsubscribe}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["List-Id"] = f"Paperfeed digest <digest.{ctx.host}>"
    msg.set_content(_templates.get_template("digest.txt").render(values))
    msg.add_alternative(_templates.get_template("digest.html").render(values), subtype="html")
    return msg


def _popular_readers(ctx: Context, ids: list[str]) -> list[tuple[str, int]]:
    if not ids:
        return []
    counts = {r[0]: r[1] for r in ctx.users.conn.execute(
        f"SELECT paper_id, COUNT(DISTINCT user_id) FROM tags WHERE paper_id IN ({','.join('?' * len(ids))}) "
        "GROUP BY paper_id", ids)}
    return [(pid, counts.get(pid, 0)) for pid in ids]


def build_confirmation(ctx: Context, username: str, prefs: DigestSettings, message_id: str,
                       sender: str) -> EmailMessage:
    confirm = ctx.link(Link("confirm", prefs.user_id, prefs.link_epoch, email_hash=email_hash(prefs.email)))
    values = dict(username=username, confirm_url=confirm, settings_url=ctx.url("/account#digest"),
                  frequency=prefs.frequency)
    msg = EmailMessage()
    _headers(ctx, msg, prefs.email, "Paperfeed: confirm your address for the digest", message_id, sender)
    msg.set_content(_templates.get_template("confirm.txt").render(values))
    msg.add_alternative(_templates.get_template("confirm.html").render(values), subtype="html")
    return msg


# the run ----------------------------------------------------------------------------------------------------
def _new_message_id(ctx: Context) -> str:
    return make_msgid(idstring="digest", domain=ctx.host)


def _confirmation(ctx: Context, username: str, prefs: DigestSettings, outbox, dry_run: bool) -> Outcome:
    last = subscriptions.last_sent(ctx.users, prefs.user_id, "confirm")
    if last is not None and ctx.now - last < CONFIRM_EVERY_S:
        return Outcome(username, "skipped", "waiting for the address to be confirmed")
    if dry_run:
        return Outcome(username, "confirm", f"would ask {prefs.email} to confirm")
    send = subscriptions.add_pending(ctx.users, prefs.user_id, "confirm", _new_message_id(ctx), [], [], None, ctx.now)
    outbox.send(build_confirmation(ctx, username, prefs, send.message_id, outbox.config.sender))
    subscriptions.record_sent(ctx.users, send, ctx.now)
    return Outcome(username, "confirm", f"asked {prefs.email} to confirm", message_id=send.message_id)


def send_confirmation(ctx: Context, user_id: int, username: str, outbox: mailer.Mailer) -> Outcome:
    """Ask the user's (unconfirmed) address to confirm now, at most once a day (the web's "save")."""
    prefs = subscriptions.get(ctx.users, user_id)
    if not prefs.email or prefs.email_confirmed:
        return Outcome(username, "skipped", "nothing to confirm")
    return _confirmation(ctx, username, prefs, outbox, dry_run=False)


def digest_user(ctx: Context, user_id: int, username: str, outbox: mailer.Mailer | None,
                dry_run: bool = False, force: bool = False) -> Outcome:
    """Send (or, dry, describe) one user's digest if it is due. ``force`` ignores "not due yet"."""
    prefs = subscriptions.get(ctx.users, user_id)
    if prefs.frequency == "off" or not prefs.email:
        return Outcome(username, "skipped", "digest is off")
    if not prefs.email_confirmed:
        return _confirmation(ctx, username, prefs, outbox, dry_run)
    period = PERIOD_S[prefs.frequency]
    send = None if dry_run else subscriptions.pending(ctx.users, user_id)
    if send is not None and (send.kind == "confirm" or ctx.now - send.created_at > period):
        subscriptions.drop_pending(ctx.users, send)  # stale: build a fresh one
        send = None
    if send is None:
        if not force and prefs.last_sent is not None and ctx.now - prefs.last_sent < period:
            next_at = dt.datetime.fromtimestamp(prefs.last_sent + period, dt.timezone.utc)
            return Outcome(username, "skipped", f"not due until {next_at:%Y-%m-%d %H:%M} UTC")
        ids, popular, why = choose(ctx, user_id, prefs)
        kind = "digest" if ids or popular else "nothing-new"
        if kind == "nothing-new" and (not prefs.nothing_new or why != NOTHING_NEW):
            return Outcome(username, "skipped", why)
        watermark = float(ctx.index.first_seen.max()) if ctx.index is not None and \
            ctx.index.first_seen is not None and len(ctx.index) else None
        if dry_run:
            fake = Send(0, user_id, kind, "<dry-run@paperfeed.invalid>", ctx.now, None, ids,
                        [p for p, _ in popular], watermark)
            msg = build_digest(ctx, username, prefs, fake, "dry-run@paperfeed.invalid")
            return Outcome(username, "would-send", "", ids, fake.popular, None, msg["Subject"],
                           msg.get_body(("plain",)).get_content())
        send = subscriptions.add_pending(ctx.users, user_id, kind, _new_message_id(ctx), ids,
                                         [p for p, _ in popular], watermark, ctx.now)
        status = "sent" if kind == "digest" else "nothing-new"
    else:
        status = "resent"
    msg = build_digest(ctx, username, prefs, send, outbox.config.sender)
    outbox.send(msg)
    subscriptions.record_sent(ctx.users, send, ctx.now)
    detail = "the message of an interrupted or failed run, again with its Message-ID" if status == "resent" else ""
    return Outcome(username, status, detail, send.papers, send.popular, send.message_id, msg["Subject"])


def run(ctx: Context, outbox: mailer.Mailer | None, *, only: list[tuple[int, str]] | None = None,
        dry_run: bool = False, force: bool = False, progress: Callable[[int, int], None] | None = None) -> Summary:
    """Every subscriber's digest (or ``only`` those users): sent, described (``dry_run``) or skipped.

    One user's failure is recorded and the run goes on; an unreachable server stops it and the
    remaining users are reported pending.
    """
    todo = only if only is not None else subscriptions.subscribers(ctx.users)
    summary = Summary([], dry_run)
    for done, (user_id, username) in enumerate(todo, 1):
        if summary.stopped:
            summary.outcomes.append(Outcome(username, "pending", "not tried: the SMTP server is unavailable"))
            continue
        try:
            summary.outcomes.append(digest_user(ctx, user_id, username, outbox, dry_run, force))
        except mailer.Unavailable as exc:
            subscriptions.record_failure(ctx.users, user_id, str(exc), ctx.now)
            summary.outcomes.append(Outcome(username, "pending", str(exc)))
            summary.stopped = str(exc)
        except mailer.Refused as exc:
            subscriptions.record_failure(ctx.users, user_id, str(exc), ctx.now)
            summary.outcomes.append(Outcome(username, "failed", f"{exc}; retried next run"))
        except Exception as exc:  # noqa: BLE001 -- one user's bug or bad data must not stop the others
            log.exception("digest for user %s failed", username)
            if not dry_run:
                subscriptions.record_failure(ctx.users, user_id, f"internal error: {type(exc).__name__}", ctx.now)
            summary.outcomes.append(Outcome(username, "failed", f"{type(exc).__name__}: {exc}; retried next run"))
        if progress:
            progress(done, len(todo))
    return summary
