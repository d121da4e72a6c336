"""What a referral is, and how one becomes a case: pure rules, no I/O.

The intake schema follows DOMAIN.md. Personal data (names, contact details, crime
reference, offence date) is kept apart from the attributes that decisions need, so
that only the latter can ever reach the bus.
"""
import uuid
from dataclasses import dataclass, field

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from shared.events import catalogue

CHANNELS = ("email", "sms", "letter", "phone")
_code = validate.Regexp(r"^[a-z0-9][a-z0-9_.-]*$", error="Use lower-case letters, digits, '-', '_' or '.'.")


class ContactSchema(Schema):
    email = fields.Email(validate=validate.Length(max=254))
    phone = fields.Str(validate=validate.Regexp(r"^\+?[0-9 ()-]{7,20}$", error="Not a valid phone number."))
    address = fields.Str(validate=validate.Length(min=1, max=500))


class ReferrerSchema(Schema):
    officer_name = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    contact = fields.Nested(ContactSchema, required=True)

    @validates_schema
    def needs_email(self, data, **kwargs):
        if not data.get("contact", {}).get("email"):
            raise ValidationError("The referrer needs an email address.", "contact")


class ParticipantSchema(Schema):
    role = fields.Str(required=True, validate=validate.OneOf(catalogue.ROLES))
    name = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    age_band = fields.Str(required=True, validate=validate.OneOf(catalogue.AGE_BANDS))
    language = fields.Str(load_default="en", validate=validate.OneOf(catalogue.LANGUAGES))
    contact = fields.Nested(ContactSchema, load_default=dict)
    preferred_channels = fields.List(fields.Str(validate=validate.OneOf(CHANNELS)), load_default=list)
    access_needs = fields.List(fields.Str(validate=_code), load_default=list)


class OffenceSchema(Schema):
    category = fields.Str(required=True, validate=validate.OneOf(catalogue.OFFENCE_CATEGORIES))
    date = fields.Date(required=True)


class ReferralSchema(Schema):
    referrer = fields.Nested(ReferrerSchema, required=True)
    crime_reference = fields.Str(required=True, validate=validate.Length(min=1, max=50))
    offence = fields.Nested(OffenceSchema, required=True)
    cjs_stage = fields.Str(required=True, validate=validate.OneOf(catalogue.CJS_STAGES))
    initiated_by = fields.Str(required=True, validate=validate.OneOf(("harmed", "harmer")))
    harmer_accepts_responsibility = fields.Bool(required=True)
    flags = fields.List(fields.Str(validate=validate.OneOf(catalogue.FLAGS)), load_default=list)
    region = fields.Str(required=True, validate=_code)
    participants = fields.List(fields.Nested(ParticipantSchema), required=True, validate=validate.Length(min=2, max=20))

    @validates_schema
    def needs_both_parties(self, data, **kwargs):
        roles = {p["role"] for p in data.get("participants", [])}
        missing = [r for r in ("harmed", "harmer") if r not in roles]
        if missing:
            raise ValidationError(f"A referral needs at least one {' and one '.join(missing)} participant.", "participants")


class InvalidReferral(ValueError):
    def __init__(self, errors):
        self.errors = errors
        super().__init__("invalid referral")


@dataclass
class Person:
    """Someone on a case. `personal` is what identifies or reaches them; it is stored
    encrypted and never leaves the referrals service except through `get_contact`."""
    party_id: str
    role: str
    personal: dict
    attributes: dict = field(default_factory=dict)


@dataclass
class Referral:
    case_id: str
    agency: str
    region: str
    referrer: Person
    participants: list
    attributes: dict
    sensitive: dict

    def received_event_data(self):
        return {
            "case_id": self.case_id,
            "agency": self.agency,
            "referrer_id": self.referrer.party_id,
            "offence_category": self.attributes["offence_category"],
            "cjs_stage": self.attributes["cjs_stage"],
            "initiated_by": self.attributes["initiated_by"],
            "flags": list(self.attributes["flags"]),
            "harmer_accepts_responsibility": self.attributes["harmer_accepts_responsibility"],
            "participants": [
                {"participant_id": p.party_id, "role": p.role, **p.attributes} for p in self.participants
            ],
            "region": self.region,
        }


def new_party_id(prefix):
    return f"{prefix}-{uuid.uuid4().hex}"


def parse(body, agency):
    """Validate a referral body and split it into a Referral; raise InvalidReferral."""
    try:
        data = ReferralSchema().load(body)
    except ValidationError as exc:
        raise InvalidReferral(exc.messages) from None
    referrer = Person(
        party_id=new_party_id("ref"),
        role="referrer",
        personal={"name": data["referrer"]["officer_name"], "contact": data["referrer"]["contact"]},
    )
    participants = [
        Person(
            party_id=new_party_id("p"),
            role=p["role"],
            personal={"name": p["name"], "contact": p["contact"], "preferred_channels": p["preferred_channels"]},
            attributes={
                "age_band": p["age_band"],
                "language": p["language"],
                "access_needs": sorted(set(p["access_needs"])),
            },
        )
        for p in data["participants"]
    ]
    return Referral(
        case_id=str(uuid.uuid4()),
        agency=agency,
        region=data["region"],
        referrer=referrer,
        participants=participants,
        attributes={
            "offence_category": data["offence"]["category"],
            "cjs_stage": data["cjs_stage"],
            "initiated_by": data["initiated_by"],
            "flags": sorted(set(data["flags"])),
            "harmer_accepts_responsibility": data["harmer_accepts_responsibility"],
        },
        sensitive={
            "crime_reference": data["crime_reference"],
            "offence_date": data["offence"]["date"].isoformat(),
        },
    )
