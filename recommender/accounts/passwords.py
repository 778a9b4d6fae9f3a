"""Password rules and hashing (Werkzeug's scrypt default).

The rules follow NIST SP 800-63B: at least 8 characters, no composition rules
(spaces and any printable Unicode are welcome), and a check against guessable
choices: a list of common passwords, anything built from the username, and
zxcvbn's guess estimate (its feedback is passed on to the user).
"""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash
from zxcvbn import zxcvbn

from recommender.accounts.users import UserError

MIN_LENGTH = 8
MAX_LENGTH = 1024
MIN_SCORE = 3  # zxcvbn score 0-4; 3 means "safely unguessable" (about 10^10 guesses or more)
SITE_WORDS = ("paperfeed",)  # words every attacker of this site tries first
_ZXCVBN_MAX = 72  # zxcvbn's own input limit; a longer password is judged on its first 72 characters
_COMMON_FILE = Path(__file__).with_name("common_passwords.txt")
_NOT_LETTERS = re.compile(r"[\W\d_]+")
_LEET = [str.maketrans("4@310$57!|", "aaeiosstil"), str.maketrans("4@310$57!|", "aaelosstll")]


def _common() -> frozenset[str]:
    lines = _COMMON_FILE.read_text(encoding="utf-8").split()
    return frozenset(line.strip().lower() for line in lines if line.strip())


COMMON_PASSWORDS = _common()


def derived_from_username(password: str, username: str) -> bool:
    """True if ``password`` is the username dressed up: contained in it (also reversed), or its letters
    are the username's letters (or a piece of them, or reversed) with digits and punctuation around; common
    letter-for-digit swaps ("4l1c3") count as the letters they stand for."""
    name = (username or "").lower()
    if len(name) < 3:
        return False
    name_letters = _NOT_LETTERS.sub("", name)
    for low in (password.lower(), *(password.lower().translate(t) for t in _LEET)):  # also "4l1c3" for alice
        if name in low or name[::-1] in low:
            return True
        letters = _NOT_LETTERS.sub("", low)
        if len(letters) >= 3 and len(name_letters) >= 3 and \
                (letters in name_letters * 2 or letters in name_letters[::-1]):
            return True
    return False


def validate_password(password: str, username: str = "") -> str:
    """Return the password, or raise :class:`UserError` saying which rule it breaks and how to do better."""
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        raise UserError(f"password must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise UserError(f"password must be at most {MAX_LENGTH} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in password):
        raise UserError("password must not contain control characters (tabs, line breaks, NUL and the like)")
    if not password.strip():
        raise UserError("password must not be only spaces")
    if password.lower() in COMMON_PASSWORDS:
        raise UserError("that password is too common; choose another")
    if derived_from_username(password, username):
        raise UserError("password must not contain or be based on your username")
    result = zxcvbn(password[:_ZXCVBN_MAX], user_inputs=[u for u in (username, *SITE_WORDS) if u])
    if result["score"] < MIN_SCORE:
        feedback = result.get("feedback") or {}
        hints = [feedback.get("warning") or ""] + list(feedback.get("suggestions") or [])
        hint = " ".join(h.strip() for h in hints if h and h.strip()) or \
            "Add another word or two; uncommon words are better."
        raise UserError(f"that password is too easy to guess. {hint} A few random words make a strong password.")
    return password


def hash_password(password: str, username: str = "") -> str:
    return generate_password_hash(validate_password(password, username))  # scrypt by default


def check_password(password_hash: str, password: str) -> bool:
    return isinstance(password, str) and check_password_hash(password_hash, password)
