"""Storage of cases, their changes, sealed personal data and the access log.

A case document holds the case, the participants' pseudonymous ids and attributes,
their personal data sealed under each person's own key, and (when it is first saved)
the referral.received event in its outbox.

Every later change is one insert of a CaseChange whose _id is (case, next version):
the unique _id lets exactly one writer make each version, and the change holds both
the new values of the fields it changes and the events it causes, so the change and its
events become durable in one single-document write. The case document is then brought
up to date from it (a projection). Readers roll a case forward over any change the
projection has not caught up with, so a crash between the two writes, or two
projections overtaking each other, never shows a reader an old state.

Why not a conditional update of the case document: FerretDB 1.24 on SQLite does not
apply `update_one` with a filter atomically. Ten concurrent updates filtered on the
same status can all report a modification while only the last write survives.
Unique-key inserts are the one primitive it makes atomic.
"""
import os
import uuid
from datetime import datetime, timezone

from mongoengine.errors import NotUniqueError
from pymongo.errors import DuplicateKeyError

from mongoengine import (
    BinaryField,
    BooleanField,
    DateTimeField,
    DictField,
    Document,
    IntField,
    ListField,
    StringField,
)

from shared.security import access

ALIAS = "referrals"


def utcnow():
    return datetime.now(timezone.utc)


class DataKey(Document):
    """A person's data key, wrapped by the master key. Deleting it shreds their data."""
    meta = {"db_alias": ALIAS, "collection": "data_keys"}
    owner_id = StringField(primary_key=True)
    wrapped = BinaryField(required=True)
    created_at = DateTimeField(default=utcnow)


class Case(Document):
    meta = {
        "db_alias": ALIAS,
        "collection": "cases",
        "indexes": ["agency", "status", "region", "participants.party_id", "referrer.party_id", "deadline_notice_at",
                    "facilitators"],
    }
    case_id = StringField(primary_key=True)
    status = StringField(required=True)
    held_from = StringField()                 # the state to resume after ON_HOLD
    agency = StringField(required=True)
    region = StringField(required=True)
    attributes = DictField(required=True)
    referrer = DictField(required=True)       # party_id, attributes, sealed
    participants = ListField(DictField())     # party_id, role, attributes, contact_safe, sealed, erased_at
    sensitive = DictField(required=True)      # owner_id, sealed: crime reference and dates
    history = ListField(DictField())          # from, to, reason, at, by
    closure = DictField()                     # reason, at
    consents = ListField(DictField())         # appended only; the latest per key is in force
    # the Victims' Code clock: when the victim must have been told about RJ
    deadline = DictField()                    # deadline, last_day, enhanced_rights
    deadline_notice_at = DateTimeField()
    deadline_due_at = DateTimeField()
    deadline_due_sent = BooleanField(default=False)
    deadline_missed_sent = BooleanField(default=False)
    victim_told_at = DateTimeField()
    # who holds the case, followed from matching's events (never asked on a read):
    # assignment id -> {facilitator_id, state: offered | accepted | ended}
    staffing = DictField()
    offered_to = ListField(StringField())     # derived from staffing: an open offer
    held_by = ListField(StringField())        # derived from staffing: an accepted assignment
    facilitators = ListField(StringField())   # offered_to and held_by: what a facilitator's listing reads
    version = IntField(default=0)             # of the last CaseChange applied to this document
    # a keyed hash of the body, when the case was opened with an Idempotency-Key (never the body)
    intake_fingerprint = StringField()
    outbox = ListField(DictField())
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    @property
    def relation(self):
        return access.CaseRelation(agency=self.agency, region=self.region, offered_to=frozenset(self.offered_to),
                                   held_by=frozenset(self.held_by))

    def party(self, party_id):
        if self.referrer.get("party_id") == party_id:
            return dict(self.referrer, role="referrer")
        return next((p for p in self.participants if p["party_id"] == party_id), None)


class CaseChange(Document):
    """One change to one case: the fields it sets, and the events it causes (its outbox)."""
    meta = {"db_alias": ALIAS, "collection": "case_changes", "indexes": ["case_id"]}
    change_id = StringField(primary_key=True)  # change_key(case_id, version): unique per version
    case_id = StringField(required=True)
    version = IntField(required=True)
    state = DictField(required=True)
    by = StringField()
    at = DateTimeField(default=utcnow)
    outbox = ListField(DictField())


def change_key(case_id, version):
    return f"{case_id}:{version:09d}"


