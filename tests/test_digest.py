"""The email digest (issue 11, part 1) against a real SMTP server on loopback (aiosmtpd), on the 10k sample.

Two readers with different libraries (astrophysics, computer vision) subscribe; the digest job ranks the
papers new to them and mails them. The tests read the messages back: headers, both parts, the signed
links, escaping, and the failure cases: a refused recipient, the server going down mid-run, a run killed
after the server took the message, reruns.
"""
from __future__ import annotations

import dataclasses
import re
from urllib.parse import urlsplit

import pytest

from recommender.accounts import seen, subscriptions
from recommender.accounts.users import UserStore
from recommender.corpus.store import PaperStore
from recommender.delivery import digest, mailer
from recommender.delivery.links import BadLink, Signer, link_key
from recommender.features.index import FeatureIndex
from recommender.learning import service
from tests.smtpserver import SMTPServer, parts

pytestmark = pytest.mark.slow

ALICE, BOB = "alice@example.org", "bob@example.org"


@pytest.fixture
def smtp():
    server = SMTPServer().start()
    yield server
    server.stop()


@dataclasses.dataclass
class World:
    settings: object
    users: UserStore
    papers: PaperStore
    index: FeatureIndex
    ids: dict  # username -> user id
    smtp: SMTPServer

    def context(self, **kw) -> digest.Context:
        return digest.Context(self.settings, self.users, self.papers, self.index, **kw)

    def run(self, **kw) -> digest.Summary:
        with mailer.Mailer(mailer.SMTPConfig.from_settings(self.settings)) as outbox:
            return digest.run(self.context(), outbox, **kw)


@pytest.fixture
def world(web_settings, smtp):
    settings = dataclasses.replace(web_settings, **smtp.overrides())
    index = FeatureIndex.load(settings.models_dir)
    users = UserStore(settings.users_path, settings.limits)
    papers = PaperStore(settings.papers_path)
    libraries = {"alice": ("galaxies", [index.ids[r] for r in index.category_rows["astro-ph.GA"][:12]]),
                 "bob": ("vision", [index.ids[r] for r in index.category_rows["cs.CV"][:12]])}
    ids = {}
    for name, (tag, pids) in libraries.items():
        uid = users.add_user(name, "x").id
        users.add_tags(uid, tag, pids)
        ids[name] = uid
        # Subscribed before the sample arrived, so all of it is new to them.
        subscriptions.update(users, uid, email=f"{name}@example.org", confirmed=True, frequency="daily", now=0)
    service.train_current(settings, users)
    yield World(settings, users, papers, index, ids, smtp)
    users.close()
    papers.close()


def _ids_in(text: str) -> list[str]:
    return re.findall(r"/papers/([0-9]{4}\.[0-9]{4,5})", text)


def test_each_reader_gets_their_own_multipart_digest_with_working_signed_links(world):
    summary = world.run()
    assert summary.exit_code == 0 and summary.count("sent") == 2, summary.text()
    by_user = {o.user: o for o in summary.outcomes}
    assert len(world.smtp.handler.messages) == 2
    for name, address, tag in (("alice", ALICE, "galaxies"), ("bob", BOB, "vision")):
        (msg,) = world.smtp.to(address)
        outcome = by_user[name]
        assert len(outcome.papers) == 10 and msg["Message-ID"] == outcome.message_id
        assert msg["From"] == "Paperfeed <digest@paperfeed.test>" and msg["Date"]
        assert msg["Subject"].startswith("Paperfeed: 10 new papers for you")
        assert msg.get_content_type() == "multipart/alternative"
        text, html = parts(msg)
        # The papers, in rank order, in both parts; none from the reader's own library.
        assert list(dict.fromkeys(_ids_in(text))) == outcome.papers == list(dict.fromkeys(_ids_in(html)))
        assert not set(outcome.papers) & set(world.users.tags(world.ids[name])[tag])
        first = world.papers.get(outcome.papers[0])
        assert first.title in text and "Why:" in text and f"https://arxiv.org/abs/{first.id}" in html
        # Unsubscribe: the header (RFC 2369) and one-click POST (RFC 8058), the same signed link as the footer's.
        unsubscribe = msg["List-Unsubscribe"].strip("<>")
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click" and unsubscribe in text
        signer = Signer(link_key(world.settings.data_dir))
        link = signer.loads(urlsplit(unsubscribe).path.removeprefix("/email/"))
        assert (link.action, link.user_id) == ("unsubscribe", world.ids[name])
        # Every one-click link is for this reader, one action, one of the digest's papers.
        actions = [signer.loads(m) for m in re.findall(r"https://paperfeed\.test/email/([A-Za-z0-9_.-]+)", text)]
        assert {a.user_id for a in actions} == {world.ids[name]}
        assert [a.paper for a in actions if a.action == "tag"] == outcome.papers
        assert [a.paper for a in actions if a.action == "not-interested"] == outcome.papers
        assert {a.tag for a in actions if a.action == "tag"} == {tag}
    # The two readers got different papers: their own rankings.
    assert by_user["alice"].papers != by_user["bob"].papers
    # Recorded: the send, and the papers as shown via the digest (so no feed or digest repeats them).
    for name in ("alice", "bob"):
        uid = world.ids[name]
        assert world.users.seen_ids(uid) >= set(by_user[name].papers)
        assert seen.states(world.users, uid, by_user[name].papers) == {p: seen.SHOWN for p in by_user[name].papers}
        prefs = subscriptions.get(world.users, uid)
        assert prefs.last_sent and prefs.failures == 0 and prefs.since == float(world.index.first_seen.max())


