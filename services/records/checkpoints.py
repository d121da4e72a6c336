"""Signed tree heads: C2SP tlog-checkpoint bodies, signed as C2SP signed-notes with
Ed25519 (signature type 0x01). Pure: keys come in as strings, nothing is stored here.

    checkpoint  = origin "\\n" tree-size-in-decimal "\\n" base64(root hash) "\\n"
    signed note = checkpoint "\\n" "\u2014 " key-name " " base64(key ID || signature) "\\n"
    key ID      = SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4]
    verifier key = key-name "+" hex(key ID) "+" base64(0x01 || public key)
    signer key   = "PRIVATE+KEY+" key-name "+" hex(key ID) "+" base64(0x01 || 32-byte seed)

These are the formats of golang.org/x/mod/sumdb/note, so transparency-log tooling
reads them as they are.
"""
import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ED25519 = 0x01
DASH = "\u2014 "
_NAME = re.compile(r"^[^\s+]+$")


def _canonical_b64(text):
    """Standard base64, in its one canonical spelling: a text whose unused low bits differ
    decodes to the same bytes, so it would let a changed signed note pass as unchanged."""
    raw = base64.b64decode(text, validate=True)
    if base64.b64encode(raw).decode("ascii") != text:
        raise binascii.Error("not canonical base64")
    return raw


class NoteError(ValueError):
    """A key, note or checkpoint that is malformed or does not verify."""


def key_id(name, public_key):
    return struct.unpack(">I", hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public_key).digest()[:4])[0]


def _check_name(name):
    if not name or not _NAME.match(name):
        raise NoteError("a key name must be non-empty, with no spaces or '+'")


@dataclass(frozen=True)
class Verifier:
    name: str
    id: int
    public_key: bytes

    @classmethod
    def parse(cls, text):
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise NoteError("a verifier key is name+hexid+base64key")
        name, hex_id, encoded = parts
        _check_name(name)
        try:
            raw = _canonical_b64(encoded)
            ident = int(hex_id, 16)
        except (binascii.Error, ValueError):
            raise NoteError("the verifier key is not name+hexid+base64key")
        if len(hex_id) != 8 or len(raw) != 33 or raw[0] != ED25519:
            raise NoteError("only Ed25519 verifier keys (type 0x01, 32 bytes) are accepted")
        if key_id(name, raw[1:]) != ident:
            raise NoteError("the verifier key's id does not match its name and key")
        return cls(name, ident, raw[1:])

    def __str__(self):
        return "%s+%08x+%s" % (self.name, self.id, base64.b64encode(bytes([ED25519]) + self.public_key).decode())

    def verify(self, text, signature):
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, text.encode())
            return True
        except InvalidSignature:
            return False


@dataclass(frozen=True)
class Signer:
    name: str
    id: int
    seed: bytes

    @classmethod
    def generate(cls, name):
        _check_name(name)
        seed = Ed25519PrivateKey.generate().private_bytes_raw()
        return cls(name, key_id(name, _public(seed)), seed)

    @classmethod
    def parse(cls, text):
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("a signer key is PRIVATE+KEY+name+hexid+base64key")
        name, hex_id, encoded = parts[2:]
        _check_name(name)
        try:
            raw = _canonical_b64(encoded)
            ident = int(hex_id, 16)
        except (binascii.Error, ValueError):
            raise NoteError("the signer key is not PRIVATE+KEY+name+hexid+base64key")
        if len(raw) != 33 or raw[0] != ED25519:
            raise NoteError("only Ed25519 signer keys (type 0x01, 32-byte seed) are accepted")
        signer = cls(name, ident, raw[1:])
        if key_id(name, signer.public_key) != ident:
            raise NoteError("the signer key's id does not match its name and key")
        return signer

    @property
    def public_key(self):
        return _public(self.seed)

    @property
    def verifier(self):
        return Verifier(self.name, self.id, self.public_key)

    def __str__(self):
        return "PRIVATE+KEY+%s+%08x+%s" % (self.name, self.id, base64.b64encode(bytes([ED25519]) + self.seed).decode())

    def __repr__(self):  # never print the seed by accident
        return "Signer(%r, %08x)" % (self.name, self.id)

    def sign(self, text):
        """The signed note: `text` (ending in a newline), a blank line, our signature line."""
        if not text.endswith("\n"):
            raise NoteError("a note's text ends with a newline")
        signature = Ed25519PrivateKey.from_private_bytes(self.seed).sign(text.encode())
        encoded = base64.b64encode(struct.pack(">I", self.id) + signature).decode()
        return text + "\n" + DASH + self.name + " " + encoded + "\n"


def _public(seed):
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def open_note(note, verifier):
    """The text of `note` if `verifier`'s key signed it; NoteError if not.

    Signatures by other keys are ignored, as signed-note requires; one that claims our
    key's name and id but does not verify rejects the note."""
    if not isinstance(note, str) or any(ord(c) < 0x20 and c != "\n" for c in note):
        raise NoteError("a note is UTF-8 text with no control characters but newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("a note has its text, a blank line, then signature lines")
    text, lines = note[:split + 1], note[split + 2:]
    if not lines.endswith("\n"):
        raise NoteError("the signature lines must end with a newline")
    found = False
    for line in lines[:-1].split("\n"):
        if not line.startswith(DASH):
            raise NoteError("a signature line starts with an em dash and a space")
        name, _, encoded = line[len(DASH):].rpartition(" ")
        try:
            raw = _canonical_b64(encoded)
        except binascii.Error:
            raise NoteError("a signature is not base64")
        if len(raw) < 5:
            raise NoteError("a signature is too short")
        if name != verifier.name or struct.unpack(">I", raw[:4])[0] != verifier.id:
            continue
        if not verifier.verify(text, raw[4:]):
            raise NoteError("the signature by %s does not verify" % verifier.name)
        found = True
    if not found:
        raise NoteError("the note is not signed by %s" % verifier.name)
    return text


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def text(self):
        return "%s\n%d\n%s\n" % (self.origin, self.size, base64.b64encode(self.root).decode())

    @classmethod
    def parse(cls, text):
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise NoteError("a checkpoint is origin, size and root hash, each on its own line")
        origin, size, root = lines[:3]
        if not origin:
            raise NoteError("the checkpoint's origin is empty")
        if not re.fullmatch(r"0|[1-9][0-9]*", size):
            raise NoteError("the checkpoint's tree size is not a decimal number")
        try:
            root_hash = _canonical_b64(root)
        except binascii.Error:
            raise NoteError("the checkpoint's root hash is not base64")
        if len(root_hash) != 32:
            raise NoteError("the checkpoint's root hash is not 32 bytes")
        return cls(origin, int(size), root_hash)


def sign_checkpoint(signer, size, root):
    """A signed checkpoint; the origin is the key's name."""
    return signer.sign(Checkpoint(signer.name, size, root).text())


def open_checkpoint(note, verifier):
    """The Checkpoint of a signed note, once its signature and origin are checked."""
    checkpoint = Checkpoint.parse(open_note(note, verifier))
    if checkpoint.origin != verifier.name:
        raise NoteError("the checkpoint's origin %r is not the key's name %r" % (checkpoint.origin, verifier.name))
    return checkpoint
