"""What follows the intervention, as a whole: its settings, and what closing a case sets
off (pure rules; the pieces are in agreement.py, surveys.py and retention.py).

Closing a case (POST /v1/cases/{id}/transitions {to: CLOSED, reason}):
- an agreement still being monitored ends, not completed: its outcome is recorded then;
- a case that reached INTERVENTION asks each party still taking part for a survey, and
  schedules the follow-up survey;
- a case closed because the victim declined or could not be reached starts the victim's
  retention period.

Settings, from the environment (read when the service starts):
- REFERRALS_AGREEMENT_REMINDER_DAYS: days before an item's due date its owner is reminded (3)
- REFERRALS_FOLLOW_UP_DAYS: days after closure the follow-up survey is asked for (90)
- REFERRALS_RETENTION_DAYS: days after closure a declined or unreachable victim's record
  is reduced to statistics (365)
- REFERRALS_PUBLIC_URL: where people reach the survey pages (`<url>/v1/surveys/{token}`)
"""
import os
from dataclasses import dataclass

from services.referrals import agreement, retention, surveys

PUBLIC_URL = "http://127.0.0.1:8001"


@dataclass(frozen=True)
class Aftercare:
    reminder_days: int = agreement.DEFAULT_REMINDER_DAYS
    follow_up_days: int = surveys.DEFAULT_FOLLOW_UP_DAYS
    retention_days: int = retention.DEFAULT_RETENTION_DAYS
    survey_valid_days: int = surveys.VALID_DAYS
    public_url: str = PUBLIC_URL


def _days(environ, name, default):
    text = environ.get(name, "")
    if text in ("", None):
        return default
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(f"{name} must be a whole number of days, 0 or more")
    return value


def from_environment(environ=None):
    environ = os.environ if environ is None else environ
    return Aftercare(
        reminder_days=_days(environ, "REFERRALS_AGREEMENT_REMINDER_DAYS", agreement.DEFAULT_REMINDER_DAYS),
        follow_up_days=_days(environ, "REFERRALS_FOLLOW_UP_DAYS", surveys.DEFAULT_FOLLOW_UP_DAYS),
        retention_days=_days(environ, "REFERRALS_RETENTION_DAYS", retention.DEFAULT_RETENTION_DAYS),
        public_url=environ.get("REFERRALS_PUBLIC_URL") or PUBLIC_URL,
    )


def at_closure(case, reason, now, settings):
    """What closing `case` for `reason` at `now` changes, beside its status: (state, events,
    whether surveys are to be asked for). The surveys themselves need the people's keys,
    so the caller makes them (`surveys.recipients`)."""
    state, events = {}, []
    if agreement.is_open(case.agreement):
        # items left open when the case closes were not all done: the agreement was not completed
        result = agreement.AGREEMENT_NOT_COMPLETED
        state["agreement"] = agreement.conclude(case.agreement, result, now, "closure")
        events.append(("case.outcome_recorded", {"case_id": case.case_id, "outcome": result}))
    ask = surveys.reached_intervention(case)
    if ask:
        state["follow_up"] = surveys.follow_up_schedule(now, settings.follow_up_days)
    kept = retention.schedule(reason, now, settings.retention_days)
    if kept:
        state["retention"] = kept
    return state, events, ask
