import copy

import pytest

from shared.events import InvalidEvent, new_event, validate_event
from shared.events import catalogue
from tests.factories import referral_received_data


def make(**overrides):
    event = new_event("referral.received", "case-1", referral_received_data(),
                      source="/amends/test/referrals", region="test", correlationid="case-1")
    event.update(overrides)
    return event


def test_new_event_fills_the_envelope():
    event = make()
    assert event["specversion"] == "1.0"
    assert event["type"] == "referral.received"
    assert event["source"] == "/amends/test/referrals"
    assert event["datacontenttype"] == "application/json"
    assert event["correlationid"] == "case-1"
    assert event["causationid"] is None
    assert event["time"].endswith("Z")
    assert event["schemaversion"] == 1


def test_each_event_gets_a_unique_id():
    assert len({make()["id"] for _ in range(50)}) == 50


def test_a_valid_event_is_returned_unchanged():
    event = make()
    before = copy.deepcopy(event)
    assert validate_event(event) is event
    assert event == before


@pytest.mark.parametrize("field", ["id", "source", "type", "subject", "time", "data", "correlationid", "region"])
def test_a_missing_envelope_field_is_named(field):
    event = make()
    del event[field]
    with pytest.raises(InvalidEvent) as caught:
        validate_event(event)
    assert field in caught.value.errors


def test_an_unknown_type_is_refused():
    with pytest.raises(InvalidEvent) as caught:
        validate_event(make(type="case.exploded"))
    assert "type" in caught.value.errors


def test_a_bad_source_is_refused():
    with pytest.raises(InvalidEvent) as caught:
        validate_event(make(source="http://elsewhere"))
    assert "source" in caught.value.errors


def test_data_is_checked_against_its_type_schema():
    event = make()
    event["data"]["cjs_stage"] = "sometime"
    del event["data"]["case_id"]
    with pytest.raises(InvalidEvent) as caught:
        validate_event(event)
    assert set(caught.value.errors["data"]) == {"cjs_stage", "case_id"}


def test_personal_data_fields_are_not_accepted_on_the_bus():
    event = make()
    event["data"]["participants"][0]["name"] = "Sian Jones"
    with pytest.raises(InvalidEvent) as caught:
        validate_event(event)
    assert "participants" in caught.value.errors["data"]


def test_error_text_names_the_field_and_not_the_value():
    event = make()
    event["data"]["region"] = "Sian Jones, 3 High St"
    with pytest.raises(InvalidEvent) as caught:
        validate_event(event)
    assert "data.region" in str(caught.value)
    assert "Sian" not in str(caught.value)


def test_a_non_object_is_refused():
    with pytest.raises(InvalidEvent):
        validate_event(["not", "an", "event"])


@pytest.mark.parametrize("event_type", ["referral.received", "case.assessed", "facilitator.assigned", "notification.sent"])
def test_the_backbone_event_types_are_catalogued(event_type):
    assert event_type in catalogue.EVENT_TYPES
    assert catalogue.spec(event_type).schema is not None


def test_wrong_schema_version_is_refused():
    with pytest.raises(InvalidEvent) as caught:
        validate_event(make(schemaversion=2))
    assert "schemaversion" in caught.value.errors
