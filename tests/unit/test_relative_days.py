"""The demo data's relative days, and the registry seed file that uses them. The days
here are fixed on purpose: `today` is passed in, so the answers do not depend on when
the test runs."""
from datetime import date, datetime

import pytest

from services.matching import seed_file
from shared.relative_days import BadDay, resolve, resolve_fields

LEAP_DAY = date(2028, 2, 29)


@pytest.mark.parametrize("value, day", [
    ("today", "2028-02-29"),
    ("today-1d", "2028-02-28"),
    ("today+1d", "2028-03-01"),
    ("today-366d", "2027-02-28"),      # whole days: no "same day last year" to look for
    ("today+365d", "2029-02-28"),
    ("today-0d", "2028-02-29"),
    ("2026-09-14", "2026-09-14"),      # an ISO day is kept as it is
    (date(2026, 9, 14), "2026-09-14"),  # as YAML reads an unquoted one
    (None, None),
])
def test_a_day_resolves_against_the_day_given(value, day):
    assert resolve(value, LEAP_DAY, "f") == day


@pytest.mark.parametrize("value", [
    "today-80", "today - 80d", "today-80days", "today-8w", "today-1y", "Today-80d", " today", "today+", "today+-3d",
    "today-123456d", "yesterday", "tomorrow", "now", "", "2026-02-30", "2026-9-14", "20260914", "2026-09-14T10:00",
    "today-\u0664d",  # an Arabic-Indic four: a digit to \d, not to us
    80, True, 1.5, [], datetime(2026, 9, 14, 10, 0),
])
def test_anything_else_is_refused_naming_where_it_was(value):
    with pytest.raises(BadDay) as refused:
        resolve(value, LEAP_DAY, "facilitators.yaml: fac-9: trained_on")
    assert str(refused.value).startswith(f"facilitators.yaml: fac-9: trained_on: {value!r} is not a day: give")


def test_a_day_beyond_the_calendar_is_refused():
    with pytest.raises(BadDay):
        resolve("today+99999d", date(9990, 1, 1), "f")


def test_fields_are_resolved_in_a_copy_nested_ones_by_dotted_path():
    record = {"offence": {"category": "theft", "date": "today-14d"}, "crime_reported_on": "today", "name": "today"}
    resolved = resolve_fields(record, ("offence.date", "crime_reported_on", "absent", "offence.absent"),
                              LEAP_DAY, "sample 1")
    assert resolved == {"offence": {"category": "theft", "date": "2028-02-15"}, "crime_reported_on": "2028-02-29",
                        "name": "today"}   # only the paths named are days
    assert record["offence"]["date"] == "today-14d"
    with pytest.raises(BadDay, match=r"^sample 1: offence.date: 'today-14' is not a day"):
        resolve_fields({"offence": {"date": "today-14"}}, ("offence.date",), LEAP_DAY, "sample 1")


def test_the_seed_file_resolves_every_day_of_the_record_and_names_a_bad_one(tmp_path):
    seed = tmp_path / "registry.yaml"
    seed.write_text("facilitators:\n"
                    "  - {facilitator_id: fac-1, trained_on: today-400d, last_active: today-3d,\n"
                    "     prison_vetted_until: today+30d, available_from: 2028-03-06}\n"
                    "  - {facilitator_id: fac-2, last_process_on: \"today\"}\n")
    assert seed_file.read(str(seed), LEAP_DAY) == [
        {"facilitator_id": "fac-1", "trained_on": "2027-01-25", "last_active": "2028-02-26",
         "prison_vetted_until": "2028-03-30", "available_from": "2028-03-06"},
        {"facilitator_id": "fac-2", "last_process_on": "2028-02-29"}]
    seed.write_text("facilitators:\n  - {facilitator_id: fac-1, last_process_on: today}\n"
                    "  - {facilitator_id: fac-3, trained_on: today-80}\n")
    with pytest.raises(BadDay, match=r"registry.yaml: fac-3: trained_on: 'today-80' is not a day"):
        seed_file.read(str(seed), LEAP_DAY)


def test_the_seed_file_knows_every_day_of_the_record():
    from marshmallow import fields

    from services.matching.facilitator_records import RECORD
    days = {name for name, field in RECORD.fields.items() if isinstance(field, fields.Date)}
    assert set(seed_file.DAYS) == days | {"last_active"}


def test_the_apis_take_iso_days_only():
    from services.matching.facilitator_records import InvalidFacilitator, parse
    from services.referrals import intake
    from tests.factories import referral_body
    with pytest.raises(InvalidFacilitator) as refused:
        parse({"facilitator_id": "fac-1", "level": "advanced", "languages": ["en"], "regions": ["gwent"],
               "capacity": 1, "last_process_on": "today-80d"})
    assert set(refused.value.errors) == {"last_process_on"}
    body = referral_body(0)
    body["offence"]["date"] = "today-14d"
    assert set(intake.ReferralSchema().validate(body)) == {"offence"}
