"""Events of a case's intervention and its sessions, which the referrals service emits.

They say which kind of process was chosen and when, for how long, what kind of venue and
with whom (pseudonymous participant ids) a session is arranged: never the venue's name or
address, never notes, never anything of a person but their id.
"""
from marshmallow import Schema, fields, validate

from shared.events.schemas.spec import EventSpec
from shared.events.vocabulary import CODE, ID, PROCESS_TYPES, SUBJECT

# where a session takes place: the kind of place only (its name and address stay in referrals)
VENUE_KINDS = ("rj_service", "community", "prison", "remote", "neutral")
SESSION_STATUSES = ("scheduled", "changed", "cancelled", "held")
MIN_MINUTES, MAX_MINUTES = 15, 480


class InterventionChosen(Schema):
    case_id = fields.Str(required=True, validate=ID)
    process_type = fields.Str(required=True, validate=validate.OneOf(PROCESS_TYPES))


class Session(Schema):
    """What every session event says about the session, as it stands after the event."""
    case_id = fields.Str(required=True, validate=ID)
    session_id = fields.Str(required=True, validate=ID)
    # 1 when scheduled, one more with each change (and the cancellation): a notice made from
    # an earlier revision is out of date
    revision = fields.Int(required=True, strict=True, validate=validate.Range(min=1))
    process_type = fields.Str(required=True, validate=validate.OneOf(PROCESS_TYPES))
    starts_at = fields.AwareDateTime(required=True, format="iso")
    duration_minutes = fields.Int(required=True, strict=True, validate=validate.Range(min=MIN_MINUTES,
                                                                                     max=MAX_MINUTES))
    venue_kind = fields.Str(required=True, validate=validate.OneOf(VENUE_KINDS))
    attendee_ids = fields.List(fields.Str(validate=ID), required=True)
    # domestic abuse, gender-based violence, sexual offence: nobody but the facilitator is written to
    facilitator_led = fields.Bool(required=True)
    # the facilitators holding the case (pseudonymous staff ids), for whoever must brief them
    facilitator_ids = fields.List(fields.Str(validate=SUBJECT), load_default=list)


class SessionChanged(Session):
    # people taken off the session by this change (they are no longer expected)
    removed_attendee_ids = fields.List(fields.Str(validate=ID), load_default=list)


class SessionCancelled(Session):
    reason = fields.Str(required=True, validate=[CODE, validate.Length(max=60)])


class SessionHeld(Session):
    attended_ids = fields.List(fields.Str(validate=ID), required=True)


SPECS = (
    EventSpec("intervention.chosen", "referrals", InterventionChosen()),
    EventSpec("session.scheduled", "referrals", Session()),
    EventSpec("session.changed", "referrals", SessionChanged()),
    EventSpec("session.cancelled", "referrals", SessionCancelled()),
    EventSpec("session.held", "referrals", SessionHeld()),
)
