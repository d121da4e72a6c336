"""Days in the demo data, named relative to the day the data is read. Pure.

Demo data with fixed days goes stale: a facilitator whose last process is dated one year
is no longer current two years on, and staffing stops. So the demo registry's seed file
and the sample referrals name their days `today`, `today-80d` or `today+400d` (whole days
back or on from the day they are read), and the tools that read them (the registry seed,
the demo, the tests) resolve them here. Whole days only: "a year ago" has no answer on
29 February, a count of days always has one.

Only those tools accept this form. The HTTP and RPC APIs take ISO days (YYYY-MM-DD): what
is stored must name the same day tomorrow.
"""
import copy
import re
from datetime import date, datetime, timedelta

# [0-9], not \d: \d also takes digits of other scripts
RELATIVE = re.compile(r"today(?:([+-])([0-9]{1,5})d)?")
ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
FORMS = "YYYY-MM-DD, today, today-<N>d or today+<N>d"


class BadDay(ValueError):
    """A day in a demo file that is neither an ISO day nor the relative form."""


def resolve(value, today, where):
    """`value` as an ISO day: the relative form counted from `today`; an ISO day (text,
    or a date as YAML reads an unquoted one) as it is; None as None. Anything else is
    BadDay, naming `where` it was found."""
    if value is None:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        relative = RELATIVE.fullmatch(value)
        if relative:
            sign, count = relative.groups()
            try:
                return (today + timedelta(days=int(count or 0) * (-1 if sign == "-" else 1))).isoformat()
            except OverflowError:
                pass  # before year 1 or after 9999: no day to name
        elif ISO_DAY.fullmatch(value) and _is_day(value):
            return value
    raise BadDay(f"{where}: {value!r} is not a day: give {FORMS}")


def resolve_fields(record, paths, today, where):
    """A copy of `record` with the days at `paths` resolved; a path names a field of a
    field with a dot ("offence.date"). Paths the record lacks are left out."""
    resolved = copy.deepcopy(record)
    for path in paths:
        *parents, name = path.split(".")
        holder = resolved
        for parent in parents:
            holder = holder.get(parent) if isinstance(holder, dict) else None
        if isinstance(holder, dict) and name in holder:
            holder[name] = resolve(holder[name], today, f"{where}: {path}")
    return resolved


def _is_day(text):
    try:
        date.fromisoformat(text)
    except ValueError:  # 2026-02-30
        return False
    return True
