"""API keys: each belongs to one person, and says what they may reach.

A key names its holder by a pseudonymous subject id (a facilitator's key names their
facilitator id), one role, one organisation (agency) and the regions it covers; an
auditor's or an operator's key may instead be national. An operator's key reaches only
the ledger's deployment-wide routes and the case bundles of its regions. Keys expire, and
can be revoked and rotated.
Only a SHA-256 hash of a key is stored: keys are 256-bit random tokens, so a plain
hash is a sound one-way store (a slow password hash buys nothing against a search
space that large).

Issuing and revoking a key is announced as `key.issued` / `key.revoked` (no key, no
hash, no name) through the identity store's own outbox: the event is saved in the key's
document in the same write, then published to the `identity.events` exchange, whose
events the ledger records. `shared.security.keys` is the command line for all this.
"""
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import mongoengine
from bson import ObjectId
from mongoengine import BooleanField, DateTimeField, Document, ListField, StringField

from shared.events.vocabulary import CODE_PATTERN, SUBJECT_PATTERN
from shared.messaging.outbox import pending_update
from shared.storage.indexes import Index, ensure_indexes

ROLES = ("referrer", "coordinator", "facilitator", "auditor", "operator")
# the roles whose key may be national (every region) instead of covering regions
NATIONAL_ROLES = ("auditor", "operator")
IDENTITY_ALIAS = "identity"
KEY_PREFIX = "amk_"
DEFAULT_LIFETIME = timedelta(days=90)
MAX_LIFETIME = timedelta(days=366)


class KeyRefused(ValueError):
    """A key that cannot be issued as asked (the message says why)."""


class ApiKey(Document):
    meta = {
        "db_alias": IDENTITY_ALIAS,
        "collection": "api_keys",
        "auto_create_index": False,  # INDEXES, made by connect_identity
    }
    key_hash = StringField(required=True)
    role = StringField(required=True, choices=ROLES)
    agency = StringField(required=True, regex=CODE_PATTERN)
    label = StringField(required=True, max_length=200)
    # whose key it is: a pseudonymous person id (a facilitator key: the facilitator's id)
    subject = StringField(regex=SUBJECT_PATTERN)
    regions = ListField(StringField(regex=CODE_PATTERN))
    national = BooleanField(default=False)  # an auditor seeing every region
    active = BooleanField(default=True)
    created_at = DateTimeField(default=lambda: datetime.now(timezone.utc))
    issued_by = StringField()
    expires_at = DateTimeField()
    revoked_at = DateTimeField()
    revoked_by = StringField()
    revoke_reason = StringField()
    replaces = StringField()      # the key id this one rotated out
    replaced_by = StringField()   # the key id that rotated this one out
    outbox = ListField(mongoengine.DictField())
    outbox_pending = BooleanField()  # set with the outbox: what the relay timer looks for


@dataclass(frozen=True)
class Principal:
    """Who is calling: a person (subject) acting in a role, for an agency, over regions."""
    role: str
    agency: str
    key_id: str
    subject: str = None
    regions: frozenset = frozenset()
    national: bool = False

    def covers(self, region):
        """Whether this person's regions include `region`."""
        return self.national or region in self.regions

    @property
    def who(self):
        """How the person is named in access logs and case histories: pseudonymous."""
        return f"{self.role}:{self.subject}"


def hash_key(key):
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _now():
    return datetime.now(timezone.utc)


def _aware(moment):
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def check_request(role, agency, subject, regions, national):
    """Why a key with these attributes may not be issued, or None."""
    if role not in ROLES:
        return f"role must be one of {', '.join(ROLES)}"
    if not re.match(CODE_PATTERN, agency or ""):
        return "agency must be a code (lower-case letters, digits, '-', '_' or '.')"
    if not subject or not re.match(SUBJECT_PATTERN, subject):
        return "every key belongs to one person: give their pseudonymous subject id"
    if any(not re.match(CODE_PATTERN, r) for r in regions):
        return "regions must be codes (lower-case letters, digits, '-', '_' or '.')"
    if national and role not in NATIONAL_ROLES:
        return "only an auditor's or an operator's key may be national"
    if not national and not regions:
        return "a key must cover at least one region (or, for an auditor or operator, be national)"
    return None


