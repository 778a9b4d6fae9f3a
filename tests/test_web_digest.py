"""The email digest's web side on the real 10k sample, with CSRF on: the account page's settings form,
``GET``/``PUT /api/digest``, and the one-click ``/email/<token>`` links (GET shows, POST acts, RFC 8058).

The immediate confirmation message goes through a real SMTP server on loopback (aiosmtpd); its link is
followed like a reader would (GET, then the page's POST).
"""
from __future__ import annotations

import email
import email.policy
import html
import re
import shutil

import itsdangerous.timed
import pytest

from recommender.accounts import subscriptions
from recommender.accounts.users import UserStore
from recommender.corpus.papers import Paper
from recommender.corpus.store import PaperStore
from recommender.delivery.links import Link, Signer, email_hash, link_key
from tests.smtpserver import SMTPServer, free_port
from tests.webhelpers import bearer, message, page_csrf, private_app, register, send, tag, users_snapshot

pytestmark = pytest.mark.slow

PID = "2504.13999"
OTHER = "2510.00095"
THIRD = "2504.04704"


@pytest.fixture(scope="module")
def app(built10k, tmp_path_factory):
    app = private_app(built10k, tmp_path_factory, "digest")
    yield app
    app.extensions["paperfeed"].close()


def settings_of(app):
    return app.extensions["paperfeed"].settings


def user_id(app, name: str) -> int:
    with UserStore(settings_of(app).users_path) as store:
        return store.get_user(name).id


def prefs(app, name: str) -> subscriptions.DigestSettings:
    with UserStore(settings_of(app).users_path) as store:
        return subscriptions.get(store, user_id(app, name))


def stored(app, name: str):
    """(tags, not interested) of a user, read from the database."""
    with UserStore(settings_of(app).users_path) as store:
        uid = store.get_user(name).id
        return store.tags(uid), store.not_interested(uid)


def make_link(app, name: str, action: str, epoch: int | None = None, **fields) -> str:
    """A signed link path for ``name``, as the digest would mail it (at the current epoch by default)."""
    uid = user_id(app, name)
    epoch = prefs(app, name).link_epoch if epoch is None else epoch
    return "/email/" + Signer(link_key(settings_of(app).data_dir)).dumps(Link(action, uid, epoch, **fields))


def new_user(app, name: str, *tags_: tuple[str, str]):
    client = app.test_client()
    token = register(client, name)
    for tag_name, pid in tags_:
        tag(client, token, tag_name, pid)
    return client, token


def save_form(client, **fields):
    """POST the account page's digest form with the page's CSRF token."""
    page = client.get("/account").get_data(as_text=True)
    data = {"email": "", "frequency": "off", "size": "10", "scope": "library", **fields,
            "csrf_token": page_csrf(page)}
    return client.post("/account/digest", data=data)


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def wait(app):
    app.extensions["paperfeed"].wait_for_retrains()


# the account page's form -----------------------------------------------------------------------------
def test_the_account_page_has_the_digest_form(app):
    client, _ = new_user(app, "dora", ("astro", PID), ("vision", OTHER))
    page = client.get("/account").get_data(as_text=True)
    assert 'id="digest"' in page
    for field in ('name="email"', 'name="frequency"', 'name="size"', 'name="scope"', 'value="astro"',
                  'value="vision"', 'name="popular"', 'name="nothing_new"'):
        assert field in page, field
    assert 'value="10"' in page and "No digest sent yet." in page
    assert "Send the confirmation again" not in page  # no address yet
    wait(app)


