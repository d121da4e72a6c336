"""Victims' Code clocks: pure date arithmetic, no I/O.

A victim must be told about restorative justice within 5 working days of reporting
the crime, or 1 working day for a victim with enhanced rights; and referred to a
support service within 2 working days of reporting it, unless they do not want to
be (`support_referral`, the same for every victim). Working days skip
weekends and the bank holidays of England and Wales (from the maintained `holidays`
package, subdivisions ENG and WLS, whose union is used so a holiday in either counts).
The day of the report itself is not counted; the deadline is the end of the last
working day, Europe/London time.
"""
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

LONDON = ZoneInfo("Europe/London")
DEADLINE = "victim_told_about_rj"
STANDARD_DAYS = 5
ENHANCED_DAYS = 1
SUPPORT_DEADLINE = "support_referral"
SUPPORT_DAYS = 2


@lru_cache(maxsize=64)
def _bank_holidays(year):
    days = set()
    for subdiv in ("ENG", "WLS"):
        days |= set(holidays.country_holidays("GB", subdiv=subdiv, years=year))
    return frozenset(days)


def is_working_day(day):
    return day.weekday() < 5 and day not in _bank_holidays(day.year)


def add_working_days(start, count):
    """The `count`th working day after `start` (which is not itself counted)."""
    day = start
    while count > 0:
        day += timedelta(days=1)
        if is_working_day(day):
            count -= 1
    return day


def working_days_between(start, end):
    """How many working days after `start` there are up to and including `end` (0 when
    `end` is `start` or before it): the count `add_working_days` steps through."""
    return sum(1 for offset in range(1, (end - start).days + 1) if is_working_day(start + timedelta(days=offset)))


def today_in_london(now=None):
    """The day it is in London (a referral received at 00:30 BST is received that day)."""
    return (now or datetime.now(timezone.utc)).astimezone(LONDON).date()


def shift_working_days(day, count):
    """The working day `count` working days after (`count` < 0: before) the working day `day`."""
    step = timedelta(days=1 if count >= 0 else -1)
    left = abs(count)
    while left > 0:
        day += step
        if is_working_day(day):
            left -= 1
    return day


def end_of_day(day):
    """The first instant after `day` ends in London, as an aware UTC datetime."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=LONDON).astimezone(timezone.utc)


def start_of_day(day):
    return datetime.combine(day, time(0), tzinfo=LONDON).astimezone(timezone.utc)


@dataclass(frozen=True)
class Clock:
    deadline: str
    last_day: date          # the last working day on which it can be met
    due_at: datetime        # when it is missed (UTC)
    notice_at: datetime     # when to announce it is due: the start of its last day (UTC)
    enhanced_rights: bool

    def event_data(self, case_id):
        return {"case_id": case_id, "deadline": self.deadline,
                "due_at": self.due_at.isoformat(), "enhanced_rights": self.enhanced_rights}


def victim_told_about_rj(reported_on, enhanced_rights):
    days = ENHANCED_DAYS if enhanced_rights else STANDARD_DAYS
    return _clock(DEADLINE, add_working_days(reported_on, days), enhanced_rights)


def support_referral(reported_on, enhanced_rights):
    """Referred to a support service (or their refusal recorded) within 2 working days."""
    last_day = add_working_days(reported_on, SUPPORT_DAYS)
    return _clock(SUPPORT_DEADLINE, last_day, enhanced_rights)


def support_referral_beside(rj_last_day, enhanced_rights):
    """The support_referral clock of a case whose victim_told_about_rj clock ends on
    `rj_last_day`, for a case stored before it kept one (the day reported is sealed).

    Exact, not a guess: if the RJ clock's last day L is the n-th working day after the day
    reported r, the working days after r are those up to L, so the 2nd working day after r
    is the (n - 2)th working day before L (n = 5), or the working day after it (n = 1),
    whichever day r was (a weekend day or holiday included)."""
    days = ENHANCED_DAYS if enhanced_rights else STANDARD_DAYS
    return _clock(SUPPORT_DEADLINE, shift_working_days(rj_last_day, SUPPORT_DAYS - days), enhanced_rights)


def _clock(deadline, last_day, enhanced_rights):
    return Clock(deadline, last_day, end_of_day(last_day), start_of_day(last_day), enhanced_rights)


# The state of a Victims' Code clock:
#   running   its last day has not begun
#   due       it is its last day
#   missed    its last day has ended, and it was not met
#   met       met on time; met_late: met after its last day
#   stopped   it no longer runs, unmet: the case closed, or (support_referral) every harmed
#             person was erased before anything was recorded
CLOCK_STATES = ("running", "due", "missed", "met", "met_late", "stopped")


def clock_state(notice_at, due_at, met_at, closed, now, met=True):
    """The state of a clock (CLOCK_STATES) that falls due at `notice_at`, is missed at
    `due_at` and was settled at `met_at`; `met` False: settled without being met."""
    if met_at is not None:
        if not met:
            return "stopped"
        return "met_late" if due_at is not None and met_at >= due_at else "met"
    if closed:
        return "stopped"
    if due_at is not None and now >= due_at:
        return "missed"
    if notice_at is not None and now >= notice_at:
        return "due"
    return "running"
