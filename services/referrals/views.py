"""What each role sees of a case: pure rules, no I/O.

Everyone allowed to see a case sees its pseudonymous shape (status, attributes,
participants' roles and attributes, consents, history, clock). Personal data (names,
contact details, crime reference and dates) goes only to the roles whose work needs
it: a coordinator always, a facilitator once a facilitator has accepted the case and
until it closes. A referrer and an auditor never get it back through the API.
"""
from marshmallow import Schema, fields, validate

from services.referrals import lifecycle
from shared.events.vocabulary import CLOCK_BASES

PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
_code = validate.Regexp(r"^[a-z0-9][a-z0-9_.-]*$", error="Use lower-case letters, digits, '-', '_' or '.'.")
FACILITATOR_WORK = lifecycle.MAIN_LINE[lifecycle.MAIN_LINE.index("ALLOCATED"):]


class CaseQuerySchema(Schema):
    """The query of GET /v1/cases."""
    status = fields.Str(validate=validate.OneOf(lifecycle.STATUSES))
    agency = fields.Str(validate=[_code, validate.Length(max=100)])
    region = fields.Str(validate=[_code, validate.Length(max=50)])
    # referral_received: the cases whose referral did not say when the crime was reported
    measured_from = fields.Str(validate=validate.OneOf(CLOCK_BASES))
    limit = fields.Int(load_default=PAGE_SIZE, validate=validate.Range(min=1, max=MAX_PAGE_SIZE))
    offset = fields.Int(load_default=0, validate=validate.Range(min=0, max=1_000_000))


def sees_personal_data(role, status, held_from=None):
    if role == "coordinator":
        return True
    if role == "facilitator":
        return status in FACILITATOR_WORK or (status == lifecycle.ON_HOLD and held_from in FACILITATOR_WORK)
    return False


def _iso(value):
    return value.isoformat() if value is not None else None


def summary(case):
    """The pseudonymous view: nothing in it identifies or reaches a person."""
    return {
        "case_id": case.case_id,
        "status": case.status,
        "held_from": case.held_from,
        "agency": case.agency,
        "region": case.region,
        "attributes": case.attributes,
        # what the Victims' Code clocks are measured from: referral_received means the referral
        # did not give the day the crime was reported, so a clock may really be running out sooner
        "measured_from": case.measured_from,
        "created_at": _iso(case.created_at),
        "updated_at": _iso(case.updated_at),
    }


def detail(case, personal=None, record=None):
    """The full view. `personal` maps party id -> their decrypted data (only for the
    roles that may see it; None for an erased person), `record` the case's own."""
    view = summary(case)
    view.update({
        "closure": case.closure or None,
        "referrer": {"referrer_id": case.referrer["party_id"], "erased": not case.referrer.get("sealed")},
        "participants": [
            {
                "participant_id": p["party_id"],
                "role": p["role"],
                **p["attributes"],
                "contact_safe": p.get("contact_safe", True),
                "erased": not p.get("sealed"),
            }
            for p in case.participants
        ],
        "consents": [
            {k: c.get(k) for k in ("participant_id", "scope", "item", "with_role", "granted", "method")}
            | {"at": _iso(c.get("at"))}
            for c in case.consents
        ],
        "history": [
            {"from_status": h["from"], "to_status": h["to"], "reason": h.get("reason"), "at": _iso(h.get("at")),
             "by": h.get("by")}
            for h in case.history
        ],
        "deadline": {
            **(case.deadline or {}),
            "measured_from": case.measured_from,
            "due_at": _iso(case.deadline_due_at),
            "victim_told_at": _iso(case.victim_told_at),
            "missed": bool(case.deadline_missed_sent),
        } if case.deadline else None,
    })
    if personal is not None:
        view["referrer"]["personal_data"] = personal.get(case.referrer["party_id"])
        for entry in view["participants"]:
            entry["personal_data"] = personal.get(entry["participant_id"])
        view["record"] = record
    return view