def test_the_settings_form_round_trip(app):
    client, _ = new_user(app, "erin", ("astro", PID), ("vision", OTHER))
    response = save_form(client, email="Erin@Example.ORG", frequency="daily", size="7", scope="tags",
                         tags=["astro"], popular="1")
    assert response.status_code == 302 and response.headers["Location"].endswith("/account#digest")
    page = text(client.get("/account"))
    assert "Digest settings saved." in page
    assert "Email is not set up on this server" in page  # no SMTP here: the next digest run sends it
    assert "Erin@example.org" in page and "not confirmed yet" in page and "Send the confirmation again" in page
    assert re.search(r'<option value="daily" selected>', page)
    assert 'value="7"' in page
    assert re.search(r'value="astro" checked', page) and not re.search(r'value="vision" checked', page)
    assert re.search(r'name="popular" value="1" checked', page)
    assert not re.search(r'name="nothing_new" value="1" checked', page)
    got = client.get("/api/digest").json
    assert got["email"] == "Erin@example.org" and got["email_confirmed"] is False
    assert (got["frequency"], got["size"], got["tags"], got["popular"], got["nothing_new"]) == \
        ("daily", 7, ["astro"], True, False)
    # back to the whole library, weekly, the same address: still unconfirmed, the epoch unchanged
    epoch = prefs(app, "erin").link_epoch
    assert save_form(client, email="Erin@example.org", frequency="weekly", size="10", scope="library",
                     nothing_new="1").status_code == 302
    got = client.get("/api/digest").json
    assert (got["frequency"], got["tags"], got["popular"], got["nothing_new"]) == ("weekly", None, False, True)
    assert prefs(app, "erin").link_epoch == epoch
    # a digest tag that was deleted since is named on the page, and the form saves without it
    save_form(client, email="Erin@example.org", frequency="weekly", scope="tags", tags=["astro", "vision"])
    token = page_csrf(client.get("/account").get_data(as_text=True))
    assert client.post("/library/tags/vision/delete", data={"csrf_token": token}).status_code == 302
    page = text(client.get("/account"))
    assert re.search(r'id="digest-gone-tags">[^<]*: vision\.', page)
    assert save_form(client, email="Erin@example.org", frequency="weekly", scope="tags",
                     tags=["astro"]).status_code == 302
    assert client.get("/api/digest").json["tags"] == ["astro"]
    wait(app)


@pytest.mark.parametrize("fields, expected", [
    ({"email": "not an address"}, "email must be one plain address"),
    ({"email": "a@b.org, c@d.org"}, "email must be one plain address"),
    ({"email": "x@example.org\r\nBcc: y@example.org"}, "email must be one plain address"),
    ({"size": "0"}, "from 1 to 50"),
    ({"size": "51"}, "from 1 to 50"),
    ({"size": "ten"}, "from 1 to 50"),
    ({"frequency": "hourly"}, "frequency must be one of"),
    ({"scope": "tags", "tags": ["nosuchtag"]}, "you have no tag 'nosuchtag'"),
    ({"scope": "tags"}, "choose at least one tag"),
    ({"scope": "everything"}, "whole library or some of your tags"),
])
def test_the_settings_form_refuses_bad_values(app, fields, expected):
    name = "val" + str(abs(hash(repr(fields))) % 10**8)
    client, _ = new_user(app, name, ("astro", PID))
    save_form(client, email="keep@example.org", frequency="daily", size="5")
    before = client.get("/api/digest").json
    response = save_form(client, **{"email": "new@example.org", "frequency": "weekly", "size": "9", **fields})
    assert response.status_code == 400
    page = text(response)
    assert expected in page and 'id="digest"' in page
    assert client.get("/api/digest").json == before  # nothing of the refused save was kept
    wait(app)


def test_the_settings_forms_need_csrf(app):
    client, _ = new_user(app, "frank", ("astro", PID))
    before = users_snapshot(settings_of(app))
    for url in ("/account/digest", "/account/digest/confirm"):
        for bad in (None, "not-a-token"):
            data = {"email": "frank@example.org", "frequency": "daily", "size": "5", "scope": "library"}
            if bad:
                data["csrf_token"] = bad
            response = client.post(url, data=data)
            assert response.status_code == 400 and "CSRF" in text(response), url
    assert users_snapshot(settings_of(app)) == before
    anonymous = app.test_client()
    assert anonymous.get("/account").status_code == 302
    wait(app)


