"""Sign-in passwords, hashed with Argon2id (argon2-cffi's defaults, RFC 9106's
recommended second profile). A hash names its own parameters, so raising them later
re-hashes each password at its holder's next sign-in (`needs_rehash`)."""
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
_HASHER = PasswordHasher()
# checked against when there is no such account, so that a sign-in for an unknown name
# takes as long as one for a known name with a wrong password
_DECOY = _HASHER.hash(secrets.token_urlsafe(16))


def hash_password(password):
    if len(password) < MIN_LENGTH:
        raise ValueError(f"a password needs at least {MIN_LENGTH} characters")
    return _HASHER.hash(password)


def verify(stored_hash, password):
    """Whether `password` matches `stored_hash` (None: no such account; still hashed)."""
    try:
        return _HASHER.verify(stored_hash or _DECOY, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash):
    return _HASHER.check_needs_rehash(stored_hash)


def generate():
    """A new random password, for development accounts."""
    return secrets.token_urlsafe(18)
