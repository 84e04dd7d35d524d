"""Meta signs every webhook POST with the app secret: ``X-Hub-Signature-256: sha256=<hex>``.

The check runs on the raw bytes, before anything parses them, and compares in
constant time so the response time says nothing about how much of a forged
signature was right.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Hub-Signature-256"
_PREFIX = "sha256="


def sign(body: bytes, app_secret: str) -> str:
    """The header value Meta would send for ``body`` (also what the tests send)."""
    return _PREFIX + hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def is_valid(body: bytes, header: str, app_secret: str) -> bool:
    expected = sign(body, app_secret).encode("ascii")
    # Header values arrive as latin-1 text; anything else in them simply does not match.
    supplied = header.strip().encode("latin-1", "replace")
    if supplied[: len(_PREFIX)].lower() == _PREFIX.encode():
        supplied = _PREFIX.encode() + supplied[len(_PREFIX):].lower()
    return hmac.compare_digest(expected, supplied)
