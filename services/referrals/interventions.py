"""The intervention a case takes and the sessions it is made of: pure rules over the case.

Kinds of process (shared.events.vocabulary.PROCESS_TYPES):
- `direct_conference`: the parties meet, face to face, with a facilitator;
- `group_conference`: a community or family group conference, the parties and the people
  around them;
- `shuttle`: indirect communication, the facilitator meeting each side on its own and
  carrying what is said between them;
- `letter_exchange`: letters, reviewed by the facilitator before they are released (the
  facilitator may meet each side to help with them);
- `youth_panel`: a youth offender panel, for a harmer under 18.

Choosing one needs it to be among the processes matching found possible
(`case.assessment["process_types"]`) and to pass the gate (safety.process_refused: a safety
decision, supervision where required, and a meeting only on a `direct` decision). It moves
a case from PREPARATION to INTERVENTION; while in INTERVENTION it may be changed under the
same checks, once the sessions arranged for the old one are cancelled.

A session is one meeting: when, for how long, where, and who attends (participants of the
case, by id). Who must and may attend follows the process:
- a direct or group conference: both parties (a harmed person and a harmer);
- shuttle and letters: exactly one party (the facilitator meets each side separately), with
  whoever helps them take part (supporters, an interpreter, an appropriate adult);
- a youth offender panel: the harmer (the person harmed may come too);
and, whatever the process:
- nobody whose consent to take part is withdrawn, and nobody erased;
- a party under 18 only with an appropriate adult, when the case has one.

The venue's name and address are operational data, not a party's, but they never leave
referrals except through get_contact's `session_invitation` purpose: the events carry
the kind of venue only. A session's notes are free text and may hold personal data: the
workflow seals them under the case's own record key.

Refusals: `Invalid` (400, naming the fields at fault) for what the request says on its
own or names that is not on the case; `Refused` (409, a reason code) for what the case's
state does not allow.
"""
import re
import uuid
from datetime import timedelta, timezone

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from services.referrals import consents, lifecycle, safety
from shared import safeguarding
from shared.events.schemas.sessions import MAX_MINUTES, MIN_MINUTES, VENUE_KINDS
from shared.events.vocabulary import PROCESS_TYPES

INTERVENTION = "INTERVENTION"
# where a case may choose (or change) its intervention
CHOOSABLE_FROM = ("PREPARATION", INTERVENTION)
# who must attend a session of each kind of process
BOTH_PARTIES = frozenset({"direct_conference", "group_conference"})
ONE_PARTY = frozenset({"shuttle", "letter_exchange"})
HARMER_REQUIRED = frozenset({"youth_panel"})
HELPERS = ("supporter", "interpreter", "appropriate_adult")
# sessions still to take place
ACTIVE = ("scheduled", "changed")
MAX_SESSIONS = 50
# how far ahead a session may be arranged
HORIZON = timedelta(days=366)
SESSION_ID = re.compile(r"^ses-[0-9a-f]{32}$")
PARTICIPANT_ID = r"^p-[0-9a-f]{32}$"

_code = validate.Regexp(r"^[a-z0-9][a-z0-9_.-]*$", error="Use lower-case letters, digits, '-', '_' or '.'.")
# one line of text: no control characters at all, and not blank
_line = validate.Regexp(r"^(?=.*\S)[^\x00-\x1f\x7f]*$", error="Use one line of text, without control characters.")
# free text: line breaks and tabs allowed, other control characters not
_text = validate.Regexp(r"^(?=[\s\S]*\S)[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$",
                        error="Control characters are not allowed, and the text must not be blank.")
_participant = validate.Regexp(PARTICIPANT_ID, error="Not a participant id.")


class Invalid(ValueError):
    """400: what is at fault, by field."""

    def __init__(self, fields_at_fault):
        self.fields = fields_at_fault
        super().__init__("the request is not valid")


class Refused(ValueError):
    """409: the case's state does not allow it. `reason` is a code; `details` name what is
    in the way (participant ids, session ids, the case's status)."""

    def __init__(self, reason, message, **details):
        self.reason, self.details = reason, details
        super().__init__(message)


def _unique(values):
    if len(set(values)) != len(values):
        raise ValidationError("List each participant once.")


# --- request bodies -------------------------------------------------------------

class InterventionSchema(Schema):
    """The body of POST /v1/cases/{id}/intervention."""
    process_type = fields.Str(required=True, validate=validate.OneOf(PROCESS_TYPES))


class VenueSchema(Schema):
    kind = fields.Str(required=True, validate=validate.OneOf(VENUE_KINDS))
    name = fields.Str(required=True, validate=[validate.Length(min=1, max=200), _line])
    address = fields.Str(validate=[validate.Length(min=1, max=500), _text])

    @validates_schema
    def remote_has_no_address(self, data, **kwargs):
        if data.get("kind") == "remote" and "address" in data:
            raise ValidationError("A remote session has no address: say how to join in the name, or leave it to "
                                  "the facilitator.", "address")


