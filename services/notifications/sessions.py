"""Sessions: who hears of one, what their message may say, when the reminder goes, and
when a notice has been overtaken by a later change. Pure rules, no I/O.

| event             | not facilitator-led                               | facilitator-led (DA, GBV, sexual offence) |
|-------------------|---------------------------------------------------|-------------------------------------------|
| session.scheduled | each attendee: an invitation, and a reminder      | the lead facilitator: a briefing          |
|                   | REMINDER_HOURS before it starts                   |                                           |
| session.changed   | each attendee: the new arrangements, and a new    | the lead facilitator: a briefing          |
|                   | reminder; each person taken off it: that they are |                                           |
|                   | no longer expected                                |                                           |
| session.cancelled | each attendee: that it will not take place        | the lead facilitator: a briefing          |

Attendees' details (and the session's venue, which an invitation needs) come from
referrals for the purpose `session_invitation`, asked at send time with the session's id;
referrals releases the venue only to those attending, and nothing at all in a
facilitator-led case. The venue is rendered into the message and never stored here. The
lead facilitator's work email comes from matching, as for an offer.

Each session event carries the session's `revision` (one more with every change), and
so does every notice made from it. A notice still waiting (for a safe-contact window, or
a reminder for its time) when a later revision arrives is withdrawn; and at send time,
the revision referrals gives is compared again: a notice of an earlier revision, of a
cancelled session (but its cancellation), or a reminder of a session already started,
is suppressed with the reason.
"""
from datetime import datetime, timedelta

from services.notifications import labels

SCHEDULED, CHANGED, CANCELLED = "session.scheduled", "session.changed", "session.cancelled"
# the session events notifications hears (shared/messaging/topology.py)
EVENTS = (SCHEDULED, CHANGED, CANCELLED)
# not an event on the bus: the reminder, a delivery made from an invitation or a change
REMINDER = "session.reminder"
MESSAGE_EVENTS = EVENTS + (REMINDER,)
# a session event that makes what is still waiting about the session out of date
SUPERSEDING = {CHANGED: "session_changed", CANCELLED: "session_cancelled"}
# the contact lookup for the people attending (referrals)
PURPOSE = "session_invitation"
# the template role of every attendee's message (parties and those who help them alike)
ATTENDEE = "attendee"
REMINDER_HOURS = 24.0


def template_role(event_type, role):
    """Whose template a message is written from: everyone attending a session gets the one
    role-neutral attendee template (it words itself by their role); a facilitator theirs."""
    return ATTENDEE if event_type in MESSAGE_EVENTS and role != "facilitator" else role


# --- who is told --------------------------------------------------------------------

def recipients(data, case, led):
    """(role, recipient id) of everyone a session event tells. `led`: the case's contact is
    the facilitator's to lead (from the event, or from what notifications knows of the case)."""
    if led or data.get("facilitator_led"):
        return [("facilitator", facilitator_id) for facilitator_id in briefed(data, case)]
    told = []
    for participant_id in list(data["attendee_ids"]) + list(data.get("removed_attendee_ids") or []):
        participant = case.participant(participant_id)
        if participant is not None:   # everyone on a case is in the referral notifications heard
            told.append((participant["role"], participant_id))
    return told


def briefed(data, case):
    """The facilitators holding the case who lead it (all who hold it, if none of them is known
    as its lead: a lead released and not yet replaced leaves the co-facilitator holding it)."""
    holding = list(dict.fromkeys(data.get("facilitator_ids") or []))
    leads = {a.get("facilitator_id") for a in (case.assignments or {}).values() if a.get("role") == "lead"}
    return [f for f in holding if f in leads] or holding


def reminder_due(event_type, recipient_role, recipient_id, data, hours=REMINDER_HOURS):
    """When to remind this recipient of the session (None: no reminder): `hours` before it
    starts, for the people attending it after an invitation or a change."""
    if event_type not in (SCHEDULED, CHANGED) or recipient_role == "facilitator":
        return None
    if recipient_id in (data.get("removed_attendee_ids") or []):
        return None
    return datetime.fromisoformat(data["starts_at"]) - timedelta(hours=float(hours))


def reminder_event_id(event_id):
    """The id a reminder's delivery is keyed by: the event's, marked (one per recipient)."""
    return f"{event_id}.reminder"


# --- what a message may say ---------------------------------------------------------

def when(starts_at):
    """The start, London time, in words, in each language."""
    local = datetime.fromisoformat(starts_at).astimezone(labels.LONDON)
    return {language: f"{labels.day_words(language)(local.date().isoformat())} {at} {local:%H:%M}"
            for language, at in (("en", "at"), ("cy", "am"))}


def facts(event_type, recipient_role, recipient_id, data, case):
    """The non-personal facts of a session message: codes, ids, the time and the kind of
    venue. (The venue's name and address are fetched at send time, never kept.)"""
    found = {
        "session_id": data["session_id"],
        "revision": data["revision"],
        "process_type": data["process_type"],
        "starts_at": data["starts_at"],
        "when": when(data["starts_at"]),
        "duration_minutes": data["duration_minutes"],
        "venue_kind": data["venue_kind"],
        # taken off the session by this change: told they are no longer expected
        "removed": recipient_id in (data.get("removed_attendee_ids") or []),
    }
    if recipient_role == "facilitator":
        roles = [(case.participant(pid) or {}).get("role", "unknown") for pid in data["attendee_ids"]]
        found["attendee_roles"] = roles
        found["contact_led"] = True
    return found


def released(answer):
    """What the holder released for this message alone (rendered, never stored): the venue."""
    session = ((answer or {}).get("details") or {}).get("session") or {}
    return {"venue": session.get("venue")}


# --- overtaken notices --------------------------------------------------------------

def superseded(delivery, event):
    """Whether a waiting delivery is about this event's session, from an earlier revision."""
    data, made_from = event["data"], delivery.facts or {}
    return made_from.get("session_id") == data["session_id"] and made_from.get("revision", 0) < data["revision"]


def screen(event_type, made_from, answer, now):
    """The holder's answer, or a refusal when the session moved on since `made_from` (the
    facts the message was made from): cancelled, changed again, or (a reminder) begun."""
    if event_type not in MESSAGE_EVENTS or not answer.get("granted"):
        return answer
    session = (answer.get("details") or {}).get("session")
    if session is None:
        return answer   # a facilitator's briefing: matching knows nothing of sessions
    if session.get("status") == "cancelled" and event_type != CANCELLED:
        return _refused("session_cancelled")
    if session.get("revision", 0) > made_from.get("revision", 0):
        return _refused("session_changed")
    if event_type == REMINDER and (session.get("status") == "held"
                                   or now >= datetime.fromisoformat(session["starts_at"])):
        return _refused("session_started")
    return answer


def _refused(reason):
    return {"granted": False, "reason": reason, "details": {}}