# the API --------------------------------------------------------------------------------------------
def test_the_api_reads_and_changes_the_settings(app):
    client, token = new_user(app, "gina", ("astro", PID), ("vision", OTHER))
    got = client.get("/api/digest")
    assert got.status_code == 200
    assert got.json == {"email": None, "email_confirmed": False, "frequency": "off", "size": 10, "tags": None,
                        "nothing_new": False, "popular": False, "last_sent": None, "last_error": None,
                        "failures": 0, "confirmation": None}
    response = send(client, "PUT", "/api/digest", token, json={"email": "gina@example.org", "frequency": "weekly",
                                                                 "size": 20, "tags": ["vision"], "popular": True})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.json
    assert (body["email"], body["email_confirmed"], body["frequency"], body["size"], body["tags"], body["popular"]) \
        == ("gina@example.org", False, "weekly", 20, ["vision"], True)
    assert body["confirmation"]["status"] == "later"  # no SMTP on this server
    # a partial change leaves the rest; [] means the whole library
    response = send(client, "PUT", "/api/digest", token, json={"tags": [], "nothing_new": True})
    assert response.status_code == 200
    assert (response.json["tags"], response.json["nothing_new"], response.json["size"],
            response.json["email"]) == (None, True, 20, "gina@example.org")
    assert response.json["confirmation"] is None  # the address did not change
    # a session needs CSRF
    response = send(client, "PUT", "/api/digest", None, json={"size": 3})
    assert response.status_code == 400 and "CSRF" in response.json["message"]
    assert client.get("/api/digest").json["size"] == 20
    # anonymous: 401
    assert app.test_client().get("/api/digest").status_code == 401
    assert app.test_client().put("/api/digest", json={"size": 3}).status_code in (400, 401)
    wait(app)


@pytest.mark.parametrize("body, expected", [
    ({"email": "nope"}, "email must be one plain address"),
    ({"email": 7}, "email must be a string"),
    ({"size": 0}, "from 1 to 50"),
    ({"size": 51}, "from 1 to 50"),
    ({"size": True}, "from 1 to 50"),
    ({"size": "5"}, "from 1 to 50"),
    ({"frequency": "hourly"}, "frequency must be one of"),
    ({"frequency": 1}, "frequency must be"),
    ({"tags": ["nosuchtag"]}, "you have no tag 'nosuchtag'"),
    ({"tags": "astro"}, "digest tags must be a list"),
    ({"popular": "yes"}, "popular must be true or false"),
    ({"colour": "red"}, "unknown field 'colour'"),
])
def test_the_api_refuses_bad_values_with_a_json_error(app, body, expected):
    name = "api" + str(abs(hash(repr(body))) % 10**8)
    client, token = new_user(app, name, ("astro", PID))
    before = client.get("/api/digest").json
    response = send(client, "PUT", "/api/digest", token, json=body)
    assert response.status_code == 400
    assert response.is_json and set(response.json) == {"error", "message"}
    assert expected in response.json["message"]
    assert client.get("/api/digest").json == before
    wait(app)


def test_the_api_takes_a_bearer_token_and_keeps_users_apart(app):
    hana, hana_csrf = new_user(app, "hana", ("astro", PID))
    ivan, ivan_csrf = new_user(app, "ivan", ("vision", OTHER))
    secret = send(hana, "POST", "/api/tokens", hana_csrf, json={"name": "script"}).json["token"]
    script = app.test_client()  # no cookies: the token alone
    response = script.put("/api/digest", json={"email": "hana@example.org", "frequency": "daily",
                                                "tags": ["astro"]}, headers=bearer(secret))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert script.get("/api/digest", headers=bearer(secret)).json["tags"] == ["astro"]
    # ivan sees and changes only his own settings; hana's tag names are not his
    assert ivan.get("/api/digest").json["email"] is None
    response = send(ivan, "PUT", "/api/digest", ivan_csrf, json={"tags": ["astro"]})
    assert response.status_code == 400 and "you have no tag 'astro'" in response.json["message"]
    assert send(ivan, "PUT", "/api/digest", ivan_csrf, json={"email": "ivan@example.org"}).status_code == 200
    assert hana.get("/api/digest").json["email"] == "hana@example.org"
    assert script.put("/api/digest", json={"size": 5}, headers=bearer("pf_garbage")).status_code == 401
    wait(app)


