"""The case lifecycle of a restorative justice case as a pure state machine.

    RECEIVED -> TRIAGE -> CONTACTING -> ASSESSMENT -> ALLOCATED -> PREPARATION
             -> INTERVENTION -> AGREEMENT_MONITORING -> FOLLOW_UP -> CLOSED

- Each state moves on to the next; INTERVENTION may go straight to FOLLOW_UP when
  there is no agreement to monitor.
- ON_HOLD can be entered from any state before INTERVENTION, and left only back to
  the state it was entered from (or to CLOSED).
- Any state but CLOSED can go to CLOSED, always with a closure reason. CLOSED is final.
- Events from matching only ever move a case forward along the main line (never out
  of ON_HOLD or CLOSED), so a repeated or late event changes nothing.
"""
from dataclasses import dataclass

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from shared.events.vocabulary import CLOSURE_REASONS

MAIN_LINE = (
    "RECEIVED", "TRIAGE", "CONTACTING", "ASSESSMENT", "ALLOCATED", "PREPARATION", "INTERVENTION",
    "AGREEMENT_MONITORING", "FOLLOW_UP",
)
CLOSED = "CLOSED"
ON_HOLD = "ON_HOLD"
STATUSES = MAIN_LINE + (CLOSED, ON_HOLD)
HOLDABLE = MAIN_LINE[:MAIN_LINE.index("INTERVENTION")]
SHORTCUTS = {"INTERVENTION": ("FOLLOW_UP",)}

# What each of matching's events says about how far a case has come.
EVENT_TARGETS = {
    "case.needs_review": "TRIAGE",
    "assignment.waitlisted": "CONTACTING",
    "facilitator.assigned": "ASSESSMENT",
    "assignment.accepted": "ALLOCATED",
}
ASSESSED_TARGETS = {"suitable": "CONTACTING", "unsuitable": "TRIAGE", "needs_review": "TRIAGE"}


class IllegalTransition(ValueError):
    def __init__(self, current, target, allowed, message=None):
        self.current, self.target, self.allowed = current, target, allowed
        super().__init__(message or f"a case cannot go from {current} to {target}")


class ReasonRequired(ValueError):
    pass


@dataclass(frozen=True)
class Transition:
    from_status: str
    to_status: str
    reason: str = None
    held_from: str = None   # the state to resume after ON_HOLD

    @property
    def closes(self):
        return self.to_status == CLOSED

    def event_data(self, case_id):
        return {"case_id": case_id, "from_status": self.from_status, "to_status": self.to_status,
                "reason": self.reason}


def allowed_from(status, held_from=None):
    """The states a case in `status` may move to, in lifecycle order."""
    if status == CLOSED:
        return []
    if status == ON_HOLD:
        return [held_from, CLOSED] if held_from else [CLOSED]
    index = MAIN_LINE.index(status)
    nexts = list(MAIN_LINE[index + 1:index + 2]) + list(SHORTCUTS.get(status, ()))
    if status in HOLDABLE:
        nexts.append(ON_HOLD)
    return nexts + [CLOSED]


def transition(status, target, reason=None, held_from=None):
    """The Transition from `status` to `target`; raise IllegalTransition or ReasonRequired."""
    allowed = allowed_from(status, held_from)
    if target not in allowed:
        raise IllegalTransition(status, target, allowed)
    if target == CLOSED:
        if reason not in CLOSURE_REASONS:
            raise ReasonRequired(f"closing a case needs a reason, one of: {', '.join(CLOSURE_REASONS)}")
    elif reason is not None and target != ON_HOLD:
        # Only closing and holding carry a reason; anything else would be silently dropped.
        raise IllegalTransition(status, target, allowed, "only ON_HOLD and CLOSED take a reason")
    return Transition(status, target, reason, held_from=status if target == ON_HOLD else None)


def advance_for_event(status, event_type, data):
    """The forward Transition one of matching's events calls for, or None."""
    target = ASSESSED_TARGETS.get(data.get("decision")) if event_type == "case.assessed" else EVENT_TARGETS.get(event_type)
    if target is None or status not in MAIN_LINE:
        return None  # on hold or closed: a person decides what happens next
    if MAIN_LINE.index(target) <= MAIN_LINE.index(status):
        return None
    return Transition(status, target)


class TransitionSchema(Schema):
    """The body of POST /v1/cases/{id}/transitions."""
    to = fields.Str(required=True, validate=validate.OneOf(STATUSES))
    # CLOSED: one of the closure reasons (required); ON_HOLD: a short code such as awaiting_sentence
    reason = fields.Str(validate=[validate.Length(min=1, max=60),
                                  validate.Regexp(r"^[a-z0-9][a-z0-9_.-]*$", error="Use a lower-case code.")])

    @validates_schema
    def reason_fits_target(self, data, **kwargs):
        target, reason = data.get("to"), data.get("reason")
        if target == CLOSED and reason not in CLOSURE_REASONS:
            raise ValidationError(f"Closing a case needs a reason, one of: {', '.join(CLOSURE_REASONS)}.", "reason")
        if target not in (CLOSED, ON_HOLD, None) and reason is not None:
            raise ValidationError("Only ON_HOLD and CLOSED take a reason.", "reason")