def test_a_rerun_sends_nothing_twice_and_a_forced_one_finds_nothing_new(world):
    assert world.run().count("sent") == 2
    again = world.run()
    assert again.count("sent") == 0 and len(world.smtp.handler.messages) == 2
    assert {o.detail.split(" until")[0] for o in again.outcomes} == {"not due"}
    forced = world.run(force=True)  # due or not: everything new was sent already
    assert forced.count("sent") == 0 and len(world.smtp.handler.messages) == 2
    assert {o.detail for o in forced.outcomes} == {digest.NOTHING_NEW}


def test_nothing_new_notice_only_when_asked(world):
    world.run()
    subscriptions.update(world.users, world.ids["alice"], nothing_new=True)
    summary = world.run(force=True)
    assert [o.status for o in summary.outcomes] == ["nothing-new", "skipped"]
    (notice,) = [m for m in world.smtp.to(ALICE) if "nothing new" in m["Subject"]]
    assert "Nothing new matched" in parts(notice)[0] and notice["List-Unsubscribe"]


def test_a_hostile_title_is_text_in_the_html_part(world):
    outcome = digest.digest_user(world.context(), world.ids["alice"], "alice", None, dry_run=True)
    top = world.papers.get(outcome.papers[0])
    hostile = '<script>alert("x")</script> Dust & <b>Gas</b> in <img src=x onerror=alert(1)> M31'
    assert world.papers.upsert_many([dataclasses.replace(top, title=hostile)]).updated == 1
    world.run(only=[(world.ids["alice"], "alice")])
    text, html = parts(world.smtp.to(ALICE)[0])
    assert hostile in text  # plain text stays as written
    assert "<script>" not in html and "<img src=x" not in html and "<b>Gas" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; Dust &amp; &lt;b&gt;Gas&lt;/b&gt;" in html


def test_a_refused_recipient_fails_alone_and_is_retried_next_run(world):
    world.smtp.handler.refuse.add(BOB)
    summary = world.run()
    assert summary.exit_code == 1
    status = {o.user: (o.status, o.detail) for o in summary.outcomes}
    assert status["alice"][0] == "sent" and status["bob"][0] == "failed" and "550" in status["bob"][1]
    assert [m["To"] for m in world.smtp.parsed()] == [ALICE]
    prefs = subscriptions.get(world.users, world.ids["bob"])
    assert prefs.failures == 1 and "550" in prefs.last_error and prefs.last_sent is None
    assert not world.users.seen_ids(world.ids["bob"])  # nothing counts as shown until it is sent
    world.smtp.handler.refuse.clear()
    retry = world.run()
    assert [o.status for o in retry.outcomes] == ["skipped", "resent"] and retry.exit_code == 0
    (msg,) = world.smtp.to(BOB)
    assert msg["Message-ID"] == subscriptions.sends(world.users, world.ids["bob"])[0].message_id
    assert subscriptions.get(world.users, world.ids["bob"]).failures == 0


