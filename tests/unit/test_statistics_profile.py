"""The statistics profile: what of each event type may reach the national view.

Every event type of the catalogue is checked: either it stays in the region, or its
statistic has the five profile fields and an id, and carries no id of the event, its
case, or anyone in it."""
import base64

import pytest

from services.statistics import workflow
from services.statistics.memory_store import InMemoryStatisticsStore
from shared import statistics_profile as profile
from shared.events import catalogue
from shared.events.vocabulary import CLOSURE_REASONS
from tests.support import ids_in, strings_in
from tests.factories import valid_event

KEY = base64.urlsafe_b64encode(b"k" * 32).decode()


def _identifiers(event):
    """Every id the event carries: its own, its case's, and those in its data."""
    return {event["id"], event["subject"], event["correlationid"]} | ids_in(event["data"])


def _distinct_ids(event):
    """The event with every id made unique, so that finding one in the statistic means it leaked."""
    event["data"] = dict(event["data"])
    for name, value in list(event["data"].items()):
        if name.endswith("_id") and isinstance(value, str):
            event["data"][name] = f"{name.replace('_', '-')}-7f3a9"
    event["subject"] = event["correlationid"] = event["data"].get("case_id", "case-7f3a9")
    return event


@pytest.mark.parametrize("event_type", catalogue.EVENT_TYPES)
def test_every_event_type_either_stays_in_the_region_or_gives_only_the_profile_fields(event_type):
    event = _distinct_ids(valid_event(event_type))
    statistic = profile.statistic(event, region="south", offence_category="robbery",
                                  key=profile.key_from_text(KEY))
    if event_type not in profile.EXPORTED:
        assert statistic is None
        assert "case_id" not in catalogue.spec(event_type).schema.fields  # only non-case events stay
        return
    assert set(statistic) == set(profile.FIELDS)
    assert statistic["event_type"] == event_type and statistic["region"] == "south"
    assert statistic["offence_category"] == "robbery"
    leaked = _identifiers(event) & set(strings_in(statistic))
    assert not leaked, f"{event_type} gives away {leaked}"
    assert profile.validate_statistic(statistic) is statistic


def test_every_exported_type_is_a_case_event_of_the_catalogue():
    for event_type in profile.EXPORTED:
        assert "case_id" in catalogue.spec(event_type).schema.fields, event_type


def test_the_statistic_id_is_stable_for_an_event_and_unlinkable_without_the_region_key():
    event = valid_event("case.closed")
    one, two = (profile.key_from_text(base64.urlsafe_b64encode(k * 32).decode()) for k in (b"a", b"b"))
    first = profile.statistic(event, region="south", offence_category="theft", key=one)
    again = profile.statistic(event, region="south", offence_category="theft", key=one)
    other_key = profile.statistic(event, region="south", offence_category="theft", key=two)
    assert first["statistic_id"] == again["statistic_id"] != other_key["statistic_id"]
    assert event["id"] not in first["statistic_id"]


@pytest.mark.parametrize("reason", CLOSURE_REASONS)
def test_each_closure_reason_has_its_outcome_class(reason):
    event = valid_event("case.closed")
    event["data"]["reason"] = reason
    statistic = profile.statistic(event, region="south", offence_category=None, key=profile.key_from_text(KEY))
    assert statistic["outcome_class"] == profile.CLOSURE_CLASSES[reason]


def test_a_statistic_with_anything_more_is_refused_naming_the_field():
    statistic = profile.statistic(valid_event("case.assessed"), region="south", offence_category="theft",
                                  key=profile.key_from_text(KEY))
    with pytest.raises(profile.InvalidStatistic) as refused:
        profile.validate_statistic({**statistic, "case_id": "case-1"})
    assert "case_id" in str(refused.value)
    with pytest.raises(profile.InvalidStatistic) as refused:
        profile.validate_statistic({**statistic, "week": "last week"})
    assert "week" in str(refused.value) and "last week" not in str(refused.value)


def test_the_week_is_the_iso_week():
    assert profile.iso_week("2026-12-31T23:00:00+00:00") == "2026-W53"
    assert profile.iso_week("2027-01-04T00:00:00Z") == "2027-W01"


@pytest.mark.parametrize("text", ["", "not base64!", base64.urlsafe_b64encode(b"short").decode()])
def test_a_weak_or_missing_key_is_refused(text):
    with pytest.raises(ValueError):
        profile.key_from_text(text)


# --- the statistics service's workflow, on its in-memory store ---------------------------

def _handle(event, store, sent):
    return workflow.handle(event, store=store, region="south", key=profile.key_from_text(KEY), send=sent.append)


def test_an_event_is_counted_under_its_case_offence_category_once_its_referral_is_seen():
    store, sent = InMemoryStatisticsStore(), []
    referral = valid_event("referral.received")
    referral["data"].update(case_id="case-9", offence_category="burglary")
    assessed = valid_event("case.assessed")
    assessed["data"].update(case_id="case-9", decision="suitable")
    _handle(referral, store, sent)
    _handle(assessed, store, sent)
    assert [(s["event_type"], s["offence_category"], s["outcome_class"]) for s in sent] == [
        ("referral.received", "burglary", None), ("case.assessed", "burglary", "suitable")]


def test_an_event_before_its_referral_waits_and_sends_nothing():
    store, sent = InMemoryStatisticsStore(), []
    assessed = valid_event("case.assessed")
    with pytest.raises(workflow.ReferralNotSeen):
        _handle(assessed, store, sent)
    assert sent == []


def test_an_event_the_profile_keeps_in_the_region_sends_nothing():
    store, sent = InMemoryStatisticsStore(), []
    assert _handle(valid_event("key.issued"), store, sent) is None
    assert sent == []


def test_a_redelivered_event_gives_the_same_statistic():
    store, sent = InMemoryStatisticsStore(), []
    referral = valid_event("referral.received")
    _handle(referral, store, sent)
    _handle(referral, store, sent)
    assert len(sent) == 2 and sent[0] == sent[1]