def _attendees(**kwargs):
    return fields.List(fields.Str(validate=_participant), validate=[validate.Length(min=1, max=20), _unique],
                       **kwargs)


class SessionSchema(Schema):
    """The body of POST /v1/cases/{id}/sessions."""
    starts_at = fields.AwareDateTime(required=True, format="iso", metadata={
        "description": "ISO 8601 with an offset, in the future"})
    duration_minutes = fields.Int(required=True, strict=True, validate=validate.Range(min=MIN_MINUTES, max=MAX_MINUTES))
    venue = fields.Nested(VenueSchema, required=True)
    attendees = _attendees(required=True, metadata={"description": "participant ids of the case"})
    notes = fields.Str(validate=[validate.Length(min=1, max=2000), _text], metadata={
        "description": "for the people working on the case only; never sent to anyone"})


class SessionChangeSchema(Schema):
    """The body of PATCH /v1/cases/{id}/sessions/{session_id}: what changes."""
    starts_at = fields.AwareDateTime(format="iso")
    duration_minutes = fields.Int(strict=True, validate=validate.Range(min=MIN_MINUTES, max=MAX_MINUTES))
    venue = fields.Nested(VenueSchema)
    attendees = _attendees()
    notes = fields.Str(validate=[validate.Length(min=1, max=2000), _text])

    @validates_schema
    def something_changes(self, data, **kwargs):
        if not data:
            raise ValidationError("Give at least one of starts_at, duration_minutes, venue, attendees, notes.")


class CancelSchema(Schema):
    """The body of POST /v1/cases/{id}/sessions/{session_id}/cancel."""
    reason = fields.Str(required=True, validate=[validate.Length(min=1, max=60), _code])


class HeldSchema(Schema):
    """The body of POST /v1/cases/{id}/sessions/{session_id}/held."""
    attended = fields.List(fields.Str(validate=_participant), required=True,
                           validate=[validate.Length(min=1, max=20), _unique],
                           metadata={"description": "who came: participant ids among the session's attendees"})


def load(schema, body):
    """The validated body; Invalid naming every field at fault."""
    try:
        return schema().load(body)
    except ValidationError as exc:
        raise Invalid(exc.messages) from None


# --- the intervention -----------------------------------------------------------

def young_parties(case, ids=None):
    """The parties under 18 (of `ids`, when given)."""
    return [p["party_id"] for p in case.participants
            if p["role"] in safeguarding.PARTIES and (p.get("attributes") or {}).get("age_band") == "under_18"
            and (ids is None or p["party_id"] in ids)]


def active_sessions(case):
    return [s for s in case.sessions if s["status"] in ACTIVE]


def choose(case, process_type):
    """Whether choosing `process_type` changes the case (False: it is its intervention
    already); raise Refused when it may not be chosen."""
    if case.status not in CHOOSABLE_FROM:
        raise Refused("wrong_status", f"an intervention is chosen in PREPARATION or INTERVENTION, not {case.status}",
                      status=case.status)
    assessed = list((case.assessment or {}).get("process_types") or [])
    if process_type not in assessed:
        raise Refused("process_not_assessed", f"{process_type} is not among the processes the assessment found "
                                              "possible", assessed=assessed)
    refused = safety.process_refused(case, process_type)
    if refused:
        raise Refused(refused, f"the safety gate does not allow {process_type}: {refused}")
    if process_type == "youth_panel" and not [p for p in young_parties(case) if case.party(p)["role"] == "harmer"]:
        raise Refused("youth_panel_needs_young_harmer", "a youth offender panel is for a harmer under 18")
    current = (case.intervention or {}).get("process_type")
    if current == process_type and case.status == INTERVENTION:
        return False
    arranged = active_sessions(case)
    if current and arranged:
        raise Refused("sessions_arranged", f"cancel the sessions arranged for the {current} first",
                      session_ids=[s["session_id"] for s in arranged])
    return True


def intervention_record(process_type, by, now):
    return {"process_type": process_type, "chosen_at": now, "by": by}


def moves_to_intervention(case):
    """The lifecycle step into INTERVENTION, or None when the case is there already."""
    if case.status == INTERVENTION:
        return None
    return lifecycle.transition(case.status, INTERVENTION)


# --- sessions -------------------------------------------------------------------

def process_of(case):
    """The chosen process, if the case may arrange sessions for it now; else Refused."""
    process_type = (case.intervention or {}).get("process_type")
    if not process_type:
        raise Refused("intervention_missing", "choose the intervention before arranging sessions")
    if case.status != INTERVENTION:
        raise Refused("wrong_status", f"sessions are arranged while the case is in INTERVENTION, not {case.status}",
                      status=case.status)
    refused = safety.process_refused(case, process_type)
    if refused:
        raise Refused(refused, f"the safety gate does not allow {process_type} now: {refused}")
    return process_type


