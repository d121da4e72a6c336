"""Server-side sessions: pure rules, no I/O.

The browser holds only a random session id (256 bits) in an HttpOnly cookie; the store
keeps a SHA-256 of it (a copy of the database opens no session), the account, the
session's CSRF token and its expiry. A session ends at sign-out or when it expires,
whichever comes first; signing in always starts a new one (no fixation).
"""
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

COOKIE = "amends_console_session"
# the sign-in form's own CSRF token, before there is a session: a cookie matched by a field
SIGN_IN_COOKIE = "amends_console_signin"
LANGUAGE_COOKIE = "amends_console_lang"
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class Session:
    id_hash: str
    username: str
    csrf_token: str
    created_at: datetime
    expires_at: datetime

    def expired(self, now):
        return now >= self.expires_at


def id_hash(session_id):
    return hashlib.sha256(session_id.encode()).hexdigest()


def start(username, lifetime, now=None):
    """(the session id for the cookie, the Session to store)."""
    now = now or datetime.now(timezone.utc)
    session_id = secrets.token_urlsafe(32)
    return session_id, Session(id_hash(session_id), username, secrets.token_urlsafe(32), now, now + lifetime)


def token_matches(expected, given):
    """A CSRF check in constant time; a missing token never matches."""
    return bool(expected) and bool(given) and hmac.compare_digest(expected.encode(), given.encode())


def cookie_options(secure, max_age=None):
    """What every console cookie is set with: never readable by scripts, not sent on
    requests other sites start (Lax: a link from elsewhere still arrives signed in, a
    form posted from elsewhere does not), Secure outside development."""
    options = {"httponly": True, "samesite": "Lax", "secure": secure, "path": "/"}
    if max_age is not None:
        options["max_age"] = int(max_age.total_seconds()) if isinstance(max_age, timedelta) else max_age
    return options