def issue(role, agency, label, subject=None, regions=(), national=False, by="operator:unknown",
          lifetime=DEFAULT_LIFETIME, replaces=None, events=None):
    """Create a key and return (the plain key, its record); the plain key is shown once
    and never stored. `events(record)` gives the events to keep in the key's outbox,
    saved in the same insert as the key (see `shared.security.keys`)."""
    problem = check_request(role, agency, subject, list(regions), national)
    if problem:
        raise KeyRefused(problem)
    if not timedelta(0) < lifetime <= MAX_LIFETIME:
        raise KeyRefused(f"a key lives at most {MAX_LIFETIME.days} days")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    record = ApiKey(id=ObjectId(), key_hash=hash_key(key), role=role, agency=agency, label=label,
                    subject=subject, regions=sorted(set(regions)), national=national, issued_by=by,
                    expires_at=_now() + lifetime, replaces=replaces)
    record.outbox = list(events(record)) if events else []
    record.outbox_pending = True if record.outbox else None
    record.save(force_insert=True)
    return key, record


# the subject of each role's development and test key, where the role has no person in mind
DEV_SUBJECTS = {"referrer": "dev-referrer", "coordinator": "dev-coordinator", "auditor": "dev-auditor",
                "operator": "dev-operator"}


def issue_all(agency, label, facilitator, regions, issue_one=None, roles=ROLES):
    """One key per role of `roles` for `agency` over `regions`: the facilitator key is
    `facilitator`'s, the others belong to each role's development person; the auditor's is
    national, so that it reads the whole ledger (the operator's covers `regions`, as a
    regional operator's would). `issue_one(role, subject, national)` issues a key (by
    default `issue`, which announces nothing)."""
    issue_one = issue_one or (lambda role, subject, national: issue(
        role, agency, f"{label} {role}", subject=subject, regions=regions, national=national)[0])
    return {role: issue_one(role, facilitator if role == "facilitator" else DEV_SUBJECTS[role], role == "auditor")
            for role in roles}


def lookup(key, now=None):
    """The Principal for a presented key, or None if it is malformed, unknown, expired or
    revoked (the caller is not told which)."""
    if not key or not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    record = ApiKey.objects(key_hash=hash_key(key)).first()
    if record is None or not usable(record, now):
        return None
    return Principal(role=record.role, agency=record.agency, key_id=str(record.pk), subject=record.subject,
                     regions=frozenset(record.regions or ()), national=bool(record.national))


def usable(record, now=None):
    now = now or _now()
    if not record.active or record.revoked_at is not None or not record.subject:
        return False  # a key that names nobody (issued before keys named people) acts for nobody
    return record.expires_at is not None and _aware(record.expires_at) > now


def record_revocation(record, replaced_by, event):
    """Store a revocation (already set on `record`) and its event in one write; a key
    revoked meanwhile is left as it was."""
    added = pending_update([event])
    keys_collection().update_one({"_id": record.pk, "revoked_at": None}, {
        "$set": {"revoked_at": record.revoked_at, "revoked_by": record.revoked_by,
                 "revoke_reason": record.revoke_reason, "replaced_by": replaced_by, **added["$set"]},
        "$push": added["$push"]})


def keys_collection():
    """The keys' collection, for the outbox relay."""
    return ApiKey._get_collection()


INDEXES = {"api_keys": [Index("key_hash", unique=True), Index("subject"), Index("outbox_pending", sparse=True)]}


def connect_identity(settings, indexed=True):
    """Register the identity database with mongoengine and return it; with `indexed`,
    make its indexes first (and their GIN twins, on FerretDB on PostgreSQL). Only the
    operators' tools index it, as the identity store's own role; a service's Authenticator
    connects with `indexed=False`, as a role that may read the keys and nothing more."""
    mongoengine.connect(
        db=f"{settings.db_prefix}_identity",
        alias=IDENTITY_ALIAS,
        host=settings.mongo_uri,
        uuidRepresentation="standard",
        tz_aware=True,
        connect=False,
    )
    db = mongoengine.get_db(IDENTITY_ALIAS)
    if indexed:
        ensure_indexes(db, INDEXES, settings.ferretdb_postgresql_url)
    return db
