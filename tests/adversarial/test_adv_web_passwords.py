"""Password rules (NIST SP 800-63B plus zxcvbn): weak passwords are refused with a reason, passphrases pass.

Through the real registration and password-change endpoints: at least 8 characters and no composition
rules, but no control characters, nothing from the common list, nothing built from the username, and a
zxcvbn score of at least ``MIN_SCORE`` (its feedback is shown).
"""
from __future__ import annotations


import pytest

from recommender.accounts.passwords import MIN_SCORE
from tests.webhelpers import PASSWORD, csrf, private_app, register, send

pytestmark = pytest.mark.slow

USER = "alice"
# (username, password) built from the username: with it, digits, case, punctuation, reversed, doubled, leetspeak
DERIVED = [("alice", "alice123"), ("bob.smith", "bobsmith2024"), ("carol", "Carol!!!1"), ("dave_90", "DAVE_1990"),
           ("erin.k", "123erin321"), ("frank", "knarf123"), ("grace", "gracegrace"), ("heidi", "h31d1-2024!"),
           ("ivan.petrov", "petrov.ivan"), ("judy", "@judy.2024"), ("mallory", "MALLORY"), ("oscar", "oscar oscar")]
WEAK = [
    # the report's examples: repeats, blanks, NUL bytes (and the username with digits, above)
    "aaaaaaaa", " " * 8, "\x00" * 8,
    # common passwords and their usual decorations
    "password", "Password1", "P@ssw0rd!", "passw0rd", "qwertyuiop", "qwerty123", "1q2w3e4r", "123456789",
    "12341234", "abcdefgh", "abcd1234", "iloveyou2", "letmein!", "welcome1", "monkey123", "dragon12", "sunshine",
    "trustno1", "11111111", "zaq12wsx", "asdfghjk", "abcabcabc", "a1a1a1a1", "hunter22", "Summer2024",
    "Winter2025!",
    # the site's own name
    "paperfeed", "paperfeed1", "Paperfeed2025",
    # control characters, blanks and invisible repeats
    "\t" * 8, "pass\x00word with more words", "correct\nhorse battery", "\u200b" * 8, "\x1b[31mred alert now",
    # length
    "short", "1234567", "x" * 1025,
]
STRONG = [
    "long enough passphrase 7", "correct horse battery staple", "tidal owl juggles quietly", "Tr0ub4dor&3",
    "my cat eats kale at dawn", "orbital mechanics 4 fun", "purple-elephant-quantum", "violin sunrise paper lamp",
    "seven tired otters nap", "notebook under the bridge", "river stone compass", "Gx7#pQ2!mZ",
    "ünïcödé pässphrase wörds", "日本語のパスワードです", "aliceinwonderland tea party",
]


@pytest.fixture(scope="module")
def site(built10k, tmp_path_factory):
    app = private_app(built10k, tmp_path_factory, "passwords")
    yield app
    app.extensions["paperfeed"].close()


def test_batteries_are_big_enough():
    assert len(DERIVED) + len(WEAK) >= 40 and len(STRONG) >= 10 and MIN_SCORE >= 2


def test_weak_passwords_are_refused_with_a_reason(site):
    accepted = []
    cases = DERIVED + [(f"weak{number}", password) for number, password in enumerate(WEAK)]
    for user, password in cases:
        client = site.test_client()
        response = send(client, "POST", "/api/register", csrf(client), json={"username": user, "password": password})
        message = response.json.get("message", "") if response.is_json else ""
        if response.status_code != 400 or "password" not in message or len(message) > 400:
            accepted.append(f"{password!r}: {response.status_code} {message[:60]}")
    assert not accepted, f"{len(accepted)} of {len(cases)} weak passwords accepted: {accepted}"


@pytest.mark.parametrize("password, reason", [
    ("aaaaaaaa", 'Repeats like "aaa" are easy to guess'), (" " * 8, "only spaces"),
    ("\x00" * 8, "control characters"), ("alice123", "based on your username"), ("password", "too common"),
    ("Summer2024", "too easy to guess"), ("short", "at least 8 characters"),
])
def test_the_reason_tells_what_to_do(site, password, reason):
    client = site.test_client()
    response = send(client, "POST", "/api/register", csrf(client), json={"username": USER, "password": password})
    assert response.status_code == 400 and reason in response.json["message"]


def test_reasonable_passphrases_are_accepted(site):
    refused = []
    for number, password in enumerate(STRONG):
        client = site.test_client()
        response = send(client, "POST", "/api/register", csrf(client),
                        json={"username": f"reader{number}", "password": password})
        if response.status_code != 201:
            refused.append(f"{password!r}: {response.get_data(as_text=True)[:200]}")
    assert not refused, refused


def test_password_change_applies_the_same_rules(site):
    client = site.test_client()
    token = register(client, "changer")
    for weak in ("changer2024", "aaaaaaaa", "\x00" * 12, "password1"):
        response = send(client, "POST", "/api/password", token, json={"old": PASSWORD, "new": weak})
        assert response.status_code == 400, weak
    form = client.post("/account/password", data={"old": PASSWORD, "new": "changer!!", "csrf_token": token})
    assert form.status_code == 400 and "username" in form.get_data(as_text=True)
    response = send(client, "POST", "/api/password", token, json={"old": PASSWORD, "new": "quiet harbour lanterns"})
    assert response.status_code == 200