def check_time(starts_at, now):
    """A session starts in the future, within HORIZON."""
    if starts_at <= now:
        raise Invalid({"starts_at": ["Must be in the future."]})
    if starts_at > now + HORIZON:
        raise Invalid({"starts_at": ["Must be within a year from now."]})


def check_attendees(case, process_type, attendee_ids):
    """Raise Invalid for ids not on the case, Refused for who may not (or must) attend."""
    people = {p["party_id"]: p for p in case.participants}
    unknown = [pid for pid in attendee_ids if pid not in people]
    if unknown:
        raise Invalid({"attendees": [f"Not participants of this case: {', '.join(unknown)}."]})
    unavailable = [pid for pid in attendee_ids if not people[pid].get("sealed") or withdrawn(case, pid)]
    if unavailable:
        raise Refused("attendee_unavailable", "these participants have withdrawn their consent to take part, or "
                                              "been erased, and cannot be invited", participant_ids=unavailable)
    roles = {pid: people[pid]["role"] for pid in attendee_ids}
    parties = [pid for pid in attendee_ids if roles[pid] in safeguarding.PARTIES]
    present = {roles[pid] for pid in parties}
    if process_type in BOTH_PARTIES:
        missing = [role for role in safeguarding.PARTIES if role not in present]
        if missing:
            raise Refused("both_parties_required", f"a {process_type} session includes both parties",
                          missing_roles=missing)
    elif process_type in ONE_PARTY:
        if len(parties) != 1:
            raise Refused("one_party_only", f"in a {process_type} the facilitator meets one party at a time: "
                                            "invite exactly one, with whoever helps them take part",
                          party_ids=parties)
    elif process_type in HARMER_REQUIRED and "harmer" not in present:
        raise Refused("harmer_required", f"a {process_type} session includes the harmer", missing_roles=["harmer"])
    young = young_parties(case, attendee_ids)
    has_adult = any(p["role"] == "appropriate_adult" for p in case.participants)
    if young and has_adult and "appropriate_adult" not in roles.values():
        raise Refused("appropriate_adult_required", "a party under 18 attends with the case's appropriate adult",
                      participant_ids=young)


def withdrawn(case, participant_id):
    record = consents.in_force(case.consents, participant_id, "participation")
    return record is not None and not record["granted"]


def new_session(data, process_type, by, now, notes=None):
    """A session record from a validated body (`notes` already sealed)."""
    return {
        "session_id": f"ses-{uuid.uuid4().hex}",
        "revision": 1,
        "status": "scheduled",
        "process_type": process_type,
        "starts_at": _instant(data["starts_at"]),
        "duration_minutes": data["duration_minutes"],
        "venue": dict(data["venue"]),
        "attendee_ids": list(data["attendees"]),
        "removed_ids": [],
        "notes": notes,
        "by": by,
        "created_at": now,
        "updated_at": now,
    }


def _instant(moment):
    """UTC, to the second (a meeting has no use for less, and the store keeps milliseconds)."""
    return moment.astimezone(timezone.utc).replace(microsecond=0)


def session_of(case, session_id):
    found = next((s for s in case.sessions if s["session_id"] == session_id), None) \
        if SESSION_ID.match(session_id or "") else None
    return found


def still_to_come(session):
    if session["status"] not in ACTIVE:
        raise Refused(f"session_{session['status']}", f"the session is {session['status']}",
                      session_status=session["status"])


def schedule(case, data, by, now, notes=None):
    """The new session, or Refused/Invalid."""
    process_type = process_of(case)
    check_time(data["starts_at"], now)
    if len(case.sessions) >= MAX_SESSIONS:
        raise Refused("too_many_sessions", f"a case has at most {MAX_SESSIONS} sessions")
    check_attendees(case, process_type, data["attendees"])
    return new_session(data, process_type, by, now, notes)


def change(case, session, data, now, notes=None):
    """(the session after the change, whether those attending need telling, who was taken
    off it); raise Refused or Invalid."""
    still_to_come(session)
    process_of(case)
    if session["starts_at"] <= now:
        raise Refused("session_started", "the session has started: record that it was held, or cancel it")
    if "starts_at" in data:
        check_time(data["starts_at"], now)
    attendees = list(data.get("attendees", session["attendee_ids"]))
    changed = dict(session)
    if "starts_at" in data:
        changed["starts_at"] = _instant(data["starts_at"])
    if "duration_minutes" in data:
        changed["duration_minutes"] = data["duration_minutes"]
    if "venue" in data:
        changed["venue"] = dict(data["venue"])
    changed["attendee_ids"] = attendees
    removed = [pid for pid in session["attendee_ids"] if pid not in attendees]
    if notes is not None:
        changed["notes"] = notes
    told = any(changed[k] != session[k] for k in ("starts_at", "duration_minutes", "venue", "attendee_ids"))
    if told:
        # everyone is invited afresh: who has withdrawn since is named, as when scheduling
        check_attendees(case, session["process_type"], attendees)
        changed.update(revision=session["revision"] + 1, status="changed",
                       removed_ids=sorted(set(session.get("removed_ids") or []) - set(attendees) | set(removed)))
    if changed == session:
        return None, False, []
    changed["updated_at"] = now
    return changed, told, removed


