"""What each role sees of a case: pure rules, no I/O.

Everyone allowed to see a case sees its pseudonymous shape (status, attributes,
participants' roles and attributes, consents, history, clock). Personal data (names,
contact details, crime reference and dates) goes only to the roles whose work needs
it: a coordinator always, a facilitator once a facilitator has accepted the case and
until it closes. A referrer and an auditor never get it back through the API.
"""
from marshmallow import Schema, fields, validate

from services.referrals import agreement, lifecycle, retention, safety, surveys
from services.referrals.cases import utcnow

PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
_code = validate.Regexp(r"^[a-z0-9][a-z0-9_.-]*$", error="Use lower-case letters, digits, '-', '_' or '.'.")
FACILITATOR_WORK = lifecycle.MAIN_LINE[lifecycle.MAIN_LINE.index("ALLOCATED"):]


class CaseQuerySchema(Schema):
    """The query of GET /v1/cases."""
    status = fields.Str(validate=validate.OneOf(lifecycle.STATUSES))
    agency = fields.Str(validate=[_code, validate.Length(max=100)])
    region = fields.Str(validate=[_code, validate.Length(max=50)])
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
        "created_at": _iso(case.created_at),
        "updated_at": _iso(case.updated_at),
    }


def _stamped(entry):
    return {k: _iso(v) if k == "at" else v for k, v in entry.items()} if entry else None


def detail(case, personal=None, record=None, agreement_texts=None):
    """The full view. `personal` maps party id -> their decrypted data (only for the
    roles that may see it; None for an erased person), `record` the case's own, and
    `agreement_texts` the agreed items' descriptions and notes (item id -> texts)."""
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
                "reduced_to_statistics": bool(p.get("reduced")),
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
            "due_at": _iso(case.deadline_due_at),
            "victim_told_at": _iso(case.victim_told_at),
            "missed": bool(case.deadline_missed_sent),
        } if case.deadline else None,
        "assessment": case.assessment or None,
        "safety": _stamped(case.safety),
        "supervision": {**(_stamped(case.supervision) or {}), "required": safety.supervision_required(case)},
        # why the parties may not communicate yet (None: they may)
        "communication_refused": safety.communication_refused(case),
        # after the intervention: the agreement and its monitoring (descriptions only with
        # personal data), the surveys (asked, answered: never a token), the follow-up, retention
        "agreement": agreement.view(case.agreement, agreement_texts if personal is not None else None),
        "surveys": surveys.view(case.surveys, utcnow()),
        "follow_up": ({k: _iso(v) if k == "requested_at" else v for k, v in case.follow_up.items()}
                      if case.follow_up else None),
        "retention": retention.view(case.retention),
    })
    if personal is not None:
        view["referrer"]["personal_data"] = personal.get(case.referrer["party_id"])
        for entry in view["participants"]:
            entry["personal_data"] = personal.get(entry["participant_id"])
        view["record"] = record
    return view
