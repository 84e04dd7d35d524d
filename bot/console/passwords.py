"""Staff passwords: argon2id hashes and a policy that refuses the guessable ones.

The policy is length first (NIST SP 800-63B): at least 12 characters, not one of
the passwords every attacker tries first, not built from the username. No
composition rules: they make passwords harder to remember, not to guess.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12
MAX_LENGTH = 256

# What attackers try first, at or above the minimum length (lowercased).
_COMMON = frozenset(
    {
        "123456789012", "1234567890123", "12345678901234", "123456123456", "qwertyuiopas",
        "qwertyuiop123", "qwerty123456", "password1234", "password12345", "password123!",
        "passwordpassword", "iloveyou1234", "administrator", "administrator1", "letmein12345",
        "welcome12345", "welcome123456", "changeme1234", "trustno1trustno1", "abcdefghijkl",
        "abc123abc123", "aaaaaaaaaaaa", "111111111111", "000000000000", "football1234",
        "princess1234", "sunshine1234", "monkey123456", "dragon123456", "baseball1234",
        "superman1234", "1q2w3e4r5t6y", "1qaz2wsx3edc", "zaq12wsxcde3", "qazwsxedcrfv",
        "asdfghjkl123", "asdfasdfasdf", "cityhall1234", "eastbrook123", "eastbrook2026",
    }
)

_hasher = PasswordHasher()


class WeakPassword(ValueError):
    """A password the policy refuses; the message says why, for the person choosing it."""


def check_policy(password: str, *, username: str = "") -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"the password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"the password must have at most {MAX_LENGTH} characters")
    lowered = password.lower()
    if lowered in _COMMON or len(set(lowered)) < 4:
        raise WeakPassword("this password is too easy to guess; use a few unrelated words")
    name = username.strip().lower()
    if name and len(name) >= 3 and name in lowered:
        raise WeakPassword("the password must not contain the username")
    if _is_sequence(lowered):
        raise WeakPassword("a run of consecutive characters is too easy to guess")


def _is_sequence(text: str) -> bool:
    steps = {ord(b) - ord(a) for a, b in zip(text, text[1:])}
    return len(steps) == 1 and steps <= {1, -1}


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's defaults."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


# Verifying against this when the username is unknown makes both cases take the same time,
# so response times do not tell which usernames exist. Built on first use (no work at import).
_dummy_hash: str | None = None


def burn_time(password: str) -> None:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash("not a real password, only a timing equaliser")
    verify_password(_dummy_hash, password)
