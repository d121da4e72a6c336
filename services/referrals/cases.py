"""Storage of cases, their sealed personal data and the contact-access log (mongoengine).

A case document holds the case, the participants' pseudonymous ids and attributes,
their personal data sealed under each person's own key, and the outbox of events the
last change caused: saving it is the single write that makes a change and its events
durable together.
"""
from datetime import datetime, timezone

from mongoengine import (
    BinaryField,
    BooleanField,
    DateTimeField,
    DictField,
    Document,
    ListField,
    StringField,
)

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
        "indexes": ["agency", "status", "region", "participants.party_id", "referrer.party_id"],
    }
    case_id = StringField(primary_key=True)
    status = StringField(required=True)
    agency = StringField(required=True)
    region = StringField(required=True)
    attributes = DictField(required=True)
    referrer = DictField(required=True)       # party_id, sealed
    participants = ListField(DictField())     # party_id, role, attributes, sealed
    sensitive = DictField(required=True)      # owner_id, sealed: crime reference and offence date
    outbox = ListField(DictField())
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    def party(self, party_id):
        if self.referrer.get("party_id") == party_id:
            return dict(self.referrer, role="referrer")
        return next((p for p in self.participants if p["party_id"] == party_id), None)


class ContactAccess(Document):
    """Every request for a person's contact details, granted or refused: who, what, when, why."""
    meta = {"db_alias": ALIAS, "collection": "contact_access_log", "indexes": ["party_id", "case_id"]}
    party_id = StringField(required=True)
    case_id = StringField()
    purpose = StringField(required=True)
    requester = StringField(required=True)
    granted = BooleanField(required=True)
    reason = StringField(required=True)
    fields_released = ListField(StringField())
    correlationid = StringField()
    at = DateTimeField(default=utcnow)


def seal_person(vault, person):
    key, wrapped = vault.new_data_key(person.party_id)
    DataKey(owner_id=person.party_id, wrapped=wrapped).save(force_insert=True)
    return vault.seal(key, person.party_id, person.personal)


def unseal(vault, owner_id, sealed):
    """A person's personal data, or None once their key has been destroyed."""
    record = DataKey.objects(owner_id=owner_id).first()
    if record is None:
        return None
    return vault.open(vault.unwrap(owner_id, record.wrapped), owner_id, sealed)


def open_case(referral, vault, received_event):
    """A new, unsaved Case for `referral`, with `received_event` in its outbox."""
    sensitive_owner = f"{referral.case_id}-record"
    key, wrapped = vault.new_data_key(sensitive_owner)
    DataKey(owner_id=sensitive_owner, wrapped=wrapped).save(force_insert=True)
    return Case(
        case_id=referral.case_id,
        status="RECEIVED",
        agency=referral.agency,
        region=referral.region,
        attributes=referral.attributes,
        referrer={"party_id": referral.referrer.party_id, "sealed": seal_person(vault, referral.referrer)},
        participants=[
            {
                "party_id": p.party_id,
                "role": p.role,
                "attributes": p.attributes,
                "sealed": seal_person(vault, p),
            }
            for p in referral.participants
        ],
        sensitive={"owner_id": sensitive_owner, "sealed": vault.seal(key, sensitive_owner, referral.sensitive)},
        outbox=[received_event],
    )
