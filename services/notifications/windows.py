"""Safe-contact windows: when a person has said it is safe to contact them.

A window is `{"days": ["mon", ...], "start": "HH:MM", "end": "HH:MM"}` in Europe/London
local time (so it follows the clocks through summer time). A window whose end is not
after its start runs past midnight into the next day. No windows at all means any
time. Pure functions of the windows and the current instant.
"""
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# How far ahead to look for an opening: a week covers every weekly pattern, plus slack for
# a window that starts on one day and runs into the next.
HORIZON_DAYS = 9


class InvalidWindow(ValueError):
    pass


def _clock(text):
    try:
        hours, minutes = (int(part) for part in str(text).split(":"))
        return time(hours, minutes)
    except (TypeError, ValueError):
        raise InvalidWindow(f"not a HH:MM time: {text!r}")


def _local(day, clock):
    """A local wall-clock time on a date, as an aware UTC instant. In the spring gap the
    time does not exist; zoneinfo moves it forward, which only makes a window shorter."""
    return datetime.combine(day, clock, tzinfo=LONDON).astimezone(timezone.utc)


def intervals(windows, around):
    """The (start, end) UTC instants of every window occurrence near `around`, in order."""
    today = around.astimezone(LONDON).date()
    found = []
    for window in windows:
        days = window.get("days") or []
        unknown = [d for d in days if d not in DAYS]
        if unknown:
            raise InvalidWindow(f"unknown days: {unknown}")
        start, end = _clock(window.get("start")), _clock(window.get("end"))
        for offset in range(-1, HORIZON_DAYS):
            day = today + timedelta(days=offset)
            if DAYS[day.weekday()] not in days:
                continue
            end_day = day if end > start else day + timedelta(days=1)
            found.append((_local(day, start), _local(end_day, end)))
    return sorted(found)


def is_open(windows, now):
    if not windows:
        return True
    return any(start <= now < end for start, end in intervals(windows, now))


def next_opening(windows, now):
    """None when contact is safe now; else the next instant a window opens.

    Raises InvalidWindow when the windows never open (no days, or malformed)."""
    if is_open(windows, now):
        return None
    later = [start for start, _ in intervals(windows, now) if start > now]
    if not later:
        raise InvalidWindow("the safe-contact windows never open")
    return min(later)
