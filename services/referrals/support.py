"""Referrals to support services: pure rules, no I/O.

The Victims' Code gives a victim the right to be referred to services that support
victims within 2 working days of reporting the crime, unless they do not want it. A
caseworker records, for a harmed person, that they were referred to a service (a code,
e.g. `victim_support`) or that they declined one. Records are only ever appended.

The case's `support_referral` clock (deadlines.support_referral) is settled once every
harmed person still on the case has a record: met when at least one of them does, else
stopped (every harmed person was erased). A closed case stops it too (cases.clock_owed).
"""
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from shared.events.vocabulary import SUPPORT_OUTCOMES

REFERRED, DECLINED = SUPPORT_OUTCOMES
_code = validate.Regexp(r"^[a-z0-9][a-z0-9_.-]*$", error="Use lower-case letters, digits, '-', '_' or '.'.")


class SupportReferralSchema(Schema):
    """The body of POST /v1/cases/{case_id}/support-referrals."""
    participant_id = fields.Str(required=True, validate=validate.Regexp(
        r"^p-[0-9a-f]{32}$", error="Not a participant id of this case."),
        metadata={"description": "a harmed person on the case"})
    outcome = fields.Str(required=True, validate=validate.OneOf(SUPPORT_OUTCOMES), metadata={
        "description": "referred: they were referred to `service`; declined: they did not want a referral"})
    # which service: required for a referral; for a refusal, the service they declined (optional)
    service = fields.Str(validate=[_code, validate.Length(min=1, max=50)], metadata={
        "description": "a lower-case code of the support service, e.g. victim_support; required when referred"})

    @validates_schema
    def service_for_a_referral(self, data, **kwargs):
        if data.get("outcome") == REFERRED and not data.get("service"):
            raise ValidationError("Required when the outcome is referred.", "service")


def record_for(data, by, at):
    """The record to append to the case, and the data of its event (codes only)."""
    event = {"participant_id": data["participant_id"], "outcome": data["outcome"], "service": data.get("service")}
    return {**event, "by": by, "at": at}, event


def outstanding(participants, records):
    """The harmed people still on the case (not erased) with no referral or refusal recorded."""
    recorded = {r["participant_id"] for r in records}
    return [p["party_id"] for p in participants
            if p["role"] == "harmed" and p.get("sealed") and p["party_id"] not in recorded]


def settled(participants, records):
    """Whether nothing is left for the support_referral clock to wait for."""
    return not outstanding(participants, records)
