"""Safe-contact windows: when it is safe to contact someone (pure)."""
from datetime import datetime, timezone

import pytest

from services.notifications import windows

WEEKDAY_EVENINGS = [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "18:00", "end": "20:00"}]


def utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


def test_no_windows_means_any_time():
    assert windows.is_open([], utc(2026, 11, 26, 3, 0))
    assert windows.next_opening([], utc(2026, 11, 26, 3, 0)) is None


def test_inside_a_window_in_winter_london_equals_utc():
    # Thursday 26 November 2026, 18:30 GMT
    assert windows.next_opening(WEEKDAY_EVENINGS, utc(2026, 11, 26, 18, 30)) is None


def test_before_a_window_waits_for_its_start():
    assert windows.next_opening(WEEKDAY_EVENINGS, utc(2026, 11, 26, 9, 0)) == utc(2026, 11, 26, 18, 0)


def test_the_end_is_exclusive_and_the_weekend_is_skipped():
    # Friday 27 November at 20:00 is closed; the next opening is Monday 30 November at 18:00
    assert windows.next_opening(WEEKDAY_EVENINGS, utc(2026, 11, 27, 20, 0)) == utc(2026, 11, 30, 18, 0)


def test_summer_time_is_local_time():
    # 1 July 2026 is a Wednesday; 18:00 BST is 17:00 UTC
    assert windows.next_opening(WEEKDAY_EVENINGS, utc(2026, 7, 1, 12, 0)) == utc(2026, 7, 1, 17, 0)
    assert windows.is_open(WEEKDAY_EVENINGS, utc(2026, 7, 1, 17, 30))
    assert not windows.is_open(WEEKDAY_EVENINGS, utc(2026, 7, 1, 19, 30))


def test_a_window_past_midnight_runs_into_the_next_day():
    nights = [{"days": ["sat"], "start": "22:00", "end": "02:00"}]
    # Sunday 29 November 2026 01:00 belongs to Saturday's window
    assert windows.is_open(nights, utc(2026, 11, 29, 1, 0))
    assert not windows.is_open(nights, utc(2026, 11, 29, 2, 0))
    assert windows.next_opening(nights, utc(2026, 11, 29, 2, 0)) == utc(2026, 12, 5, 22, 0)


def test_several_windows_take_the_earliest_opening():
    mixed = [{"days": ["sun"], "start": "10:00", "end": "11:00"}, {"days": ["fri"], "start": "08:00", "end": "09:00"}]
    assert windows.next_opening(mixed, utc(2026, 11, 26, 12, 0)) == utc(2026, 11, 27, 8, 0)


@pytest.mark.parametrize("bad", [
    [{"days": [], "start": "09:00", "end": "10:00"}],
    [{"days": ["someday"], "start": "09:00", "end": "10:00"}],
    [{"days": ["mon"], "start": "nine", "end": "10:00"}],
])
def test_windows_that_never_open_are_refused(bad):
    with pytest.raises(windows.InvalidWindow):
        windows.next_opening(bad, utc(2026, 11, 26, 12, 0))