class ContactAccess(Document):
    """Every request for a person's personal data, granted or refused: who, what, when, why."""
    meta = {"db_alias": ALIAS, "collection": "contact_access_log", "indexes": ["party_id", "case_id"]}
    party_id = StringField(required=True)
    case_id = StringField()
    purpose = StringField(required=True)
    requester = StringField(required=True)    # who: a service, or a person as role:subject
    key_id = StringField()                    # the API key a person used
    granted = BooleanField(required=True)
    reason = StringField(required=True)
    fields_released = ListField(StringField())
    correlationid = StringField()
    at = DateTimeField(default=utcnow)


def collection():
    return Case._get_collection()


def load(case_id):
    """The case as of its latest change, or None."""
    case = Case.objects(case_id=case_id).first()
    if case is None:
        return None
    pending = CaseChange._get_collection().find(
        {"_id": {"$gt": change_key(case_id, case.version), "$lt": change_key(case_id, 10**9 - 1)}},
        sort=[("_id", 1)])
    caught_up = {}
    for change in pending:
        if change["version"] != case.version + 1:
            break
        for name, value in change["state"].items():
            setattr(case, name, value)
            caught_up[name] = value
        case.version = change["version"]
    if caught_up:
        project(case_id, case.version, caught_up)
    return case


def project(case_id, version, state):
    """Bring the case document up to `version`; a later reader repairs a lost race."""
    collection().update_one({"_id": case_id, "version": {"$lt": version}},
                            {"$set": {**state, "version": version}})


def record_change(case, state, events, by):
    """Make the next version of `case`: the fields in `state` and `events` in one insert.
    None if another writer made that version first (reload and decide again)."""
    version = (case.version or 0) + 1
    state = {**state, "updated_at": utcnow()}
    change = CaseChange(change_id=change_key(case.case_id, version), case_id=case.case_id, version=version,
                        state=state, by=by, outbox=list(events))
    try:
        change.save(force_insert=True)
    except (DuplicateKeyError, NotUniqueError):
        return None
    for name, value in state.items():
        setattr(case, name, value)
    case.version = version
    project(case.case_id, version, state)
    return change


def unseal(vault, owner_id, sealed):
    """A person's personal data, or None once their key has been destroyed."""
    if not sealed:
        return None
    record = DataKey.objects(owner_id=owner_id).first()
    if record is None:
        return None
    return vault.open(vault.unwrap(owner_id, record.wrapped), owner_id, sealed)


def shred(owner_id):
    """Destroy a person's data key: every copy of their ciphertext becomes noise.

    The wrapped key is first overwritten with random bytes, so that a storage engine
    which leaves deleted records in free pages leaves noise there, not the key."""
    keys = DataKey._get_collection()
    keys.update_one({"_id": owner_id}, {"$set": {"wrapped": os.urandom(60)}})
    keys.delete_one({"_id": owner_id})


def open_case(referral, vault, events, clock):
    """A new, unsaved Case for `referral`, with `events` in its outbox. The data keys of
    its people and of its own record are stored first, in one write."""
    keys = {}

    def seal(owner_id, payload):
        key, wrapped = vault.new_data_key(owner_id)
        keys[owner_id] = wrapped
        return vault.seal(key, owner_id, payload)

    # unique per attempt, so two attempts at one case id never share (or shred) a key
    sensitive_owner = f"{referral.case_id}-record-{uuid.uuid4().hex[:12]}"
    case = Case(
        case_id=referral.case_id,
        status="RECEIVED",
        agency=referral.agency,
        region=referral.region,
        attributes=referral.attributes,
        referrer={"party_id": referral.referrer.party_id, "attributes": referral.referrer.attributes,
                  "sealed": seal(referral.referrer.party_id, referral.referrer.personal)},
        participants=[
            {
                "party_id": p.party_id,
                "role": p.role,
                "attributes": p.attributes,
                "contact_safe": p.contact_safe,
                "sealed": seal(p.party_id, p.personal),
            }
            for p in referral.participants
        ],
        sensitive={"owner_id": sensitive_owner, "sealed": seal(sensitive_owner, referral.sensitive)},
        deadline={"deadline": clock.deadline, "last_day": clock.last_day.isoformat(),
                  "enhanced_rights": clock.enhanced_rights},
        deadline_notice_at=clock.notice_at,
        deadline_due_at=clock.due_at,
        outbox=list(events),
    )
    now = utcnow()
    DataKey._get_collection().insert_many(
        [{"_id": owner, "wrapped": wrapped, "created_at": now} for owner, wrapped in keys.items()], ordered=True)
    return case