# one-click links --------------------------------------------------------------------------------------
@pytest.fixture
def subscriber(app, request):
    """A user with two tags, a confirmed address and a daily digest (as an operator would set it up)."""
    name = "sub" + re.sub(r"[^a-z0-9]", "", request.node.name.lower())[-20:]
    client, token = new_user(app, name, ("astro", PID), ("vision", OTHER))
    with UserStore(settings_of(app).users_path) as store:
        subscriptions.update(store, store.get_user(name).id, email=f"{name}@example.org", confirmed=True,
                             frequency="daily")
    wait(app)
    return {"name": name, "client": client, "csrf": token}


def link_form(client, path: str) -> tuple[str, str]:
    """GET the link's page: (page text, its CSRF token)."""
    response = client.get(path)
    assert response.status_code == 200, response.get_data(as_text=True)
    page = response.get_data(as_text=True)
    return html.unescape(page), page_csrf(page)


def test_a_link_page_shows_the_action_and_changes_nothing(app, subscriber):
    name = subscriber["name"]
    links = {"tag": make_link(app, name, "tag", paper=THIRD, tag="vision"),
             "not-interested": make_link(app, name, "not-interested", paper=THIRD),
             "unsubscribe": make_link(app, name, "unsubscribe"),
             "confirm": make_link(app, name, "confirm", email_hash=email_hash(f"{name}@example.org"))}
    title = PaperStore(settings_of(app).papers_path, readonly=True).get(THIRD).title
    before = users_snapshot(settings_of(app))
    anonymous = app.test_client()
    for action, path in links.items():
        response = anonymous.get(path)
        assert response.status_code == 200, (action, response.get_data(as_text=True))
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "noindex" in response.headers["X-Robots-Tag"]
        assert "no-store" in response.headers["Cache-Control"]
        page = text(response)
        assert "Nothing has changed yet" in page and f'action="{path}"' in page
        assert f"account {name}" in page.replace("<strong>", "").replace("</strong>", "")
        if action in ("tag", "not-interested"):
            assert title in page
        else:
            assert f"{name}@example.org" in page
    page = text(anonymous.get(links["tag"]))
    assert re.search(r'<option value="vision" selected>vision</option>', page)
    assert '<option value="astro">astro</option>' in page and 'name="new_tag"' in page
    assert users_snapshot(settings_of(app)) == before


def test_tag_and_not_interested_links_act_without_login(app, subscriber):
    name = subscriber["name"]
    path = make_link(app, name, "tag", paper=THIRD, tag="vision")
    anonymous = app.test_client()
    _, token = link_form(anonymous, path)
    response = anonymous.post(path, data={"csrf_token": token, "tag": "astro"})  # another tag than suggested
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "Added to your tag “astro”." in text(response)
    tags, _ = stored(app, name)
    assert THIRD in tags["astro"] and THIRD not in tags["vision"]
    # the same link again, with a new tag typed in: it wins over the select
    response = anonymous.post(path, data={"csrf_token": token, "tag": "astro", "new_tag": "to read"})
    assert response.status_code == 200 and "Added to your tag “to read”." in text(response)
    assert THIRD in stored(app, name)[0]["to read"]
    response = anonymous.post(path, data={"csrf_token": token, "tag": "astro"})
    assert "already in your tag “astro”" in text(response)
    # a bad tag name: refused with the reason, nothing stored
    before = users_snapshot(settings_of(app))
    for bad in ("<script>", "", "x" * 41):
        response = anonymous.post(path, data={"csrf_token": token, "new_tag": bad, "tag": ""})
        assert response.status_code == 400 and "tag must be 1-40 characters" in text(response), bad
    assert users_snapshot(settings_of(app)) == before
    # not interested
    path = make_link(app, name, "not-interested", paper=THIRD)
    page, token = link_form(anonymous, path)
    response = anonymous.post(path, data={"csrf_token": token})
    assert response.status_code == 200 and "Marked not interested" in text(response)
    assert THIRD in stored(app, name)[1]
    assert "already marked not interested" in text(anonymous.post(path, data={"csrf_token": token}))
    wait(app)
    with app.app_context():  # retrained in the background, as after a tag change on the site
        model = app.extensions["paperfeed"].model(user_id(app, name))
    with UserStore(settings_of(app).users_path) as store:
        assert model is not None and model.tags_version == store.get_user(name).tags_version


