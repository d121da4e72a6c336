from datetime import date, datetime, timedelta, timezone

import pytest

from services.referrals import deadlines


@pytest.mark.parametrize("reported, enhanced, last_day", [
    (date(2026, 11, 23), False, date(2026, 11, 30)),   # Monday: five weekdays on, skipping a weekend
    (date(2026, 11, 23), True, date(2026, 11, 24)),    # enhanced rights: one working day
    (date(2026, 11, 27), True, date(2026, 11, 30)),    # Friday: the weekend does not count
    (date(2026, 11, 28), True, date(2026, 11, 30)),    # reported on a Saturday
    # Christmas 2026: 25th (Fri), Boxing Day observed on Mon 28th, New Year's Day (Fri)
    (date(2026, 12, 24), False, date(2027, 1, 5)),
    (date(2026, 12, 24), True, date(2026, 12, 29)),
    # Easter 2026: Good Friday 3 April and Easter Monday 6 April
    (date(2026, 4, 2), True, date(2026, 4, 7)),
    (date(2026, 4, 1), False, date(2026, 4, 10)),    # Thu 2, Tue 7, Wed 8, Thu 9, Fri 10
    # the late summer bank holiday (31 August 2026) is a holiday in both England and Wales
    (date(2026, 8, 28), True, date(2026, 9, 1)),
])
def test_working_days_skip_weekends_and_bank_holidays(reported, enhanced, last_day):
    clock = deadlines.victim_told_about_rj(reported, enhanced)
    assert clock.last_day == last_day
    assert clock.enhanced_rights is enhanced


def test_bank_holidays_of_england_and_wales_are_not_working_days():
    assert not deadlines.is_working_day(date(2026, 12, 28))   # Boxing Day (substitute)
    assert not deadlines.is_working_day(date(2026, 5, 25))    # spring bank holiday
    assert deadlines.is_working_day(date(2026, 3, 17))        # St Patrick's Day is Northern Ireland's only
    assert deadlines.is_working_day(date(2026, 8, 3))         # Scotland's summer holiday is not ours


def test_the_deadline_ends_at_midnight_london_time_in_winter_and_summer():
    winter = deadlines.victim_told_about_rj(date(2026, 11, 23), False)
    assert winter.due_at == datetime(2026, 12, 1, 0, 0, tzinfo=timezone.utc)
    assert winter.notice_at == datetime(2026, 11, 30, 0, 0, tzinfo=timezone.utc)
    summer = deadlines.victim_told_about_rj(date(2026, 6, 30), True)
    assert summer.last_day == date(2026, 7, 1)
    assert summer.due_at == datetime(2026, 7, 1, 23, 0, tzinfo=timezone.utc)   # BST: UTC+1


def test_the_event_data_is_valid_for_the_catalogue():
    from shared.events import new_event
    clock = deadlines.victim_told_about_rj(date(2026, 11, 23), False)
    event = new_event("case.deadline_missed", "c-1", clock.event_data("c-1"), source="/amends/t/referrals",
                      region="t", correlationid="c-1")
    assert event["data"]["deadline"] == "victim_told_about_rj"


@pytest.mark.parametrize("reported, last_day", [
    (date(2026, 11, 23), date(2026, 11, 25)),   # Monday: Tuesday and Wednesday
    (date(2026, 11, 27), date(2026, 12, 1)),    # Friday: Monday and Tuesday
    (date(2026, 11, 28), date(2026, 12, 1)),    # reported on a Saturday
    (date(2026, 12, 24), date(2026, 12, 30)),   # Christmas Day and the Boxing Day substitute skipped
    (date(2026, 4, 2), date(2026, 4, 8)),       # Good Friday and Easter Monday skipped
])
def test_the_support_referral_is_due_within_two_working_days_for_every_victim(reported, last_day):
    for enhanced in (False, True):
        clock = deadlines.support_referral(reported, enhanced)
        assert (clock.deadline, clock.last_day, clock.enhanced_rights) == ("support_referral", last_day, enhanced)
        assert clock.notice_at == deadlines.start_of_day(last_day) and clock.due_at == deadlines.end_of_day(last_day)


def test_the_support_clock_of_an_older_case_follows_exactly_from_its_first_clock():
    """For the backfill of cases stored before the support clock: from the RJ clock's last
    day alone (the day reported is sealed), every day of two years, both kinds of victim."""
    day = date(2026, 1, 1)
    for offset in range(2 * 366):
        reported = day + timedelta(days=offset)
        for enhanced in (False, True):
            rj = deadlines.victim_told_about_rj(reported, enhanced)
            assert deadlines.support_referral_beside(rj.last_day, enhanced) == \
                deadlines.support_referral(reported, enhanced), (reported, enhanced)


def test_working_days_can_be_counted_back():
    assert deadlines.shift_working_days(date(2026, 11, 30), -1) == date(2026, 11, 27)   # Monday back to Friday
    assert deadlines.shift_working_days(date(2026, 12, 29), -1) == date(2026, 12, 24)   # over Christmas
    assert deadlines.shift_working_days(date(2026, 11, 27), 0) == date(2026, 11, 27)


def test_working_days_between_counts_what_add_working_days_steps_through():
    # Easter 2026: Good Friday 3 April and Easter Monday 6 April are not counted
    assert deadlines.working_days_between(date(2026, 4, 2), date(2026, 4, 7)) == 1
    assert deadlines.working_days_between(date(2026, 4, 2), date(2026, 4, 2)) == 0
    assert deadlines.working_days_between(date(2026, 4, 7), date(2026, 4, 2)) == 0
    start = date(2026, 12, 20)
    for count in range(12):
        assert deadlines.working_days_between(start, deadlines.add_working_days(start, count)) == count
