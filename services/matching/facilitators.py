"""The facilitator registry and atomic capacity reservation (mongoengine).

FerretDB has no transactions, so a reservation is one conditional update on the
facilitator's own document: it succeeds only while spare capacity remains and the
case is not already on their caseload. Competing matching processes can never push
a facilitator over capacity, and a redelivered event cannot book the same case twice.
"""
from datetime import date, datetime, timezone

from mongoengine import BooleanField, DateField, DateTimeField, Document, IntField, ListField, StringField

from services.matching.allocation import LEVELS, Candidate

ALIAS = "matching"


class Facilitator(Document):
    meta = {"db_alias": ALIAS, "collection": "facilitators", "indexes": ["regions", "caseload"]}
    facilitator_id = StringField(primary_key=True)
    level = StringField(required=True, choices=LEVELS)
    regions = ListField(StringField(), required=True)
    languages = ListField(StringField(), required=True)
    endorsements = ListField(StringField())
    capacity = IntField(required=True, min_value=0)
    spare = IntField(required=True, min_value=0)
    caseload = ListField(StringField())
    last_active = DateField(required=True)
    active = BooleanField(default=True)
    updated_at = DateTimeField(default=lambda: datetime.now(timezone.utc))

    def candidate(self):
        last = self.last_active if isinstance(self.last_active, date) else date.fromisoformat(str(self.last_active))
        return Candidate(
            facilitator_id=self.facilitator_id,
            level=self.level,
            regions=frozenset(self.regions),
            languages=frozenset(self.languages),
            endorsements=frozenset(self.endorsements),
            spare=self.spare,
            last_active=last,
            active=self.active,
        )


def candidates_in(region):
    return [f.candidate() for f in Facilitator.objects(active=True, spare__gt=0, regions=region)]


def holder_of(case_id):
    """The facilitator already holding `case_id`, after a crash between reserve and save."""
    return Facilitator.objects(caseload=case_id).first()


def reserve(facilitator_id, case_id):
    """Take one unit of the facilitator's capacity for `case_id`; False if none is left."""
    result = Facilitator._get_collection().update_one(
        {"_id": facilitator_id, "active": True, "spare": {"$gt": 0}, "caseload": {"$ne": case_id}},
        {"$inc": {"spare": -1}, "$push": {"caseload": case_id}},
    )
    return result.modified_count == 1


def register(record):
    """Create or replace a facilitator from a plain dict (used by the seed command)."""
    existing = Facilitator.objects(facilitator_id=record["facilitator_id"]).first()
    caseload = existing.caseload if existing else []
    Facilitator(
        facilitator_id=record["facilitator_id"],
        level=record["level"],
        regions=record["regions"],
        languages=record["languages"],
        endorsements=record.get("endorsements", []),
        capacity=record["capacity"],
        spare=max(record["capacity"] - len(caseload), 0),
        caseload=caseload,
        last_active=date.fromisoformat(str(record["last_active"])),
        active=record.get("active", True),
    ).save()