def test_a_link_acts_for_its_user_never_the_logged_in_one(app, subscriber):
    other, _ = new_user(app, "mallory", ("mine", PID))
    path = make_link(app, subscriber["name"], "tag", paper=THIRD, tag="vision")
    page, token = link_form(other, path)
    assert "not the account you are logged in as" in page
    assert other.post(path, data={"csrf_token": token, "tag": "vision"}).status_code == 200
    assert THIRD in stored(app, subscriber["name"])[0]["vision"]
    assert stored(app, "mallory")[0] == {"mine": [PID]}
    wait(app)


def test_unsubscribe_link_and_rfc8058_one_click(app, subscriber):
    name = subscriber["name"]
    path = make_link(app, name, "unsubscribe")
    anonymous = app.test_client()
    _, token = link_form(anonymous, path)
    response = anonymous.post(path, data={"csrf_token": token})
    assert response.status_code == 200 and "You are unsubscribed" in text(response)
    assert prefs(app, name).frequency == "off"
    # RFC 8058: a mail provider's POST, no cookie, no CSRF token
    with UserStore(settings_of(app).users_path) as store:
        subscriptions.update(store, user_id(app, name), frequency="weekly")
    provider = app.test_client()
    response = provider.post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert prefs(app, name).frequency == "off"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_only_one_click_unsubscribe_skips_csrf(app, subscriber):
    name = subscriber["name"]
    before = users_snapshot(settings_of(app))
    fresh = app.test_client()
    # a plain POST without CSRF, even to an unsubscribe link
    response = fresh.post(make_link(app, name, "unsubscribe"), data={})
    assert response.status_code == 400 and "CSRF" in text(response)
    # the RFC 8058 body does not open any other action
    for path in (make_link(app, name, "tag", paper=THIRD, tag="vision"),
                 make_link(app, name, "not-interested", paper=THIRD),
                 make_link(app, name, "confirm", email_hash=email_hash(f"{name}@example.org"))):
        response = fresh.post(path, data={"List-Unsubscribe": "One-Click", "tag": "vision"})
        assert response.status_code == 400 and "CSRF" in text(response), path
    # nor a forged unsubscribe link
    forged = make_link(app, name, "unsubscribe")[:-3] + "AAA"
    assert fresh.post(forged, data={"List-Unsubscribe": "One-Click"}).status_code == 400
    assert users_snapshot(settings_of(app)) == before
    assert prefs(app, name).frequency == "daily"


def test_confirm_link(app):
    client, token = new_user(app, "jules", ("astro", PID))
    assert send(client, "PUT", "/api/digest", token, json={"email": "jules@example.org",
                                                          "frequency": "daily"}).status_code == 200
    path = make_link(app, "jules", "confirm", email_hash=email_hash("jules@example.org"))
    anonymous = app.test_client()
    page, csrf_token = link_form(anonymous, path)
    assert "Confirm that jules@example.org should receive" in page.replace("<strong>", "").replace("</strong>", "")
    assert prefs(app, "jules").email_confirmed is False
    response = anonymous.post(path, data={"csrf_token": csrf_token})
    assert response.status_code == 200 and "jules@example.org is confirmed" in text(response)
    assert prefs(app, "jules").email_confirmed is True
    assert prefs(app, "jules").active
    # a confirm link for another address of the same epoch does not confirm this one
    wrong = make_link(app, "jules", "confirm", email_hash=email_hash("other@example.org"))
    assert anonymous.get(wrong).status_code == 410
    wait(app)


