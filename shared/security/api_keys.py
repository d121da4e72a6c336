"""API keys: one per agency and role, stored only as a SHA-256 hash. A facilitator's
key also names the facilitator it belongs to (`subject`), so they act on their own
offers only.

Keys are 256-bit random tokens, so a plain SHA-256 is a sound one-way store (a slow
password hash buys nothing against a search space that large). Every service's HTTP
API reads the same identity database, so a key works on all of them alike.
"""
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

import mongoengine
from mongoengine import BooleanField, DateTimeField, Document, StringField

ROLES = ("referrer", "coordinator", "facilitator", "auditor")
IDENTITY_ALIAS = "identity"
KEY_PREFIX = "amk_"


class ApiKey(Document):
    meta = {
        "db_alias": IDENTITY_ALIAS,
        "collection": "api_keys",
        "indexes": [{"fields": ["key_hash"], "unique": True}],
    }
    key_hash = StringField(required=True)
    role = StringField(required=True, choices=ROLES)
    agency = StringField(required=True, regex=r"^[a-z0-9][a-z0-9_.-]*$")
    label = StringField(required=True, max_length=200)
    # whose key it is, where the role acts for one person: the facilitator_id of a facilitator key
    subject = StringField(regex=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
    active = BooleanField(default=True)
    created_at = DateTimeField(default=lambda: datetime.now(timezone.utc))


@dataclass(frozen=True)
class Principal:
    """Who is calling: their role, the agency whose key they hold and, for a facilitator,
    which facilitator they are."""
    role: str
    agency: str
    key_id: str
    subject: str = None


def hash_key(key):
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


# roles whose keys belong to one person, named by the key's subject
PERSONAL_ROLES = ("facilitator",)


def issue(role, agency, label, subject=None):
    """Create a key; the plain key is returned once and never stored. A facilitator key
    must name its facilitator."""
    if role in PERSONAL_ROLES and not subject:
        raise ValueError(f"a {role} key must name whose it is (subject)")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    ApiKey(key_hash=hash_key(key), role=role, agency=agency, label=label, subject=subject).save()
    return key


def issue_all(agency, label, facilitator):
    """One key per role for `agency`, the facilitator key being `facilitator`'s."""
    return {role: issue(role, agency, f"{label} {role}", subject=facilitator if role in PERSONAL_ROLES else None)
            for role in ROLES}


def lookup(key):
    """The Principal for a presented key, or None if it is unknown or revoked."""
    if not key or not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    record = ApiKey.objects(key_hash=hash_key(key), active=True).first()
    if record is None:
        return None
    if record.role in PERSONAL_ROLES and not record.subject:
        return None  # a personal key that names nobody cannot act for anyone
    return Principal(role=record.role, agency=record.agency, key_id=str(record.pk), subject=record.subject)


def connect_identity(settings):
    mongoengine.connect(
        db=f"{settings.db_prefix}_identity",
        alias=IDENTITY_ALIAS,
        host=settings.mongo_uri,
        uuidRepresentation="standard",
        tz_aware=True,
        connect=False,
    )
