"""Webhook secrets sealed at rest.

A webhook secret must be kept whole (each request is signed with it), so it cannot be
hashed like a password. It is sealed instead, with Fernet (from `cryptography`) under a key
derived by HKDF from the service's own key, AMENDS_SUBSCRIPTIONS_KEY, for this one use: a
copy of the database without that key gives no secret away. A sealed value is stored as
`sealed:v1:<token>`; a value stored before sealing began (it starts `whsec_`) is read as
it is, and sealed the next time its subscription is saved.
"""
import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "sealed:v1:"
PURPOSE = b"amends subscriptions: webhook secrets at rest, v1"


class SealBroken(ValueError):
    """A sealed secret does not open with this key (the key changed, or the value was altered)."""


class SecretSeal:
    def __init__(self, service_key):
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=PURPOSE).derive(service_key)
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, secret):
        return PREFIX + self._fernet.encrypt(secret.encode("utf-8")).decode("ascii")

    def open(self, stored):
        if not stored.startswith(PREFIX):
            return stored
        try:
            return self._fernet.decrypt(stored[len(PREFIX):].encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise SealBroken("a webhook secret does not open with AMENDS_SUBSCRIPTIONS_KEY") from None

