"""Password rules and hashing (Werkzeug's scrypt default)."""
from __future__ import annotations

from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

from .users import UserError

MIN_LENGTH = 8
MAX_LENGTH = 1024
_COMMON_FILE = Path(__file__).with_name("common_passwords.txt")


def _common() -> frozenset[str]:
    lines = _COMMON_FILE.read_text(encoding="utf-8").split()
    return frozenset(line.strip().lower() for line in lines if line.strip())


COMMON_PASSWORDS = _common()


def validate_password(password: str, username: str = "") -> str:
    """Return the password, or raise :class:`UserError` saying which rule it breaks."""
    if not isinstance(password, str) or len(password) < MIN_LENGTH:
        raise UserError(f"password must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise UserError(f"password must be at most {MAX_LENGTH} characters")
    if password.lower() in COMMON_PASSWORDS or (username and password.lower() == username.lower()):
        raise UserError("that password is too common; choose another")
    return password


def hash_password(password: str, username: str = "") -> str:
    return generate_password_hash(validate_password(password, username))  # scrypt by default


def check_password(password_hash: str, password: str) -> bool:
    return isinstance(password, str) and check_password_hash(password_hash, password)
