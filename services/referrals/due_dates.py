"""When a case is next due, and the buckets a listing by due date reads: pure, no I/O.

A case's open deadlines:
- the victim_told_about_rj clock, until the victim is told or the case closes;
- the support_referral clock, until it is settled or the case closes;
- each open item of the outcome agreement, missed when its due day ends (London time).
Its next due is the earliest of them (`NextDue`), and it is overdue once that instant
has passed.

How a listing finds them by equality alone (FerretDB 1.24 pushes no range down): the
store keeps, beside `next_due_at`, a `due_bucket` per case, recomputed whenever a change
is projected: `overdue` once a deadline of the case is past (the timers always change a
case when one of its deadlines passes: case.deadline_missed, an agreement item settled as
missed), else the London Monday of the week it falls in, else nothing. A window of due
dates reads `overdue` (when the window reaches back before now) and one bucket per week
it covers, from the week of the `floor` (the oldest day a timer has still to sweep: a
deadline passed but not yet announced sits in its week's bucket until then), and filters
the exact instants in Python. A window reaches at most `MAX_WEEKS_AHEAD` weeks ahead, so a
listing issues a bounded number of queries whatever the number of cases.
"""
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from services.referrals import lifecycle
from services.referrals.deadlines import DEADLINE, LONDON, SUPPORT_DEADLINE, end_of_day, start_of_day

AGREEMENT_ITEM = "agreement_item"
KINDS = (DEADLINE, SUPPORT_DEADLINE, AGREEMENT_ITEM)
OVERDUE = "overdue"
MAX_WEEKS_AHEAD = 53


@dataclass(frozen=True)
class NextDue:
    at: datetime    # when it is missed (UTC)
    kind: str       # one of KINDS


def open_deadlines(case):
    """Every open deadline of a Case, as (NextDue, announced missed), in no order."""
    found = []
    closed = case.status == lifecycle.CLOSED
    if case.deadline_due_at is not None and case.victim_told_at is None and not closed:
        found.append((NextDue(case.deadline_due_at, DEADLINE), bool(case.deadline_missed_sent)))
    if case.support_due_at is not None and case.support_settled_at is None and not closed:
        found.append((NextDue(case.support_due_at, SUPPORT_DEADLINE), bool(case.support_missed_sent)))
    for item in (case.agreement or {}).get("items") or ():
        if item.get("status") == "open" and item.get("due_on"):
            found.append((NextDue(end_of_day(date.fromisoformat(item["due_on"])), AGREEMENT_ITEM), False))
    return found


def next_due(case):
    """The earliest open deadline of a Case (NextDue), or None."""
    found = open_deadlines(case)
    return min((due for due, _ in found), key=lambda due: due.at) if found else None


def stored_fields(case, now):
    """The fields the store keeps beside a Case to list it by due date."""
    found = open_deadlines(case)
    if not found:
        return {"next_due_at": None, "next_due_kind": None, "due_bucket": None}
    first = min((due for due, _ in found), key=lambda due: due.at)
    passed = first.at <= now or any(announced for _, announced in found)
    return {"next_due_at": first.at, "next_due_kind": first.kind,
            "due_bucket": OVERDUE if passed else week_of(first.at)}


def week_of(at):
    """The bucket of an instant: the Monday (ISO day) of its London week."""
    day = at.astimezone(LONDON).date()
    return (day - timedelta(days=day.weekday())).isoformat()


@dataclass(frozen=True)
class DueWindow:
    """Cases whose next due falls in [after, before) (either end may be open), or, with
    `overdue`, only those whose next due has passed by `now`."""
    now: datetime
    before: datetime = None
    after: datetime = None
    overdue: bool = False

    @property
    def end(self):
        ends = [at for at in (self.before, self.now if self.overdue else None) if at is not None]
        return min(ends) if ends else None

    def holds(self, at):
        end = self.end
        return at is not None and (end is None or at < end) and (self.after is None or at >= self.after)

    def buckets(self, floor):
        """The due buckets that can hold its cases; `floor` the oldest day a timer has yet to
        sweep (its week's bucket may still hold a deadline passed but not yet announced)."""
        end = self.end
        found = [OVERDUE] if self.after is None or self.after < self.now else []
        start = start_of_day(floor)
        if self.after is not None:
            start = max(start, self.after)
        week = datetime.fromisoformat(week_of(start)).date()
        last = end.astimezone(LONDON).date()
        while week <= last:
            found.append(week.isoformat())
            week += timedelta(days=7)
        return found


def latest_end(now):
    """The latest `due_before` a listing takes."""
    return now + timedelta(weeks=MAX_WEEKS_AHEAD)