def test_forged_expired_and_stale_links_are_refused(app, subscriber, monkeypatch):
    name = subscriber["name"]
    good = make_link(app, name, "tag", paper=THIRD, tag="vision")
    token = good.removeprefix("/email/")
    other_key = Signer(b"0" * 64).dumps(Link("unsubscribe", user_id(app, name), prefs(app, name).link_epoch))
    with monkeypatch.context() as m:  # signed eight days ago: a confirm link lives seven
        past = int(__import__("time").time()) - 8 * 86400
        m.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: past)
        expired = make_link(app, name, "confirm", email_hash=email_hash(f"{name}@example.org"))
    flipped = token[:-4] + ("A" if token[-4] != "A" else "B") + token[-3:]
    cases = {f"/email/{flipped}": (400, "not valid"), f"/email/{token[:20]}": (400, "not valid"),
             "/email/garbage": (400, "not valid"), f"/email/{other_key}": (400, "not valid"),
             "/email/" + "x" * 1200: (400, "not valid"), expired: (410, "expired"),
             make_link(app, name, "tag", paper="2501.99999"): (404, "not in this Paperfeed"),
             make_link(app, name, "tag", epoch=prefs(app, name).link_epoch + 5, paper=THIRD): (410, "no longer works")}
    anonymous = app.test_client()
    _, csrf_token = link_form(anonymous, good)
    before = users_snapshot(settings_of(app))
    for path, (status, words) in cases.items():
        response = anonymous.get(path)
        assert response.status_code == status and words in text(response), (path[:60], response.status_code)
        assert response.headers["Referrer-Policy"] == "no-referrer"
        response = anonymous.post(path, data={"csrf_token": csrf_token, "tag": "vision"})
        assert response.status_code == status, (path[:60], response.status_code)
    assert users_snapshot(settings_of(app)) == before
    # changing the address outdates every link mailed before
    unsubscribe = make_link(app, name, "unsubscribe")
    send(subscriber["client"], "PUT", "/api/digest", subscriber["csrf"], json={"email": f"new.{name}@example.org"})
    for path in (good, unsubscribe, make_link(app, name, "confirm", epoch=prefs(app, name).link_epoch - 1,
                                              email_hash=email_hash(f"{name}@example.org"))):
        assert anonymous.get(path).status_code == 410
        assert anonymous.post(path, data={"csrf_token": csrf_token, "tag": "vision"}).status_code == 410
        assert "no longer works" in text(anonymous.get(path))
    assert provider_unsubscribe(app, unsubscribe).status_code == 410
    assert THIRD not in stored(app, name)[0].get("vision", [])
    assert prefs(app, name).frequency == "daily"


def provider_unsubscribe(app, path: str):
    return app.test_client().post(path, data={"List-Unsubscribe": "One-Click"})


def test_link_signing_expiry_at_the_unit_level(tmp_path, monkeypatch):
    from recommender.delivery.links import BadLink, LinkExpired

    signer = Signer(link_key(tmp_path))
    with monkeypatch.context() as m:
        now = int(__import__("time").time())
        m.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: now - 31 * 86400)
        old_tag = signer.dumps(Link("tag", 1, 0, paper=PID))
        old_unsubscribe = signer.dumps(Link("unsubscribe", 1, 0))
    with pytest.raises(LinkExpired):
        signer.loads(old_tag)
    assert signer.loads(old_unsubscribe).action == "unsubscribe"  # a year for unsubscribe links
    with pytest.raises(BadLink):
        signer.loads(old_tag.replace(".", ",", 1))


def test_a_hostile_paper_title_is_escaped_on_the_link_page(app, subscriber):
    pid = "2512.99998"
    hostile = "<script>alert(1)</script> & <b>bold</b>"
    with PaperStore(settings_of(app).papers_path) as store:
        store.upsert_many([Paper(id=pid, version=1, title=hostile, abstract="text", authors=("<i>Eve</i>",),
                                 categories=("cs.CR",), published="2025-12-01", updated="2025-12-01")])
    path = make_link(app, subscriber["name"], "tag", paper=pid, tag='"><script>x</script>')
    response = app.test_client().get(path)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "<script>alert(1)" not in page and "<b>bold" not in page and "<i>Eve" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    assert "<script>x</script>" not in page
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script\s*>", page, re.I | re.S)
    assert scripts and all("src=" in attrs and not body.strip() for attrs, body in scripts)
    # the suggested name is not a valid tag: taking it is refused, not stored
    reader = app.test_client()
    _, token = link_form(reader, path)
    before = users_snapshot(settings_of(app))
    response = reader.post(path, data={"csrf_token": token, "tag": '"><script>x</script>'})
    assert response.status_code == 400 and "tag must be 1-40 characters" in text(response)
    assert "<script>x</script>" not in response.get_data(as_text=True)
    assert users_snapshot(settings_of(app)) == before


