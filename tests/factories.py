"""Realistic test data, built fresh for each test.

No day here is fixed: the samples' days are counted back from the day the tests start,
and `days_ago` and `days_ahead` count from the day they are called, so the data means
the same in any year (a crime a fortnight old, a facilitator current since a month ago).
"""
import copy
import os
from datetime import date, datetime, timedelta, timezone

from marshmallow import fields, validate

from scripts import samples
from shared.events import catalogue, new_event

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# As the demo sends them, days resolved; a run that passes midnight keeps them a day
# older, which every intake rule still accepts.
SAMPLES = samples.load()


def days_ago(days):
    """The day `days` before today, as ISO text."""
    return (date.today() - timedelta(days=days)).isoformat()


def days_ahead(days):
    """The day `days` after today, as ISO text."""
    return (date.today() + timedelta(days=days)).isoformat()


def referral_body(index=0, **changes):
    body = copy.deepcopy(SAMPLES[index])
    body.update(changes)
    return body


def referral_received_data(**changes):
    data = {
        "case_id": "case-1",
        "agency": "south-wales-police",
        "referrer_id": "ref-1",
        "offence_category": "burglary",
        "cjs_stage": "pre_sentence",
        "initiated_by": "harmed",
        "flags": [],
        "harmer_accepts_responsibility": True,
        "participants": [
            {"participant_id": "p-1", "role": "harmed", "age_band": "50_64", "language": "en", "access_needs": []},
            {"participant_id": "p-2", "role": "harmer", "age_band": "25_34", "language": "en", "access_needs": []},
        ],
        "region": "south-wales",
    }
    data.update(changes)
    return data


def full_referral_body(**changes):
    """A referral using every field of the intake record, for tests that need them."""
    body = referral_body(1)
    body["crime_reported_on"] = body["offence"]["date"]   # reported the day it happened
    body["referrer"].update(role_title="YOT officer", team="Cardiff YOT", language="cy")
    harmed, harmer, adult = body["participants"]
    harmed.update(preferred_channels=["email", "letter"], safe_addresses=["Siop y Gornel, Heol y Frenhines, Caerdydd"],
                  safe_contact_windows=[{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}])
    harmer.update(contact_safe=True, safe_addresses=["c/o YOT, Cardiff"])
    body["participants"].append({"role": "interpreter", "name": "Ieuan Ifans", "age_band": "35_49", "language": "cy",
                                 "contact": {"email": "ieuan@interpreters.example"}, "preferred_channels": ["email"]})
    body["participants"].append({"role": "supporter", "name": "Nia Hughes", "age_band": "35_49", "language": "cy",
                                 "contact": {"phone": "+44 7700 900999"}, "preferred_channels": ["sms"],
                                 "access_needs": ["hearing_loop"]})
    body.update(changes)
    return body


# --- one valid event of any catalogue type, built from its schema ------------------

def valid_value(field, canary=None):
    """A value the field accepts, chosen from its own validators. `canary`: the value to
    give a free one (an id, a code, a subject) instead of "a-1"."""
    for validator in field.validators:
        if isinstance(validator, validate.OneOf):
            return validator.choices[0]
        if isinstance(validator, validate.Equal):
            return validator.comparable
        if isinstance(validator, validate.Regexp) and not validator.regex.match("a-1"):
            return "2026-11-26"  # a day (YYYY-MM-DD): the one other pattern the schemas use
        if isinstance(validator, validate.Range) and validator.min is not None:
            return validator.min
    if isinstance(field, fields.Nested):
        return valid_data(field.schema, canary)
    if isinstance(field, fields.List):
        return [valid_value(field.inner, canary and f"{canary}-0")]
    if isinstance(field, fields.DateTime):
        return datetime(2026, 11, 26, 9, 30, tzinfo=timezone.utc).isoformat()
    if isinstance(field, fields.Boolean):
        return True
    if isinstance(field, fields.Integer):
        return 2
    return canary or "a-1"  # an ID and a CODE alike


def valid_data(schema, canary=None):
    return {name: valid_value(field, canary and f"{canary}-{name.replace('_', '-')}")
            for name, field in schema.load_fields.items()}


def valid_event(event_type, canaries=False):
    """A valid event of `event_type`, every field of its data filled in. With `canaries`,
    each free value is its own, named after its place (`canary-participants-0-participant-id`),
    so finding one anywhere says which field it came from; the subject is the case id."""
    spec = catalogue.spec(event_type)
    data = valid_data(spec.schema, "canary" if canaries else None)
    case = data.get("case_id", "case-1") if canaries else "case-1"
    return new_event(event_type, case, data, source="/amends/test/referrals", region="test", correlationid=case)
