"""Retention: a victim who declined, or could not be reached, keeps only what statistics
need. Pure rules, no I/O.

When a case closes with `harmed_declined` or `no_contact`, its retention period starts:
`retention_days` (365 by default, REFERRALS_RETENTION_DAYS) after the London day of
closure, the harmed person's personal data, and their supporters', is crypto-shredded
exactly as the erasure endpoint does it (their data key destroyed, their ciphertext
dropped), and their record keeps only their role and the statistical attributes
(`STATISTICAL`: age band, gender, ethnicity, those the record has). Their language and
access needs go. The harmer and the referrer are not touched: their data follows the
case's own retention, not this rule.

`case.retention`: {} or {"reason": the closure reason, "due_on": "YYYY-MM-DD",
"reduced_at": None | when it was done, "participants": [ids reduced]}
"""
from datetime import timedelta

from services.referrals.deadlines import today_in_london
from shared.events.schemas.agreements import STATISTICAL_ATTRIBUTES

STATISTICAL = STATISTICAL_ATTRIBUTES
REASONS = ("harmed_declined", "no_contact")
DEFAULT_RETENTION_DAYS = 365
# who is reduced: the victim, and the people supporting them (a supporter on a case is
# there for the harmed person; the harmer's helpers are appropriate adults)
REDUCED_ROLES = ("harmed", "supporter")


def schedule(reason, closed_at, days=DEFAULT_RETENTION_DAYS):
    """The retention to record when a case closes for `reason` ({} if none applies)."""
    if reason not in REASONS:
        return {}
    return {"reason": reason, "due_on": (today_in_london(closed_at) + timedelta(days=days)).isoformat(),
            "reduced_at": None, "participants": []}


def due_day(retention):
    """The day bucket the store keeps for the timer: the due day, until it is done."""
    if not retention or retention.get("reduced_at") is not None:
        return None
    return retention.get("due_on")


def owed(retention, today):
    day = due_day(retention)
    return day is not None and day <= today.isoformat()


def targets(case):
    """The people whose record is reduced: the harmed person and the supporters."""
    return [p["party_id"] for p in case.participants if p["role"] in REDUCED_ROLES]


def reduced(participant):
    """A participant's record reduced to statistics, and the attributes it keeps."""
    attributes = {k: v for k, v in (participant.get("attributes") or {}).items() if k in STATISTICAL}
    return {**participant, "attributes": attributes, "reduced": True}, sorted(attributes)


def view(retention):
    if not retention:
        return None
    return {"reason": retention["reason"], "due_on": retention["due_on"],
            "reduced_at": retention["reduced_at"].isoformat() if retention.get("reduced_at") else None,
            "participants": list(retention.get("participants") or []), "retained": list(STATISTICAL)}