def test_the_server_going_down_mid_run_leaves_the_rest_pending_not_lost(world):
    def stop_after_first(done, total):
        if done == 1:
            world.smtp.stop()

    summary = world.run(progress=stop_after_first)
    assert [o.status for o in summary.outcomes] == ["sent", "pending"] and summary.exit_code == 1
    assert summary.stopped and "SMTP server" in summary.stopped
    assert len(world.smtp.handler.messages) == 1
    world.smtp.start()  # back up, on the same port
    retry = world.run()
    assert [o.status for o in retry.outcomes] == ["skipped", "resent"]
    assert [m["To"] for m in world.smtp.parsed()] == [ALICE, BOB]  # alice's digest was not sent twice


def test_no_server_at_all_is_one_clear_line_per_run_and_nothing_is_lost(world):
    world.smtp.stop()
    summary = world.run()
    assert [o.status for o in summary.outcomes] == ["pending", "pending"]
    assert "cannot reach the SMTP server 127.0.0.1" in summary.stopped
    assert subscriptions.pending(world.users, world.ids["alice"]) is not None
    assert subscriptions.pending(world.users, world.ids["bob"]) is None  # not even tried
    world.smtp.start()
    assert world.run().count("sent", "resent") == 2


def test_a_run_killed_after_the_server_took_the_message_resends_the_same_message(world, monkeypatch):
    real = subscriptions.record_sent

    def killed(*args, **kw):
        raise KeyboardInterrupt  # the process dies between the server's 250 and the commit

    monkeypatch.setattr(subscriptions, "record_sent", killed)
    with pytest.raises(KeyboardInterrupt):
        world.run(only=[(world.ids["alice"], "alice")])
    monkeypatch.setattr(subscriptions, "record_sent", real)
    first = world.smtp.to(ALICE)
    assert len(first) == 1 and not world.users.seen_ids(world.ids["alice"])
    summary = world.run(only=[(world.ids["alice"], "alice")])
    assert [o.status for o in summary.outcomes] == ["resent"]
    again = world.smtp.to(ALICE)
    # The one duplicate a crash can cause carries the same Message-ID (mail systems drop it) and papers.
    assert len(again) == 2 and again[1]["Message-ID"] == first[0]["Message-ID"]
    assert _ids_in(parts(again[1])[0]) == _ids_in(parts(first[0])[0])
    assert world.run(only=[(world.ids["alice"], "alice")], force=True).count("sent", "resent") == 0


def test_an_unconfirmed_address_gets_one_confirmation_a_day_and_no_digest(world):
    uid = world.ids["bob"]
    subscriptions.update(world.users, uid, email="bob.new@example.org")  # typed on the web: unconfirmed
    summary = world.run()
    assert [o.status for o in summary.outcomes] == ["sent", "confirm"]
    (msg,) = world.smtp.to("bob.new@example.org")
    assert "confirm" in msg["Subject"] and "List-Unsubscribe" not in msg
    token = re.search(r"https://paperfeed\.test/email/([A-Za-z0-9_.-]+)", parts(msg)[0]).group(1)
    link = Signer(link_key(world.settings.data_dir)).loads(token)
    assert (link.action, link.user_id, link.epoch) == ("confirm", uid, subscriptions.get(world.users, uid).link_epoch)
    assert world.run(force=True).count("confirm") == 0  # not again the same day
    assert subscriptions.confirm(world.users, uid, "bob.new@example.org")
    assert world.run(force=True).count("sent") == 1 and len(world.smtp.to("bob.new@example.org")) == 2


def test_a_changed_address_invalidates_links_mailed_to_the_old_one(world):
    world.run()
    uid = world.ids["alice"]
    before = subscriptions.get(world.users, uid).link_epoch
    subscriptions.update(world.users, uid, email="alice@elsewhere.org")
    assert subscriptions.get(world.users, uid).link_epoch == before + 1
    assert not subscriptions.get(world.users, uid).email_confirmed


def test_dry_run_sends_and_records_nothing(world):
    summary = digest.run(world.context(), None, dry_run=True)
    assert [o.status for o in summary.outcomes] == ["would-send", "would-send"]
    assert all(len(o.papers) == 10 and o.text for o in summary.outcomes)
    assert not world.smtp.handler.messages
    assert all(subscriptions.pending(world.users, uid) is None and not world.users.seen_ids(uid)
               for uid in world.ids.values())


