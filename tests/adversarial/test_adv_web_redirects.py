"""Open redirects: after login, ``next`` may only lead to a path on this site.

Each hostile ``next`` goes through a real login POST; the answer must be a redirect whose Location, resolved
the way a browser resolves it (tabs and newlines dropped, backslashes read as slashes, leading controls and
spaces stripped), stays on the site, and never a 500.
"""
from __future__ import annotations

import re
from urllib.parse import quote, unquote_to_bytes, urljoin, urlsplit

import pytest

from tests.webhelpers import PASSWORD, csrf, private_app, register

pytestmark = pytest.mark.slow

SITE = "http://127.0.0.1/"
EVIL = "evil.example"

# ``next`` as the server receives it (decoded).
DECODED = [
    f"//{EVIL}", f"//{EVIL}/", f"///{EVIL}", f"////{EVIL}", f"/\\{EVIL}", f"\\\\{EVIL}", f"\\/{EVIL}",
    f"/\t/{EVIL}", f"/\n/{EVIL}", f"/\r/{EVIL}", f"\t//{EVIL}", f" //{EVIL}", f"/ /{EVIL}", f"/\x00/{EVIL}",
    f"/\x0b/{EVIL}", f"/\x0c/{EVIL}", f"\x00//{EVIL}", f"/\\\t{EVIL}", f"///\\{EVIL}", f"/\\/{EVIL}",
    f"https://{EVIL}", f"http:{EVIL}", f"http:/{EVIL}", f"https:{EVIL}", f"https:\\\\{EVIL}", f"HTTPS://{EVIL}",
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", " javascript:alert(1)", "data:text/html,<script>alert(1)</script>",
    f"/%2F%2F{EVIL}", f"%2F%2F{EVIL}", f"/%2F{EVIL}", f"/%5C{EVIL}", f"/%5C%5C{EVIL}", f"/%252F%252F{EVIL}",
    f"/%25252F%25252F{EVIL}", f"/%09/{EVIL}", f"//%09/{EVIL}",
    f"/@{EVIL}", f"https://127.0.0.1@{EVIL}", f"//127.0.0.1@{EVIL}", f"http://127.0.0.1:80@{EVIL}/",
    f"/./\\{EVIL}", f"/.//{EVIL}", f"/..//{EVIL}", f"/../\\{EVIL}",
    f"\uff0f\uff0f{EVIL}", f"/\uff0f{EVIL}", f"\u2215\u2215{EVIL}", f"/\u3002{EVIL}", f"//evil\u3002example",
    f"/\u00a0/{EVIL}", f"/\u2028/{EVIL}", f"\u202e//{EVIL}",
    f"//evil%2Eexample", f"//{EVIL}%00", f"{EVIL}", f"?next=//{EVIL}", f"#//{EVIL}", "", " ", "/" * 3000,
    f"/\r\nLocation: http://{EVIL}/", f"/\r\nSet-Cookie: session=x",
]
# ``next`` exactly as a client might put it in the URL (already percent-encoded).
RAW = ["/%09/evil.example", "%0A", "%0D", "/%0A", "/%0D%0ALocation:%20http://evil.example/", "%2F%2Fevil.example",
       "%5C%5Cevil.example", "/%5Cevil.example", "%09%2F%2Fevil.example", "/%E3%80%82evil.example",
       "/%ED%A0%80", "%FF", "/%00/evil.example", "%2F%09%2Fevil.example", "%20%2F%2Fevil.example"]
# Same-site targets that must keep working.
SAME_SITE = ["/library", "/search?q=dark+matter&page=2", "/papers/2504.13999", "/?mode=rec&tag=mine", "/",
             "/account#tokens", "/papers/hep-th/9901001"]


def browser_resolve(location: str) -> str:
    """Where a browser goes for this Location (WHATWG URL parsing, reduced to what matters here)."""
    location = location.strip("".join(chr(c) for c in range(0x21)))
    location = re.sub("[\t\n\r]", "", location).replace("\\", "/")
    return urljoin(SITE, location)


@pytest.fixture(scope="module")
def site(built10k, tmp_path_factory):
    app = private_app(built10k, tmp_path_factory, "redirects")
    register(app.test_client(), "alice")
    yield app
    app.extensions["paperfeed"].close()


def login_to(app, query: str):
    client = app.test_client()
    return client.post(f"/login?{query}", data={"username": "alice", "password": PASSWORD,
                                                 "csrf_token": csrf(client)})


def test_the_battery_is_big_enough():
    assert len(DECODED) + len(RAW) >= 30


def _unreadable(query: str) -> bool:
    """A query the app refuses before any handler runs (NUL, or not UTF-8): a 400, not a login."""
    raw = unquote_to_bytes(query)
    if b"\x00" in raw:
        return True
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def test_login_never_redirects_off_site(site):
    escaped, broken = [], []
    cases = [("next=" + quote(target, safe=""), target) for target in DECODED] + [("next=" + raw, raw) for raw in RAW]
    for query, shown in cases:
        response = login_to(site, query)
        if _unreadable(query) and response.status_code == 400 and "Location" not in response.headers:
            continue
        if response.status_code != 302:
            broken.append(f"{shown!r}: {response.status_code}")
            continue
        location = response.headers["Location"]
        resolved = urlsplit(browser_resolve(location))
        if resolved.scheme != "http" or resolved.hostname != "127.0.0.1" or \
                re.search(r"[\x00-\x20\\\x7f]", location):
            escaped.append(f"{shown!r} -> {location!r}")
    assert not broken and not escaped, (f"{len(escaped)} of {len(cases)} next values escaped the site, "
                                        f"{len(broken)} broke the login:\n" + "\n".join(escaped + broken))


@pytest.mark.parametrize("target", SAME_SITE)
def test_same_site_targets_still_work(site, target):
    response = login_to(site, "next=" + quote(target, safe=""))
    assert response.status_code == 302 and response.headers["Location"] == target


def test_the_login_required_detour_keeps_the_page(site):
    client = site.test_client()
    detour = client.get("/library?x=//evil.example")
    assert detour.status_code == 302
    login_url = detour.headers["Location"]
    assert login_url.startswith("/login?next=")
    response = client.post(login_url, data={"username": "alice", "password": PASSWORD, "csrf_token": csrf(client)})
    assert response.status_code == 302 and response.headers["Location"] == "/library?x=//evil.example"
    assert urlsplit(browser_resolve(response.headers["Location"])).hostname == "127.0.0.1"


@pytest.mark.parametrize("path", ["//evil.example/", "///evil.example", "/%2F%2Fevil.example", "/api//feed",
                                  "/papers//2504.13999", "/\\evil.example"])
def test_no_route_redirects_to_a_path_it_was_sent(site, path):
    # Sent as the raw request line would carry it (the test client would read "//host/" as a host).
    raw = unquote_to_bytes(path).decode("latin-1")
    response = site.test_client().get("/", environ_overrides={"PATH_INFO": raw, "REQUEST_URI": path})
    assert response.status_code in (400, 404)
    assert "Location" not in response.headers
