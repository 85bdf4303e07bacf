"""The dashboard's browser session: a signed cookie that proves its holder typed a server API key.

Stateless: the cookie is ``<issued>.<nonce>.<signature>``, signed with HMAC-SHA256 keyed by the API key that
signed in, so it never holds the key, survives a server restart and stops working when that key is removed
from ``--api-key`` (or after ``SESSION_MAX_AGE_S``). The CSRF token is a second HMAC of the same nonce: a page
embeds it, forms post it back and the pages' ``fetch`` calls send it as ``X-CSRF-Token``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

COOKIE_NAME = "tunesmith_session"
CSRF_HEADER = b"x-csrf-token"
SESSION_MAX_AGE_S = 12 * 3600


@dataclass(frozen=True)
class Session:
    """A verified session: the CSRF token its pages must send back, and who it is (for alias history)."""

    csrf: str
    actor: str


def _mac(key: str, message: str) -> str:
    return hmac.new(key.encode("utf-8"), message.encode("ascii"), hashlib.sha256).hexdigest()


def issue_cookie(key: str, now: float | None = None) -> str:
    """A new session cookie value for someone who signed in with ``key``."""
    issued = int(time.time() if now is None else now)
    nonce = secrets.token_hex(16)
    payload = f"{issued}.{nonce}"
    return f"{payload}.{_mac(key, 'session.' + payload)}"


def verify_cookie(value: str, keys: list[str], now: float | None = None) -> Session | None:
    """The session a cookie value proves, or None (malformed, forged, expired or signed by a removed key).

    Every key is tried (no early exit), as for the bearer header.
    """
    issued, _, rest = value.partition(".")
    nonce, _, signature = rest.partition(".")
    if not (issued.isdigit() and nonce and signature) or not value.isascii():
        return None
    age = (time.time() if now is None else now) - int(issued)
    if not 0 <= age <= SESSION_MAX_AGE_S:
        return None
    payload = f"{issued}.{nonce}"
    found: Session | None = None
    for key in keys:
        if hmac.compare_digest(signature, _mac(key, "session." + payload)):
            found = Session(csrf=_mac(key, "csrf." + payload), actor=f"dashboard:...{key[-4:]}")
    return found


def cookie_value(cookie_header: bytes) -> str:
    """The session cookie's value from a raw ``Cookie`` header ('' when absent)."""
    for part in cookie_header.decode("latin-1").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE_NAME:
            return value
    return ""


def csrf_matches(sent: str, session: Session) -> bool:
    """Whether a request carries its session's CSRF token."""
    return bool(sent) and hmac.compare_digest(sent.encode("utf-8"), session.csrf.encode("ascii"))
