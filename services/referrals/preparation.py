"""Preparing the parties for restorative justice: the facilitator's contacts with each
person, the risk assessed again with each party, the safety decision and its supervision.
Pure rules over the case; workflow.py stores what they allow, as one change of the case.

RJ goes ahead only if a trained facilitator judges it safe. Matching assessed the risk
before allocation from the referral; the facilitator assesses it again with each party
(physical and emotional safety, power imbalance, capacity, substance use, mental health,
support and access needs), then decides: `direct` (the parties may meet), `indirect_only`
(the facilitator carries every word) or `stop` (the case closes for safety). In
sexual-offence and domestic-abuse cases a supervisor, never the person who decided,
signs that decision off before any contact between the parties (safety.py is the gate).

The records, in the case (cases.Case), appended only:
- `preparation_contacts`: contact_id, participant_id, participant_role, method, outcome,
  held_on, has_notes, sealed (the notes, under the participant's own key), by, at
- `risk_assessments`: assessment_id, participant_id, participant_role, factors (levels),
  overall, has_notes, sealed, by, at; the latest per party is the one decisions read
- `safety_decisions`: every decision (decision_id, decision, reasons, supervision_required,
  has_notes, sealed: notes under the case record's key, by, at); `case.safety` is the
  latest, without its notes
- `supervisions`: every sign-off (decision_id of the safety decision, decision, reason,
  by, at); `case.supervision` is the one of the current decision ({} until given)
"""
import uuid

from marshmallow import Schema, ValidationError, fields, validate, validates

from services.referrals import lifecycle, safety
from services.referrals.deadlines import today_in_london
from shared.events.schemas.casework import (CONTACT_METHODS, CONTACT_OUTCOMES, PARTIES, RISK_LEVELS,
                                            SAFETY_DECISIONS, SUPERVISION_DECISIONS, RiskFactorLevels)

NOTES_MAX = 4000
PARTICIPANT_ID = validate.Regexp(r"^p-[0-9a-f]{32}$", error="Not a participant id of this case.")
CODE = validate.Regexp(r"^[a-z0-9][a-z0-9_.-]*$", error="Use lower-case letters, digits, '-', '_' or '.'.")
# the states in which a facilitator works with the parties: from their acceptance of the case
WORKING = lifecycle.MAIN_LINE[lifecycle.MAIN_LINE.index("ALLOCATED"):]

# why something is refused (409), by reason code
WHY = {
    "case_closed": "the case is closed",
    "not_allocated": "preparation starts once a facilitator has accepted the case (ALLOCATED)",
    "personal_data_erased": "this participant's personal data has been erased",
    "risk_assessment_missing": "every party (harmed and harmer) needs a risk assessment before a safety decision",
    "assessment_excludes_direct": "matching's assessment allows no direct process (direct_conference, "
                                  "group_conference, youth_panel) for this case",
    "party_safety_high": "a party's latest risk assessment rates their safety high: no direct contact",
    "safety_decision_missing": "there is no safety decision to sign off",
    "safety_stop": "the safety decision is to stop: there is nothing to sign off",
    "supervision_not_required": "this case needs no supervision (only sexual-offence and domestic-abuse cases do)",
    "supervision_already_decided": "the current safety decision has been signed off (or refused) already; "
                                   "a new safety decision needs signing off again",
    "supervisor_made_the_decision": "the person who made the safety decision cannot also sign it off",
}


def new_id(prefix):
    return f"{prefix}-{uuid.uuid4().hex}"


# --- the request bodies ---------------------------------------------------------

class ContactSchema(Schema):
    """The body of POST /v1/cases/{id}/preparation/contacts."""
    participant_id = fields.Str(required=True, validate=PARTICIPANT_ID)
    method = fields.Str(required=True, validate=validate.OneOf(CONTACT_METHODS))
    outcome = fields.Str(required=True, validate=validate.OneOf(CONTACT_OUTCOMES))
    held_on = fields.Date(required=True, metadata={"description": "YYYY-MM-DD, London time; not in the future"})
    # personal: sealed under the participant's own key, never on the bus or in a log
    notes = fields.Str(validate=validate.Length(min=1, max=NOTES_MAX))

    @validates("held_on")
    def not_in_the_future(self, value, **kwargs):
        if value > today_in_london():
            raise ValidationError("A contact cannot be recorded before it has been held.")


class RiskAssessmentSchema(Schema):
    """The body of POST /v1/cases/{id}/risk-assessments: every factor, each a level."""
    participant_id = fields.Str(required=True, validate=PARTICIPANT_ID)
    factors = fields.Nested(RiskFactorLevels, required=True)
    notes = fields.Str(validate=validate.Length(min=1, max=NOTES_MAX))


class SafetyDecisionSchema(Schema):
    """The body of POST /v1/cases/{id}/safety-decision."""
    decision = fields.Str(required=True, validate=validate.OneOf(SAFETY_DECISIONS))
    reasons = fields.List(fields.Str(validate=[CODE, validate.Length(max=60)]), required=True,
                          validate=validate.Length(min=1, max=10))
    # sealed under the case record's own key
    notes = fields.Str(validate=validate.Length(min=1, max=NOTES_MAX))

    @validates("reasons")
    def each_once(self, value, **kwargs):
        if len(set(value)) != len(value):
            raise ValidationError("Name each reason once.")


class SupervisionSchema(Schema):
    """The body of POST /v1/cases/{id}/supervision (a coordinator: the supervisor)."""
    decision = fields.Str(required=True, validate=validate.OneOf(SUPERVISION_DECISIONS))
    reason = fields.Str(validate=[CODE, validate.Length(min=1, max=60)])