def test_digest_tags_and_size_and_popular_section(world):
    uid = world.ids["bob"]
    alice = world.ids["alice"]
    world.users.add_tags(uid, "second", [world.index.ids[r] for r in world.index.category_rows["cs.CL"][:8]])
    service.train_current(world.settings, world.users)
    popular_pid = world.index.ids[world.index.category_rows["hep-th"][0]]
    world.users.add_tags(alice, "galaxies", [popular_pid])
    world.users.add_tags(world.users.add_user("carol", "x").id, "t", [popular_pid])
    subscriptions.update(world.users, uid, tags=["second"], size=3, popular=True)
    summary = world.run(only=[(uid, "bob")])
    (outcome,) = summary.outcomes
    assert len(outcome.papers) == 3 and outcome.popular == [popular_pid]
    text, html = parts(world.smtp.to(BOB)[0])
    assert "Paperfeed: 3 new papers for you in second" in world.smtp.to(BOB)[0]["Subject"]
    assert "Popular with other readers" in text and "(2 readers)" in text
    assert popular_pid in world.users.seen_ids(uid)


def test_settings_validation():
    for bad in ("", "no-at-sign", "a@b", "two@@example.org", "x@example.org\r\nBcc: evil@example.org",
                "Name <x@example.org>", "a,b@example.org", "x" * 250 + "@example.org"):
        with pytest.raises(subscriptions.SubscriptionError):
            subscriptions.validate_email(bad)
    assert subscriptions.validate_email(" Ann.O'Neil+arxiv@Example.ORG ") == "Ann.O'Neil+arxiv@example.org"
    for bad in (0, 51, "ten", 2.5, True, None):
        with pytest.raises(subscriptions.SubscriptionError):
            subscriptions.validate_size(bad)
    with pytest.raises(subscriptions.SubscriptionError):
        subscriptions.validate_frequency("hourly")


def test_signed_links_refuse_forgery_tampering_and_expiry(tmp_path, monkeypatch):
    from recommender.delivery import links

    signer = Signer(link_key(tmp_path))
    token = signer.dumps(links.Link("tag", 7, 0, paper="2504.04704", tag="x"))
    assert signer.loads(token).paper == "2504.04704"
    other = Signer(b"another key")
    with pytest.raises(BadLink, match="not valid"):
        other.loads(token)
    payload, rest = token.split(".", 1)
    forged = signer.dumps(links.Link("tag", 8, 0, paper="2504.04704")).split(".", 1)[0] + "." + rest
    with pytest.raises(BadLink):
        signer.loads(forged)  # another user's payload under this signature
    with pytest.raises(BadLink):
        signer.loads(token[:-3])  # cut short by a mail program
    # Expiry: the same token checked 31 days later.
    import itsdangerous.timed

    now = itsdangerous.timed.TimestampSigner.get_timestamp
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp",
                        lambda self: now(self) + 31 * 86400)
    with pytest.raises(BadLink, match="expired"):
        signer.loads(token)
    assert (tmp_path / "instance" / "email_link_key").stat().st_mode & 0o777 == 0o600


def test_the_send_log_is_pruned_with_the_seen_records_but_pending_messages_stay(world):
    world.smtp.handler.refuse.add(BOB)
    world.run()  # alice sent, bob pending
    year = world.settings.seen_retention_days * 86400
    assert subscriptions.prune_sends(world.users, year) == 0  # nothing old yet
    assert subscriptions.prune_sends(world.users, year, now=digest.clock() + year + 1) == 1
    assert subscriptions.sends(world.users, world.ids["alice"]) == []
    assert subscriptions.pending(world.users, world.ids["bob"]) is not None


def test_papers_computed_in_the_second_the_digest_was_turned_on_count_as_new(tmp_path):
    with UserStore(tmp_path / "users.sqlite") as users:
        uid = users.add_user("eve", "x").id
        prefs = subscriptions.update(users, uid, email="eve@example.org", confirmed=True, frequency="daily", now=100.7)
        assert 100 > prefs.since  # arrival times are whole seconds: a compute started at 100.9 records 100
        again = subscriptions.update(users, uid, size=5, now=500.0)
        assert again.since == prefs.since  # only turning the digest on starts the window