def cancel(session, reason, by, now):
    still_to_come(session)
    return {**session, "revision": session["revision"] + 1, "status": "cancelled", "updated_at": now,
            "cancelled": {"reason": reason, "at": now, "by": by}}


def held(session, attended, by, now):
    still_to_come(session)
    if session["starts_at"] > now:
        raise Refused("session_not_started", "a session is recorded as held once it has started")
    strangers = [pid for pid in attended if pid not in session["attendee_ids"]]
    if strangers:
        raise Invalid({"attended": [f"Not attendees of this session: {', '.join(strangers)}."]})
    return {**session, "revision": session["revision"] + 1, "status": "held", "updated_at": now,
            "held": {"attended_ids": list(attended), "at": now, "by": by}}


def replaced(case, session):
    """The case's sessions with `session` in place of the one with its id (or added)."""
    others = [s for s in case.sessions if s["session_id"] != session["session_id"]]
    if len(others) == len(case.sessions):
        return list(case.sessions) + [session]
    return [session if s["session_id"] == session["session_id"] else s for s in case.sessions]


def facilitator_led(case):
    attributes = case.attributes or {}
    return safeguarding.facilitator_led(attributes.get("flags"), attributes.get("offence_category"))


def event_data(case, session, **extra):
    """What a session event says: ids and codes, never the venue's name or address."""
    return {
        "case_id": case.case_id,
        "session_id": session["session_id"],
        "revision": session["revision"],
        "process_type": session["process_type"],
        "starts_at": session["starts_at"].isoformat(),
        "duration_minutes": session["duration_minutes"],
        "venue_kind": session["venue"]["kind"],
        "attendee_ids": list(session["attendee_ids"]),
        "facilitator_led": facilitator_led(case),
        "facilitator_ids": sorted(case.held_by or []),
        **extra,
    }


# --- what get_contact's session_invitation purpose releases ---------------------

def invitation(case, party_id, session_id):
    """(refusal reason, None) or (None, the session as a person invited to it may know it):
    when, how long, its status and revision, and the venue (only to those still attending)."""
    if facilitator_led(case):
        return "facilitator_led", None   # every contact goes through the facilitator
    session = session_of(case, session_id) if isinstance(session_id, str) else None
    if session is None:
        return "unknown_session", None
    attending = party_id in session["attendee_ids"]
    if not attending and party_id not in (session.get("removed_ids") or []):
        return "not_invited", None
    released = {"session_id": session["session_id"], "revision": session["revision"], "status": session["status"],
                "starts_at": session["starts_at"].isoformat(), "duration_minutes": session["duration_minutes"],
                "attending": attending}
    if attending:
        released["venue"] = {k: v for k, v in session["venue"].items() if v}
    return None, released


# --- views ----------------------------------------------------------------------

def _iso(value):
    return value.isoformat() if value is not None else None


def intervention_view(case):
    chosen = case.intervention or {}
    return {k: _iso(v) if k == "chosen_at" else v for k, v in chosen.items()} if chosen else None


def session_view(session, operational=False, notes=None):
    """A session as the API shows it. The venue's name and address, and the notes, only
    when `operational` (a caller who may see the case's personal data)."""
    view = {
        "session_id": session["session_id"],
        "status": session["status"],
        "revision": session["revision"],
        "process_type": session["process_type"],
        "starts_at": _iso(session["starts_at"]),
        "duration_minutes": session["duration_minutes"],
        "venue": {"kind": session["venue"]["kind"]},
        "attendee_ids": list(session["attendee_ids"]),
        "removed_ids": list(session.get("removed_ids") or []),
        "by": session.get("by"),
        "created_at": _iso(session.get("created_at")),
        "updated_at": _iso(session.get("updated_at")),
    }
    if session.get("cancelled"):
        view["cancelled"] = {k: _iso(v) if k == "at" else v for k, v in session["cancelled"].items()}
    if session.get("held"):
        view["held"] = {k: _iso(v) if k == "at" else v for k, v in session["held"].items()}
    if operational:
        view["venue"] = dict(session["venue"])
        view["notes"] = notes
    return view
