"""What a referral is, and how one becomes a case: pure rules, no I/O.

The intake schema is the referral record: the referring agency and officer, the crime
reference, the offence and its stage in the criminal justice process, which side started
it, and the people involved with their roles. Personal data (names, contact details, safe
addresses and contact windows, the crime reference and dates) is kept apart from the
attributes that decisions need, so that only the latter can ever reach the bus.
Fields added after the first release all have defaults, so older bodies still load.
"""
import re
import uuid
from dataclasses import dataclass, field
from datetime import date

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.referrals.deadlines import today_in_london
from shared.events import catalogue

CHANNELS = ("email", "sms", "letter", "phone")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# What the clocks are measured from (catalogue.CLOCK_BASES)
CRIME_REPORTED, REFERRAL_RECEIVED = "crime_reported", "referral_received"
# Dates before this are almost certainly typing errors, and would make the clocks absurd.
EARLIEST_DATE = date(1950, 1, 1)
_code = validate.Regexp(r"^[a-z0-9][a-z0-9_.-]*$", error="Use lower-case letters, digits, '-', '_' or '.'.")
_hhmm = validate.Regexp(r"^([01][0-9]|2[0-3]):[0-5][0-9]$", error="Use 24-hour HH:MM.")
_text = validate.Regexp(r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$", error="Control characters are not allowed.")

# Ids the service hands out; anything else in a path is refused before it reaches the database.
CASE_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
PARTY_ID = re.compile(r"^(p|ref)-[0-9a-f]{32}$")


def _text_field(max_length, **kwargs):
    return fields.Str(validate=[validate.Length(min=1, max=max_length), _text], **kwargs)


def _unique(values):
    if len(set(values)) != len(values):
        raise ValidationError("List each value once.")


def _not_future(value):
    if value < EARLIEST_DATE or value > today_in_london():
        raise ValidationError(f"Must be between {EARLIEST_DATE.isoformat()} and today.")


class ContactSchema(Schema):
    email = fields.Email(validate=validate.Length(max=254))
    phone = fields.Str(validate=validate.Regexp(r"^\+?[0-9 ()-]{7,20}$", error="Not a valid phone number."))
    address = _text_field(500)


class ContactWindowSchema(Schema):
    """When it is safe to contact someone, in Europe/London local time."""
    days = fields.List(fields.Str(validate=validate.OneOf(DAYS)), required=True,
                       validate=[validate.Length(min=1, max=7), _unique])
    start = fields.Str(required=True, validate=_hhmm)
    end = fields.Str(required=True, validate=_hhmm)

    @validates_schema
    def start_before_end(self, data, **kwargs):
        if data.get("start") and data.get("end") and data["start"] >= data["end"]:
            raise ValidationError("The window must end after it starts.", "end")


class ReferrerSchema(Schema):
    officer_name = _text_field(200, required=True)
    role_title = _text_field(200)
    team = _text_field(200)
    language = fields.Str(load_default="en", validate=validate.OneOf(catalogue.LANGUAGES))
    contact = fields.Nested(ContactSchema, required=True)

    @validates_schema
    def needs_email(self, data, **kwargs):
        if not data.get("contact", {}).get("email"):
            raise ValidationError("The referrer needs an email address.", "contact")


class ParticipantSchema(Schema):
    role = fields.Str(required=True, validate=validate.OneOf(catalogue.ROLES))
    name = _text_field(200, required=True)
    age_band = fields.Str(required=True, validate=validate.OneOf(catalogue.AGE_BANDS))
    language = fields.Str(load_default="en", validate=validate.OneOf(catalogue.LANGUAGES))
    contact = fields.Nested(ContactSchema, load_default=dict)
    preferred_channels = fields.List(fields.Str(validate=validate.OneOf(CHANNELS)), load_default=list,
                                     validate=_unique)
    # Empty: any time. Otherwise contact only inside one of these windows.
    safe_contact_windows = fields.List(fields.Nested(ContactWindowSchema), load_default=list,
                                       validate=validate.Length(max=14))
    # Addresses a letter may safely go to; a letter goes nowhere else.
    safe_addresses = fields.List(_text_field(500), load_default=list, validate=validate.Length(max=5))
    # A safeguarding flag: false forbids any contact with this person.
    contact_safe = fields.Bool(load_default=True)
    access_needs = fields.List(fields.Str(validate=[_code, validate.Length(max=50)]), load_default=list,
                               validate=validate.Length(max=20))


class OffenceSchema(Schema):
    category = fields.Str(required=True, validate=validate.OneOf(catalogue.OFFENCE_CATEGORIES))
    date = fields.Date(required=True, validate=_not_future)


class ReferralSchema(Schema):
    referrer = fields.Nested(ReferrerSchema, required=True)
    crime_reference = _text_field(50, required=True)
    offence = fields.Nested(OffenceSchema, required=True)
    # When the victim reported the crime: the Victims' Code clocks start here. Optional (a
    # self-referral, a crime never reported): without it the clocks are measured from the day
    # the referral is received, and the case says so (`measured_from`), never hiding it.
    crime_reported_on = fields.Date(validate=_not_future, metadata={"description": (
        "the day the victim reported the crime, from which the Victims' Code clocks run. Optional: without it "
        "they run from the day the referral is received and the case shows `measured_from: referral_received`")})
    cjs_stage = fields.Str(required=True, validate=validate.OneOf(catalogue.CJS_STAGES))
    initiated_by = fields.Str(required=True, validate=validate.OneOf(("harmed", "harmer")))
    harmer_accepts_responsibility = fields.Bool(required=True)
    flags = fields.List(fields.Str(validate=validate.OneOf(catalogue.FLAGS)), load_default=list)
    region = fields.Str(required=True, validate=[_code, validate.Length(max=50)], metadata={"description": (
        "the referral region (police-force area) code; it must be one this deployment serves (AMENDS_REGIONS, "
        "services/referrals/residency.py): any other is a 400 naming `region`, and nothing is stored")})
    participants = fields.List(fields.Nested(ParticipantSchema), required=True, validate=validate.Length(min=2, max=20))

    @validates_schema
    def needs_both_parties(self, data, **kwargs):
        roles = {p["role"] for p in data.get("participants", [])}
        missing = [r for r in ("harmed", "harmer") if r not in roles]
        if missing:
            raise ValidationError(f"A referral needs at least one {' and one '.join(missing)} participant.", "participants")

    @validates_schema
    def reported_after_offence(self, data, **kwargs):
        reported, offence = data.get("crime_reported_on"), data.get("offence", {}).get("date")
        if reported and offence and reported < offence:
            raise ValidationError("The crime cannot be reported before it happened.", "crime_reported_on")


class InvalidReferral(ValueError):
    def __init__(self, errors):
        self.errors = errors
        super().__init__("invalid referral")


@dataclass
class Person:
    """Someone on a case. `personal` is what identifies or reaches them; it is stored
    encrypted and never leaves the referrals service except through `get_contact`
    or to a role entitled to it."""
    party_id: str
    role: str
    personal: dict
    attributes: dict = field(default_factory=dict)
    contact_safe: bool = True


@dataclass
class Referral:
    case_id: str
    agency: str
    region: str
    referrer: Person
    participants: list
    attributes: dict
    sensitive: dict
    reported_on: date       # the day the clocks are measured from
    measured_from: str      # crime_reported | referral_received (catalogue.CLOCK_BASES)

    @property
    def enhanced_rights(self):
        return "enhanced_rights_victim" in self.attributes["flags"]

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


def load(body):
    """The validated body; raise InvalidReferral naming every field at fault."""
    try:
        return ReferralSchema().load(body)
    except ValidationError as exc:
        raise InvalidReferral(exc.messages) from None


def parse(body, agency, case_id=None, today=None):
    """Validate a referral body and split it into a Referral; raise InvalidReferral."""
    data = load(body)
    referrer_data = data["referrer"]
    referrer = Person(
        party_id=new_party_id("ref"),
        role="referrer",
        personal={
            "name": referrer_data["officer_name"],
            "contact": referrer_data["contact"],
            **{k: referrer_data[k] for k in ("role_title", "team") if k in referrer_data},
        },
        attributes={"language": referrer_data["language"]},
    )
    participants = [
        Person(
            party_id=new_party_id("p"),
            role=p["role"],
            personal={
                "name": p["name"],
                "contact": p["contact"],
                "preferred_channels": p["preferred_channels"],
                "safe_contact_windows": p["safe_contact_windows"],
                "safe_addresses": p["safe_addresses"],
            },
            attributes={
                "age_band": p["age_band"],
                "language": p["language"],
                "access_needs": sorted(set(p["access_needs"])),
            },
            contact_safe=p["contact_safe"],
        )
        for p in data["participants"]
    ]
    given = data.get("crime_reported_on")
    reported_on = given or today or today_in_london()
    return Referral(
        case_id=case_id or str(uuid.uuid4()),
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
            # what the referral said: None when it did not give the date
            "crime_reported_on": given.isoformat() if given else None,
        },
        reported_on=reported_on,
        measured_from=CRIME_REPORTED if given else REFERRAL_RECEIVED,
    )
