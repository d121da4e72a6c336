"""The demo data never goes stale: no fixed day in it, and the demo registry staffs the
sample referrals the same way whatever day the demo runs, years from now or on a
29 February.

The registry and samples are read through the real loaders (seed_file, scripts/samples)
on a day of the test's choosing; the days they resolve to are then checked by the real
schemas, suitability policy and staffing rules with the clock moved to that day.
"""
import json
import os
import re
from datetime import date, timedelta

import pytest
import yaml
from marshmallow import fields

from scripts import samples
from services.matching import allocation, facilitator_records, facilitators, seed_file, suitability_policy, workflow
from services.matching.memory_store import InMemoryMatchingStore
from services.matching.roster import Roster
from services.referrals import intake
from shared.events import new_event
from shared.relative_days import RELATIVE
from tests.factories import ROOT

SEED = os.path.join(ROOT, "deploy", "local", "facilitators.yaml")
LAPSED = {"fac-0005"}   # no process for 18 months: lapsed on purpose (see the seed file)
ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
TODAY = date.today()


def run_days():
    """Today, three years on, and the next 29 February and New Year's Eve after that."""
    later = TODAY + timedelta(days=3 * 365 + 1)
    leap = next(date(year, 2, 29) for year in range(later.year, later.year + 8) if _is_leap(year))
    return [TODAY, later, leap, date(leap.year, 12, 31)]


def _is_leap(year):
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


@pytest.mark.parametrize("path", ["deploy/local/facilitators.yaml", "deploy/local/sample_referrals.json",
                                  "scripts/demo.py", "scripts/samples.py"])
def test_the_demo_names_no_fixed_day(path):
    with open(os.path.join(ROOT, path)) as handle:
        text = handle.read()
    assert not ISO_DAY.findall(text), f"{path} names a fixed day: name it relative to today (\"today-80d\")"


def test_every_day_in_the_demo_data_is_relative():
    with open(SEED) as handle:
        registry = yaml.safe_load(handle)["facilitators"]
    with open(samples.PATH) as handle:
        referrals = json.load(handle)
    days = [_at(r, path) for r in registry for path in seed_file.DAYS]
    days += [_at(r, path) for r in referrals for path in samples.DAYS]
    days = [day for day in days if day is not None]
    assert days and all(isinstance(day, str) and RELATIVE.fullmatch(day) for day in days), days


def test_the_samples_loader_knows_every_day_of_the_intake_record():
    assert set(_date_paths(intake.ReferralSchema())) == set(samples.DAYS)


def _at(record, path):
    for name in path.split("."):
        record = record.get(name) if isinstance(record, dict) else None
    return record


def _date_paths(schema, prefix=""):
    for name, field in schema.fields.items():
        if isinstance(field, fields.List):
            field, name = field.inner, f"{name}[]"   # a day in a list: the loader would need to learn lists
        if isinstance(field, fields.Date):
            yield prefix + name
        elif isinstance(field, fields.Nested):
            yield from _date_paths(field.schema, f"{prefix}{name}.")


@pytest.mark.parametrize("day", run_days(), ids=str)
def test_the_demo_registry_is_current_on_any_day_it_is_loaded(day):
    for record in seed_file.read(SEED, day):
        fid = record["facilitator_id"]
        trained, last = (date.fromisoformat(record[k]) if record.get(k) else None
                         for k in ("trained_on", "last_process_on"))
        assert all(d is None or d <= day for d in (trained, last)), fid  # none in the future
        until = allocation.current_until(trained, last)
        assert (day <= until) == (fid not in LAPSED), (fid, until)
        if record.get("prison_vetted_until"):
            assert date.fromisoformat(record["prison_vetted_until"]) > day + timedelta(days=180), fid


@pytest.fixture(scope="module")
def as_today():
    return staffing(TODAY)


def test_today_the_demo_offers_every_suitable_sample_to_someone_current(as_today):
    assert any(decision == "suitable" for decision, _, _ in as_today)
    for decision, status, offers in as_today:
        assert (status == "offered" and offers != []) == (decision == "suitable"), (decision, status, offers)
        assert not LAPSED & {fid for _, fid in offers}


@pytest.mark.parametrize("day", run_days()[1:], ids=str)
def test_the_demo_staffs_the_samples_the_same_on_any_day(day, as_today):
    assert staffing(day) == as_today


def staffing(day):
    """Each sample's decision, its case's status and the offers made, with the registry
    and the samples loaded on `day` and the clock of every check moved there."""
    class Day(date):
        @classmethod
        def today(cls):
            return day
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(facilitator_records, "date", Day)   # its "not in the future" check
        monkeypatch.setattr(intake, "today_in_london", lambda now=None: day)   # intake's
        store = InMemoryMatchingStore()
        for record in seed_file.read(SEED, day):
            facilitators.register(store, record)
        settings = workflow.Settings(policy=suitability_policy.load(), roster=Roster(store, refresh_every=3600))
        outcomes = []
        for index, body in enumerate(samples.load(day)):
            data = intake.parse(body, "dev-police", case_id=f"case-{index}").received_event_data()
            event = new_event("referral.received", data["case_id"], data, source="/amends/test/referrals",
                              region="test", correlationid=data["case_id"])
            done = workflow.handle_referral_received(event, _Outbox(store), settings, store, today=day)
            case = store.get_assignment(done.case_id)
            outcomes.append((done.outcome["decision"], case and case.status,
                             sorted((s.role, s.facilitator_id) for s in case.slots) if case else []))
    return outcomes


class _Outbox:
    """Makes real (validated) events and forgets them: only what is stored matters here."""

    def __init__(self, store):
        self.store = store

    def event(self, event_type, subject, data, correlationid=None):
        return new_event(event_type, subject, data, source="/amends/test/matching", region="test",
                         correlationid=correlationid or subject)

    def flush(self, collection, doc_id, events=None):
        events = self.store.pending_events(collection, doc_id) if events is None else events
        self.store.pull_events(collection, doc_id, events)
        return len(events)
