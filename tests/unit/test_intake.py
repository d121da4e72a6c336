import json

import pytest

from services.referrals import contact, intake
from services.referrals.protection import MasterKeyMissing, Vault, load_master_key, new_master_key
from shared.events import new_event
from tests.factories import days_ago, referral_body


def test_a_sample_referral_parses_into_a_case():
    referral = intake.parse(referral_body(0), "south-wales-police")
    assert referral.agency == "south-wales-police"
    assert [p.role for p in referral.participants] == ["harmed", "harmer"]
    assert referral.participants[0].party_id.startswith("p-")
    assert referral.referrer.party_id.startswith("ref-")


def test_the_received_event_carries_no_personal_data():
    body = referral_body(1)
    referral = intake.parse(body, "yot-cardiff")
    data = referral.received_event_data()
    new_event("referral.received", referral.case_id, data, source="/amends/t/referrals", region="t",
              correlationid=referral.case_id)  # validates against the catalogue
    text = json.dumps(data)
    personal = [body["crime_reference"], body["offence"]["date"], body["referrer"]["officer_name"],
                body["referrer"]["contact"]["email"]]
    for p in body["participants"]:
        personal.append(p["name"])
        personal += list(p["contact"].values())
    for value in personal:
        assert value not in text


def test_every_fault_is_named():
    body = referral_body(0, cjs_stage="later", region="South Wales!")
    body["participants"][0]["age_band"] = 40
    del body["crime_reference"]
    with pytest.raises(intake.InvalidReferral) as caught:
        intake.parse(body, "a")
    errors = caught.value.errors
    assert {"cjs_stage", "region", "crime_reference", "participants"} <= set(errors)
    assert "age_band" in errors["participants"][0]


def test_without_the_day_the_crime_was_reported_the_clocks_run_from_the_day_received_and_say_so():
    from datetime import date
    received = date.fromisoformat(days_ago(9))
    without = intake.parse(referral_body(0), "a", today=received)
    assert (without.reported_on, without.measured_from) == (received, "referral_received")
    # the sealed record says what the referral said: no date, not the day it was received
    assert without.sensitive["crime_reported_on"] is None
    reported = days_ago(14)   # a fortnight ago, as the sample's offence: reported the day it happened
    given = intake.parse(referral_body(0, crime_reported_on=reported), "a", today=received)
    assert (given.reported_on, given.measured_from) == (date.fromisoformat(reported), "crime_reported")
    assert given.sensitive["crime_reported_on"] == reported
    # the event says neither the date nor whether it was given: it carries no dates at all
    assert reported not in json.dumps(given.received_event_data())


def test_today_is_the_day_in_london():
    from datetime import date, datetime, timezone
    from services.referrals.deadlines import today_in_london
    # 23:30 UTC on 30 June is 00:30 on 1 July in London (BST)
    assert today_in_london(datetime(2026, 6, 30, 23, 30, tzinfo=timezone.utc)) == date(2026, 7, 1)
    assert today_in_london(datetime(2026, 12, 31, 23, 30, tzinfo=timezone.utc)) == date(2026, 12, 31)


def test_a_referral_needs_both_parties():
    body = referral_body(0)
    body["participants"] = [p for p in body["participants"] if p["role"] != "harmer"] * 2
    with pytest.raises(intake.InvalidReferral) as caught:
        intake.parse(body, "a")
    assert "harmer" in str(caught.value.errors["participants"])


def test_sealed_data_opens_only_for_its_owner_and_key():
    vault = Vault(load_master_key(new_master_key()))
    key, wrapped = vault.new_data_key("p-1")
    sealed = vault.seal(key, "p-1", {"name": "Sian"})
    assert "Sian" not in sealed
    assert vault.open(vault.unwrap("p-1", wrapped), "p-1", sealed) == {"name": "Sian"}
    with pytest.raises(Exception):
        vault.open(key, "p-2", sealed)
    other = Vault(load_master_key(new_master_key()))
    with pytest.raises(Exception):
        other.unwrap("p-1", wrapped)


def test_a_bad_master_key_is_refused():
    with pytest.raises(MasterKeyMissing):
        load_master_key("too-short")


def test_contact_release_follows_the_purpose():
    personal = {"name": "PC Morgan", "contact": {"email": "m@police.example", "phone": "0123456789"}}
    referrer, harmed = {"party_id": "ref-1", "role": "referrer"}, {"party_id": "p-1", "role": "harmed"}
    granted = contact.decide(referrer, personal, "referrer_update")
    assert granted.granted and granted.details == {"name": "PC Morgan", "email": "m@police.example"}
    assert not contact.decide(harmed, personal, "referrer_update").granted
    assert contact.decide(referrer, personal, "marketing").reason == "unknown_purpose"
    assert contact.decide(referrer, None, "referrer_update").reason == "personal_data_erased"
