"""Personal data at rest: envelope encryption with one data key per person.

Each participant (and each referring officer) gets a random AES-256-GCM data key,
stored only wrapped by the master key from AMENDS_MASTER_KEY. Destroying a person's
wrapped key makes every copy of their ciphertext unreadable (crypto-shredding),
without touching the case document or the events that refer to them.
"""
import base64
import hashlib
import hmac
import json
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class MasterKeyMissing(RuntimeError):
    pass


def load_master_key(text=None):
    text = text if text is not None else os.environ.get("AMENDS_MASTER_KEY", "")
    try:
        key = base64.urlsafe_b64decode(text.encode())
    except ValueError:
        key = b""
    if len(key) != 32:
        raise MasterKeyMissing("AMENDS_MASTER_KEY must be 32 random bytes, urlsafe-base64 encoded")
    return key


def new_master_key():
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode()


class Vault:
    """Encrypts and decrypts one person's data under their own data key."""

    def __init__(self, master_key):
        self._master = AESGCM(master_key)
        # a separate key for fingerprints, so no hash of personal data can be tested by guessing
        self._fingerprint_key = hmac.new(master_key, b"amends-fingerprint-v1", hashlib.sha256).digest()

    def fingerprint(self, label, text):
        """A keyed hash of `text`: equal texts match, and nobody without the master key can
        check a guess against it. Used for idempotency keys and request bodies."""
        return hmac.new(self._fingerprint_key, f"{label}\n{text}".encode(), hashlib.sha256).hexdigest()

    def new_data_key(self, owner_id):
        """A fresh data key for `owner_id`: (plain key, wrapped key to store)."""
        key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(12)
        wrapped = nonce + self._master.encrypt(nonce, key, owner_id.encode())
        return key, wrapped

    def unwrap(self, owner_id, wrapped):
        return self._master.decrypt(wrapped[:12], wrapped[12:], owner_id.encode())

    @staticmethod
    def seal(data_key, owner_id, payload):
        """`payload` encrypted and bound to its owner, as base64 text for storage."""
        nonce = os.urandom(12)
        blob = AESGCM(data_key).encrypt(nonce, json.dumps(payload).encode(), owner_id.encode())
        return base64.b64encode(nonce + blob).decode()

    @staticmethod
    def open(data_key, owner_id, sealed):
        raw = base64.b64decode(sealed)
        return json.loads(AESGCM(data_key).decrypt(raw[:12], raw[12:], owner_id.encode()))
