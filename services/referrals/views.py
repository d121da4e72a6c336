"""What each role sees of a case: pure rules, no I/O.

Everyone allowed to see a case sees its pseudonymous shape (status, attributes,
participants' roles and attributes, consents, history, clock). Personal data (names,
contact details, crime reference and dates) goes only to the roles whose work needs
it: a coordinator always, a facilitator once a facilitator has accepted the case and
until it closes. A referrer and an auditor never get it back through the API.
"""
from datetime import date, datetime, timezone

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.referrals import agreement, due_dates, interventions, lifecycle, preparation, retention, safety, surveys
from services.referrals.deadlines import CLOCK_STATES, clock_state, start_of_day  # noqa: F401  (views.CLOCK_STATES for openapi)
from shared.events.vocabulary import CLOCK_BASES

PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
_code = validate.Regexp(r"^[a-z0-9][a-z0-9_.-]*$", error="Use lower-case letters, digits, '-', '_' or '.'.")
FACILITATOR_WORK = lifecycle.MAIN_LINE[lifecycle.MAIN_LINE.index("ALLOCATED"):]


# the earliest instant a due-date filter takes (nothing in the platform is due before it)
EARLIEST_DUE = datetime(2000, 1, 1, tzinfo=timezone.utc)


class Instant(fields.Str):
    """A date (meaning the start of that day, London time) or a time with its UTC offset."""
    default_error_messages = {"invalid": "Give a date (YYYY-MM-DD) or a time with its UTC offset (ISO 8601).",
                              "range": "Give an instant from 2000-01-01 on."}

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > 40:
            raise self.make_error("invalid")
        try:
            if len(text) == 10:
                at = start_of_day(date.fromisoformat(text))
            else:
                at = datetime.fromisoformat(text)
                if at.tzinfo is None:
                    raise self.make_error("invalid")
                at = at.astimezone(timezone.utc)
        except (ValueError, OverflowError):
            raise self.make_error("invalid") from None
        if at < EARLIEST_DUE:
            raise self.make_error("range")
        return at


class CaseQuerySchema(Schema):
    """The query of GET /v1/cases."""
    status = fields.Str(validate=validate.OneOf(lifecycle.STATUSES))
    agency = fields.Str(validate=[_code, validate.Length(max=100)])
    region = fields.Str(validate=[_code, validate.Length(max=50)], metadata={"description": (
        "a region this deployment serves (AMENDS_REGIONS); any other is a 400 naming `region`")})
    # referral_received: the cases whose referral did not say when the crime was reported
    measured_from = fields.Str(validate=validate.OneOf(CLOCK_BASES))
    # by due date (services/referrals/due_dates.py): soonest first when any of these is given
    due_before = Instant(metadata={"description": (
        "the cases whose next open deadline (a Victims' Code clock, an agreement item) falls before this "
        "date (the start of that day, London time) or time; at most 53 weeks ahead")})
    due_after = Instant(metadata={"description": (
        "with `due_before` or `overdue`: the cases whose next open deadline falls at or after this date or time")})
    overdue = fields.Bool(metadata={"description": "true: only the cases whose next open deadline has passed"})
    limit = fields.Int(load_default=PAGE_SIZE, validate=validate.Range(min=1, max=MAX_PAGE_SIZE))
    offset = fields.Int(load_default=0, validate=validate.Range(min=0, max=1_000_000))

    @validates_schema
    def _window(self, query, **kwargs):
        before, after = query.get("due_before"), query.get("due_after")
        if after is not None and before is None and not query.get("overdue"):
            raise ValidationError("Give due_before (or overdue=true) with due_after.", "due_after")
        if before is not None and after is not None and after >= before:
            raise ValidationError("Give a due_after earlier than due_before.", "due_after")
        if before is not None and before > due_dates.latest_end(datetime.now(timezone.utc)):
            raise ValidationError(f"Give a due_before at most {due_dates.MAX_WEEKS_AHEAD} weeks ahead.", "due_before")


def due_window(query, now):
    """The DueWindow a listing's query asks for, or None when it asks for none."""
    if query.get("due_before") is None and not query.get("overdue"):
        return None
    return due_dates.DueWindow(now=now, before=query.get("due_before"), after=query.get("due_after"),
                               overdue=bool(query.get("overdue")))


def sees_personal_data(role, status, held_from=None):
    if role == "coordinator":
        return True
    if role == "facilitator":
        return status in FACILITATOR_WORK or (status == lifecycle.ON_HOLD and held_from in FACILITATOR_WORK)
    return False


def rj_clock(case, now):
    """The victim_told_about_rj clock, as a case shows it (None for a case without one)."""
    if not case.deadline:
        return None
    return {
        **case.deadline,
        "measured_from": case.measured_from,
        "due_at": _iso(case.deadline_due_at),
        "victim_told_at": _iso(case.victim_told_at),
        "missed": bool(case.deadline_missed_sent),   # case.deadline_missed was announced
        "state": clock_state(case.deadline_notice_at, case.deadline_due_at, case.victim_told_at,
                             case.status == lifecycle.CLOSED, now),
    }


