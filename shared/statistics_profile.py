"""The statistics profile: what of a case event may leave its region.

A region's events carry pseudonymous ids (case, participant, referrer, facilitator), and
those never leave the region's broker and database. What the national view receives is
a *statistic*: five fields, each from a closed vocabulary, and an id that names no event:

    event_type        the event's type, for the types listed in EXPORTED below
    region            the region (deployment) it happened in: AMENDS_REGION
    offence_category  the case's offence category (from its referral)
    week              the ISO week the event happened in, e.g. "2026-W49"
    outcome_class     a coarse class of the event's outcome, where it has one (else null)

`statistic_id` is an HMAC of the event id under a key the region keeps, so a redelivered
event gives the same statistic (the national side counts each once) while nobody outside
the region can link a statistic to an event, a case or a ledger entry.

This module is the profile; the agencies' `statistics` entitlement uses the same rules.
"""
import base64
import binascii
import hashlib
import hmac
from datetime import datetime

from marshmallow import Schema, ValidationError, fields, validate

from shared.events.vocabulary import CLOSURE_REASONS, CODE, OFFENCE_CATEGORIES

PROFILE_VERSION = 1

# Case events whose kind is worth counting nationally. Identity events (key.issued,
# key.revoked) are about people's access, not cases, and stay in the region.
EXPORTED = (
    "referral.received",
    "case.assessed", "case.needs_review",
    "facilitator.assigned", "assignment.waitlisted", "assignment.accepted", "assignment.declined",
    "facilitator.released",
    "case.status_changed", "case.deadline_due", "case.deadline_missed",
    "consent.recorded", "consent.withdrawn",
    "preparation.contact_recorded", "risk.assessed", "case.safety_decided", "case.supervision_decided",
    "voice.item_recorded", "voice.item_released", "intervention.chosen",
    "session.scheduled", "session.changed", "session.cancelled", "session.held",
    "agreement.recorded", "agreement.item_due", "agreement.item_completed", "agreement.item_waived",
    "agreement.item_missed",
    "case.outcome_recorded", "case.closed",
    "survey.requested", "survey.answered",
    "support.referral_recorded",
    "notification.sent", "notification.suppressed", "notification.failed", "notification.deferred",
    "participant.erased", "participant.reduced_to_statistics",
)

# A closed case's reason, in the classes the standard RJ measures use.
CLOSURE_CLASSES = {
    "completed_direct": "completed",
    "completed_indirect": "completed",
    "partial": "partial",
    "harmed_declined": "declined",
    "harmer_declined": "declined",
    "no_contact": "no_contact",
    "consent_withdrawn": "declined",
    "not_suitable": "not_suitable",
    "safety_stop": "stopped",
    "terminated_reoffence": "stopped",
    "terminated_noncompliance": "stopped",
    "referred_to_specialist": "referred_on",
}
assert set(CLOSURE_CLASSES) == set(CLOSURE_REASONS), "every closure reason needs its class"

PROCESS_CLASSES = {
    "direct_conference": "direct", "group_conference": "direct", "youth_panel": "direct",
    "shuttle": "indirect", "letter_exchange": "indirect",
}


def _deadline_class(data):
    # which Victims' Code clock: a deadline is the measure (1 or 5 working days)
    return data.get("deadline")


# event type -> how to read its outcome class from `data` (types not listed have none)
OUTCOME_CLASS = {
    "case.assessed": lambda data: data.get("decision"),
    "case.needs_review": lambda data: data.get("decision"),
    "case.closed": lambda data: CLOSURE_CLASSES.get(data.get("reason")),
    "case.outcome_recorded": lambda data: data.get("outcome"),
    "case.safety_decided": lambda data: data.get("decision"),
    "intervention.chosen": lambda data: PROCESS_CLASSES.get(data.get("process_type")),
    "case.deadline_due": _deadline_class,
    "case.deadline_missed": _deadline_class,
}

FIELDS = ("statistic_id", "profile_version", "event_type", "region", "offence_category", "week", "outcome_class")


class Statistic(Schema):
    """What crosses to the national view, and all of it. `load` refuses anything else."""

    class Meta:
        # an unknown field is refused, never carried along
        unknown = "raise"

    statistic_id = fields.Str(required=True, validate=validate.Regexp(r"^[0-9a-f]{32}$"))
    profile_version = fields.Int(required=True, strict=True, validate=validate.Equal(PROFILE_VERSION))
    event_type = fields.Str(required=True, validate=validate.OneOf(EXPORTED))
    region = fields.Str(required=True, validate=[CODE, validate.Length(max=50)])
    offence_category = fields.Str(required=True, allow_none=True, validate=validate.OneOf(OFFENCE_CATEGORIES))
    week = fields.Str(required=True, validate=validate.Regexp(r"^[0-9]{4}-W[0-9]{2}$"))
    outcome_class = fields.Str(required=True, allow_none=True, validate=[CODE, validate.Length(max=50)])


_statistic = Statistic()


class InvalidStatistic(ValueError):
    def __init__(self, errors):
        self.errors = errors
        super().__init__("invalid statistic: " + "; ".join(sorted(errors)))


def validate_statistic(record):
    """`record` if it is a statistic and nothing more; InvalidStatistic (naming the fields
    at fault, never their values) if not."""
    if not isinstance(record, dict):
        raise InvalidStatistic({"_schema": ["not an object"]})
    try:
        _statistic.load(record)
    except ValidationError as error:
        raise InvalidStatistic(error.messages) from None
    return record


def key_from_text(text):
    """The region's statistics key (AMENDS_STATISTICS_KEY): at least 32 bytes, base64."""
    try:
        key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("AMENDS_STATISTICS_KEY is not base64") from None
    if len(key) < 32:
        raise ValueError("AMENDS_STATISTICS_KEY must hold at least 32 bytes")
    return key


def statistic_id(key, event_id):
    return hmac.new(key, event_id.encode(), hashlib.sha256).hexdigest()[:32]


def iso_week(timestamp):
    moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00")) if isinstance(timestamp, str) else timestamp
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def exported(event_type):
    return event_type in EXPORTED


def statistic(event, *, region, offence_category, key):
    """The statistic an event gives, or None for an event the profile keeps in the region.

    `offence_category` is the case's, which only its referral carries: the caller looks it
    up (for `referral.received`, it is in the event itself)."""
    kind = event["type"]
    if not exported(kind):
        return None
    data = event.get("data") or {}
    outcome = OUTCOME_CLASS.get(kind, lambda _: None)(data)
    record = {
        "statistic_id": statistic_id(key, event["id"]),
        "profile_version": PROFILE_VERSION,
        "event_type": kind,
        "region": region,
        "offence_category": offence_category,
        "week": iso_week(event["time"]),
        "outcome_class": outcome,
    }
    return validate_statistic(record)