# the immediate confirmation message through a real SMTP server --------------------------------------
@pytest.fixture(scope="module")
def smtp():
    server = SMTPServer().start()
    try:
        yield server, server.port
    finally:
        server.stop()


def _mail_app(built10k, tmp_path_factory, name: str, port: int):
    from recommender.settings import load_settings
    from webapp import create_app

    root = tmp_path_factory.mktemp(name)
    shutil.copytree(built10k.data_dir, root / "data")
    shutil.copytree(built10k.models_dir, root / "models")
    settings = load_settings(environ={}, data_dir=root / "data", models_dir=root / "models", n_jobs=1,
                             smtp_host="127.0.0.1", smtp_port=port, smtp_from="Paperfeed <digest@example.org>",
                             smtp_tls="none", smtp_timeout=5.0, public_url="http://localhost")
    return create_app({"PRODUCTION": False, "TESTING": True, "RATELIMIT_ENABLED": False}, settings=settings)


@pytest.fixture(scope="module")
def mail_app(built10k, tmp_path_factory, smtp):
    app = _mail_app(built10k, tmp_path_factory, "digest-mail", smtp[1])
    yield app
    app.extensions["paperfeed"].close()


def test_saving_a_new_address_sends_the_confirmation_at_once(mail_app, smtp):
    inbox, _ = smtp
    app = mail_app
    client, _ = new_user(app, "kim", ("astro", PID))
    first = len(inbox.messages)
    response = save_form(client, email="kim@example.org", frequency="daily", size="10")
    assert response.status_code == 302
    page = text(client.get("/account"))
    assert "A confirmation message went to kim@example.org" in page
    assert len(inbox.messages) == first + 1
    assert inbox.envelopes[-1][1] == ["kim@example.org"]
    msg = email.message_from_bytes(inbox.messages[-1], policy=email.policy.default)
    assert msg["To"] == "kim@example.org" and "confirm" in msg["Subject"]
    body = msg.get_body(("plain",)).get_content()
    url = re.search(r"http://localhost(/email/\S+)", body).group(1)
    reader = app.test_client()  # the mail is opened elsewhere: no session
    page, token = link_form(reader, url)
    assert "kim@example.org" in page and prefs(app, "kim").email_confirmed is False
    response = reader.post(url, data={"csrf_token": token})
    assert response.status_code == 200 and "kim@example.org is confirmed" in text(response)
    assert prefs(app, "kim").email_confirmed is True
    assert "confirmed</span>" in client.get("/account").get_data(as_text=True)
    wait(app)


def test_send_again_is_limited_to_one_a_day(mail_app, smtp):
    inbox, _ = smtp
    app = mail_app
    client, token = new_user(app, "lena", ("astro", PID))
    response = send(client, "PUT", "/api/digest", token, json={"email": "lena@example.org"})
    assert response.json["confirmation"]["status"] == "sent"
    count = len(inbox.messages)
    page = client.get("/account").get_data(as_text=True)
    assert "Send the confirmation again" in page
    response = client.post("/account/digest/confirm", data={"csrf_token": page_csrf(page)})
    assert response.status_code == 302
    assert "at most one a day" in text(client.get("/account"))
    assert len(inbox.messages) == count
    # a new address within the day waits too (one message a day per user, whatever the address)
    response = send(client, "PUT", "/api/digest", token, json={"email": "lena2@example.org"})
    assert response.json["confirmation"]["status"] == "waiting" and len(inbox.messages) == count
    wait(app)


def test_an_unreachable_smtp_server_is_no_error_page(built10k, tmp_path_factory):
    app = _mail_app(built10k, tmp_path_factory, "digest-nomail", free_port())  # nothing listens there
    try:
        client, _ = new_user(app, "mona", ("astro", PID))
        response = save_form(client, email="mona@example.org", frequency="weekly")
        assert response.status_code == 302
        page = text(client.get("/account"))
        assert "could not be sent just now" in page and "next digest run" in page
        got = client.get("/api/digest").json
        assert got["email"] == "mona@example.org" and got["frequency"] == "weekly"  # the save stands
        assert got["last_error"] and "cannot reach the SMTP server" in got["last_error"]
        assert message(client.get("/account"))  # the page renders
        wait(app)
    finally:
        app.extensions["paperfeed"].close()