def support_clock(case, now=None):
    """The support_referral clock, with every referral or refusal recorded (None for a case
    stored without one)."""
    if not case.support_deadline:
        return None
    now = now or datetime.now(timezone.utc)
    referrals = case.support_referrals or []
    return {
        **case.support_deadline,
        "measured_from": case.measured_from,
        "due_at": _iso(case.support_due_at),
        "settled_at": _iso(case.support_settled_at),
        "state": clock_state(case.support_notice_at, case.support_due_at, case.support_settled_at,
                             case.status == lifecycle.CLOSED, now, met=bool(referrals)),
        "referrals": [{k: r.get(k) for k in ("participant_id", "outcome", "service", "by")} | {"at": _iso(r.get("at"))}
                      for r in referrals],
    }


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
        "next_due": _next_due(case.next_due),
    }


def _next_due(due, now=None):
    if due is None:
        return None
    return {"at": _iso(due.at), "kind": due.kind, "overdue": due.at <= (now or datetime.now(timezone.utc))}


def _stamped(entry):
    return {k: _iso(v) if k == "at" else v for k, v in entry.items()} if entry else None


def detail(case, personal=None, record=None, session_notes=None, agreement_texts=None, now=None):
    """The full view. `personal` maps party id -> their decrypted data (only for the
    roles that may see it; None for an erased person), `record` the case's own,
    `session_notes` each session's opened notes and `agreement_texts` the agreed items'
    descriptions and notes (item id -> texts), both for the same roles. Both Victims' Code
    clocks, and the surveys, are shown with their state as of `now`."""
    now = now or datetime.now(timezone.utc)
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
        "deadline": rj_clock(case, now),
        "support_referral": support_clock(case, now),
        "assessment": case.assessment or None,
        "safety": _stamped(case.safety),
        "supervision": {**(_stamped(case.supervision) or {}), "required": safety.supervision_required(case)},
        # why the parties may not communicate yet (None: they may)
        "communication_refused": safety.communication_refused(case),
        # the intervention and its sessions: a venue's name and address, and the notes, only
        # for the roles that see personal data
        "intervention": interventions.intervention_view(case),
        "sessions": [interventions.session_view(s, personal is not None, (session_notes or {}).get(s["session_id"]))
                     for s in case.sessions],
        # after the intervention: the agreement and its monitoring (descriptions only with
        # personal data), the surveys (asked, answered: never a token), the follow-up, retention
        "agreement": agreement.view(case.agreement, agreement_texts if personal is not None else None),
        "surveys": surveys.view(case.surveys, now),
        "follow_up": ({k: _iso(v) if k == "requested_at" else v for k, v in case.follow_up.items()}
                      if case.follow_up else None),
        "retention": retention.view(case.retention),
    })
    view.update(casework(case))   # preparation, risk, safety decisions, the parties' items
    if personal is not None:
        view["referrer"]["personal_data"] = personal.get(case.referrer["party_id"])
        for entry in view["participants"]:
            entry["personal_data"] = personal.get(entry["participant_id"])
        view["record"] = record
    return view


# --- preparation, risk, the safety decision and the parties' voice -----------------

def record_view(record, drop=("sealed",)):
    return {k: _iso(v) if k == "at" else v for k, v in record.items() if k not in drop}


def sealed_notes(case):
    """(owner id, record id, sealed) of every casework record with notes: a contact's or a
    risk assessment's under the participant's key, a safety decision's under the case record's."""
    for record in case.preparation_contacts:
        if record.get("has_notes"):
            yield record["participant_id"], record["contact_id"], record.get("sealed")
    for record in case.risk_assessments:
        if record.get("has_notes"):
            yield record["participant_id"], record["assessment_id"], record.get("sealed")
    for record in case.safety_decisions:
        if record.get("has_notes"):
            yield case.sensitive.get("owner_id"), record["decision_id"], record.get("sealed")


def casework(case, notes=None):
    """Preparation contacts, risk assessments (levels), safety decisions and sign-offs, and the
    parties' items with their releases: ids, codes and levels for everyone who may see the
    case. `notes` (record id -> text, None where erased) only for callers who may see
    personal data; an item's content is never here (GET /v1/cases/{id}/items)."""
    def noted(record, id_field):
        entry = record_view(record)
        if notes is not None and record.get("has_notes"):
            entry["notes"] = notes.get(record[id_field])
        return entry

    current = {r["assessment_id"] for r in preparation.current_assessments(case).values()}
    erased = {p["party_id"] for p in case.participants if not p.get("sealed")}
    releases = {}
    for release in case.voice_releases:
        releases.setdefault(release["item_id"], []).append(
            {**record_view(release), "consent": record_view(release.get("consent") or {})})
    return {
        "preparation_contacts": [noted(r, "contact_id") for r in case.preparation_contacts],
        "risk_assessments": [{**noted(r, "assessment_id"), "current": r["assessment_id"] in current}
                             for r in case.risk_assessments],
        "safety_decisions": [noted(r, "decision_id") for r in case.safety_decisions],
        "supervisions": [record_view(r) for r in case.supervisions],
        "voice_items": [item_metadata(item, erased, releases.get(item["item_id"], [])) for item in case.voice_items],
    }


def item_metadata(item, erased, releases):
    """An item without its content: who wrote what kind, when, in reply to what, to whom it went."""
    return {**record_view(item), "erased": item["author_id"] in erased or not item.get("sealed"), "releases": releases}