# --- when work may be recorded, and on whom ---------------------------------------

def work_refused(case):
    """Why no preparation work may be recorded on the case now (a code of WHY), or None:
    only from the facilitator's acceptance of the case (on hold too) until it closes."""
    if case.status == lifecycle.CLOSED:
        return "case_closed"
    status = case.held_from if case.status == lifecycle.ON_HOLD else case.status
    return None if status in WORKING else "not_allocated"


def participant_faults(party, parties_only=False):
    """What is wrong with naming `party` (case.party(...)) in a body, by field; {} if nothing."""
    if party is None or party["role"] == "referrer":
        return {"participant_id": ["No such participant on this case."]}
    if parties_only and party["role"] not in PARTIES:
        return {"participant_id": ["Risk is assessed with the parties (harmed, harmer) only."]}
    return {}


def erased(party):
    return not party.get("sealed")


# --- contacts -------------------------------------------------------------------

def contact_record(data, party, by, at, sealed):
    return {"contact_id": new_id("contact"), "participant_id": party["party_id"], "participant_role": party["role"],
            "method": data["method"], "outcome": data["outcome"], "held_on": data["held_on"].isoformat(),
            "has_notes": "notes" in data, "sealed": sealed, "by": by, "at": at}


def contact_event(case, record):
    return {"case_id": case.case_id, **{k: record[k] for k in (
        "participant_id", "participant_role", "method", "outcome")}}


def starts_preparation(case):
    """Whether a contact moves the case on: the first one, on an ALLOCATED case."""
    return case.status == "ALLOCATED"


def tells_victim(case, party, outcome):
    """Whether a contact meets the Victims' Code clock: the harmed person reached (and so told
    about RJ in person), if nothing has met it before."""
    return party["role"] == "harmed" and outcome == "reached" and case.victim_told_at is None


# --- risk -----------------------------------------------------------------------

def overall(factors):
    """The highest level of any factor."""
    return max(factors.values(), key=RISK_LEVELS.index)


def assessment_record(data, party, by, at, sealed):
    factors = {name: data["factors"][name] for name in RiskFactorLevels._declared_fields}
    return {"assessment_id": new_id("risk"), "participant_id": party["party_id"], "participant_role": party["role"],
            "factors": factors, "overall": overall(factors), "has_notes": "notes" in data, "sealed": sealed,
            "by": by, "at": at}


def assessment_event(case, record):
    return {"case_id": case.case_id, **{k: record[k] for k in (
        "participant_id", "participant_role", "factors", "overall")}}


def current_assessments(case):
    """participant id -> their latest risk assessment (a later one replaces an earlier)."""
    latest = {}
    for record in case.risk_assessments:
        latest[record["participant_id"]] = record
    return latest


def unassessed_parties(case):
    current = current_assessments(case)
    return [p["party_id"] for p in case.participants if p["role"] in PARTIES and p["party_id"] not in current]


# --- the safety decision and its supervision --------------------------------------

def direct_refused(case):
    """Why the parties may not meet (a code), or None."""
    if not safety.DIRECT_PROCESSES & set((case.assessment or {}).get("process_types") or ()):
        return "assessment_excludes_direct"
    if any(record["factors"]["safety"] == "high" for record in current_assessments(case).values()):
        return "party_safety_high"
    return None


def decision_refused(case, decision):
    """Why this safety decision may not be made now (a code of WHY), or None."""
    refused = work_refused(case)
    if refused:
        return refused
    if unassessed_parties(case):
        return "risk_assessment_missing"
    if decision == safety.DIRECT:
        return direct_refused(case)
    return None


def needs_signoff(case, decision):
    """Whether `decision` binds only once a supervisor approves it (a stop never waits)."""
    return decision != safety.STOP and safety.supervision_required(case)


def decision_record(case, data, by, at, sealed):
    return {"decision_id": new_id("safety"), "decision": data["decision"], "reasons": list(data["reasons"]),
            "supervision_required": needs_signoff(case, data["decision"]), "has_notes": "notes" in data,
            "sealed": sealed, "by": by, "at": at}


def decision_state(case, record):
    """The case's fields after a safety decision: it is the current one (without its notes),
    kept in the history, and any sign-off of the decision it replaces no longer counts."""
    current = {k: v for k, v in record.items() if k not in ("sealed", "has_notes")}
    return {"safety": current, "supervision": {}, "safety_decisions": list(case.safety_decisions) + [record]}


def decision_event(case, record):
    return {"case_id": case.case_id, "decision": record["decision"], "reasons": list(record["reasons"]),
            "supervision_required": record["supervision_required"]}


def supervision_refused(case, by):
    """Why `by` may not sign off the current safety decision (a code of WHY), or None."""
    refused = work_refused(case)
    if refused:
        return refused
    current = case.safety or {}
    if not current.get("decision"):
        return "safety_decision_missing"
    if current["decision"] == safety.STOP:
        return "safety_stop"
    if not safety.supervision_required(case):
        return "supervision_not_required"
    if (case.supervision or {}).get("decision"):
        return "supervision_already_decided"
    if current.get("by") == by:
        return "supervisor_made_the_decision"
    return None


def supervision_record(case, data, by, at):
    return {"decision_id": case.safety.get("decision_id"), "safety_decision": case.safety["decision"],
            "decision": data["decision"], "reason": data.get("reason"), "by": by, "at": at}


def supervision_state(case, record):
    return {"supervision": record, "supervisions": list(case.supervisions) + [record]}


def supervision_event(case, record):
    return {"case_id": case.case_id, "decision": record["decision"], "safety_decision": record["safety_decision"]}
