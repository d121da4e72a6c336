"""The rules of get_contact (CONTRACTS.md) and of consent records, without a broker or database."""
from datetime import date, timedelta

import pytest

from services.referrals import consents, contact, intake, views
from tests.factories import days_ago, days_ahead, referral_body

PERSONAL = {
    "name": "Sian Jones",
    "contact": {"email": "sian@mail.example", "phone": "+44 7700 900001", "address": "1 Home Street"},
    "preferred_channels": ["letter", "sms", "email"],
    "safe_contact_windows": [{"days": ["mon", "tue"], "start": "09:00", "end": "12:00"}],
    "safe_addresses": [],
}


def party(role="harmed", contact_safe=True, party_id="p-1", language="cy"):
    return {"party_id": party_id, "role": role, "contact_safe": contact_safe,
            "attributes": {"language": language, "age_band": "50_64", "access_needs": []}}


def test_participant_information_releases_only_contract_fields():
    decision = contact.decide(party(), PERSONAL, "participant_information")
    assert decision.granted and decision.reason == "granted"
    assert decision.details == {
        "name": "Sian Jones", "email": "sian@mail.example", "phone": "+44 7700 900001", "language": "cy",
        # no safe address: a letter would go to a home the harmer may read, so it is not offered
        "preferred_channels": ["sms", "email"],
        "safe_contact_windows": [{"days": ["mon", "tue"], "start": "09:00", "end": "12:00"}],
        "contact_safe": True,
    }
    assert "address" not in decision.details and "safe_addresses" not in decision.details


def test_a_letter_is_offered_only_with_a_safe_address():
    personal = dict(PERSONAL, safe_addresses=["c/o Victim Support, Cardiff"])
    assert contact.decide(party(), personal, "participant_information").details["preferred_channels"] == [
        "letter", "sms", "email"]


@pytest.mark.parametrize("role, purpose, reason", [
    ("referrer", "participant_information", "purpose_does_not_cover_role"),
    ("interpreter", "participant_information", "purpose_does_not_cover_role"),
    ("harmer", "outcome_update", "purpose_does_not_cover_role"),
    ("harmed", "referrer_update", "purpose_does_not_cover_role"),
    ("harmed", "marketing", "unknown_purpose"),
])
def test_purposes_reach_only_their_roles(role, purpose, reason):
    decision = contact.decide(party(role), PERSONAL, purpose)
    assert (decision.granted, decision.reason, decision.details) == (False, reason, {})


def test_supporters_and_appropriate_adults_can_be_informed():
    for role in ("supporter", "appropriate_adult"):
        assert contact.decide(party(role), PERSONAL, "participant_information").granted


def test_withdrawn_participation_refuses_and_no_record_does_not():
    granted = {"participant_id": "p-1", "scope": "participation", "item": None, "with_role": None, "granted": True}
    withdrawn = dict(granted, granted=False)
    assert contact.decide(party(), PERSONAL, "outcome_update", []).granted
    assert contact.decide(party(), PERSONAL, "outcome_update", [granted]).granted
    refused = contact.decide(party(), PERSONAL, "outcome_update", [granted, withdrawn])
    assert (refused.granted, refused.reason) == (False, "consent_withdrawn")
    # someone else's withdrawal, or a withdrawal of another scope, does not refuse
    other = dict(withdrawn, participant_id="p-2")
    sharing = dict(withdrawn, scope="share_outcome_with_court", with_role="court")
    assert contact.decide(party(), PERSONAL, "outcome_update", [granted, other, sharing]).granted
    # granted again after a withdrawal: the latest record is in force
    assert contact.decide(party(), PERSONAL, "outcome_update", [withdrawn, granted]).granted


def test_a_safeguarding_flag_refuses_contact():
    decision = contact.decide(party(contact_safe=False), PERSONAL, "participant_information")
    assert (decision.granted, decision.reason, decision.details) == (False, "contact_unsafe", {})
    # the referrer is a professional: the participants' safeguarding flag is not theirs
    assert contact.decide(party("referrer", contact_safe=False),
                          {"name": "PC X", "contact": {"email": "x@police.example"}}, "referrer_update").granted


def test_erased_and_unreachable_people_are_refused():
    assert contact.decide(party(), None, "participant_information").reason == "personal_data_erased"
    unreachable = {"name": "Sian Jones", "contact": {"address": "1 Home Street"}, "preferred_channels": ["letter"],
                   "safe_contact_windows": [], "safe_addresses": []}
    assert contact.decide(party(), unreachable, "participant_information").reason == "no_contact_details"


def test_consent_scopes_need_their_details():
    schema = consents.ConsentSchema()
    pid = "p-" + "a" * 32
    assert schema.validate({"participant_id": pid, "scope": "participation", "granted": True}) == {}
    assert set(schema.validate({"participant_id": pid, "scope": "share_item", "granted": True})) == {"item", "with_role"}
    assert "with_role" in schema.validate({"participant_id": pid, "scope": "participation", "granted": True,
                                           "with_role": "harmer"})
    record, data = consents.record_for(schema.load({"participant_id": pid, "scope": "share_outcome_with_court",
                                                    "granted": False}))
    assert data == {"participant_id": pid, "scope": "share_outcome_with_court", "item": None, "with_role": "court",
                    "granted": False}
    assert consents.event_type(record) == "consent.withdrawn"


def test_the_full_record_is_captured_and_only_attributes_reach_the_event():
    body = referral_body(1)
    body["crime_reported_on"] = reported = days_ago(1)
    body["referrer"].update(role_title="YOT officer", team="Cardiff YOT", language="cy")
    body["participants"][0].update(
        safe_contact_windows=[{"days": ["sat"], "start": "10:00", "end": "16:00"}],
        safe_addresses=["c/o Victim Support, Cardiff"], contact_safe=False)
    body["participants"].append({"role": "interpreter", "name": "Ieuan Ifans", "age_band": "35_49",
                                 "language": "cy", "contact": {"email": "ieuan@interpreters.example"}})
    referral = intake.parse(body, "yot-cardiff")
    harmed = referral.participants[0]
    assert harmed.personal["safe_addresses"] == ["c/o Victim Support, Cardiff"]
    assert harmed.personal["safe_contact_windows"][0]["days"] == ["sat"]
    assert harmed.contact_safe is False
    assert [p.role for p in referral.participants] == ["harmed", "harmer", "appropriate_adult", "interpreter"]
    assert referral.referrer.personal["team"] == "Cardiff YOT" and referral.referrer.attributes == {"language": "cy"}
    assert referral.sensitive["crime_reported_on"] == reported
    assert "safe_addresses" not in str(referral.received_event_data())


def test_bad_windows_and_dates_are_named():
    offence = date.fromisoformat(referral_body(0)["offence"]["date"])
    before_the_offence = (offence - timedelta(days=1)).isoformat()
    body = referral_body(0, crime_reported_on=before_the_offence)
    body["participants"][0]["safe_contact_windows"] = [
        {"days": ["mon", "mon"], "start": "09:00", "end": "17:00"},
        {"days": ["tue"], "start": "17:00", "end": "09:00"},
        {"days": ["wed"], "start": "9am", "end": "24:00"},
    ]
    body["participants"][1]["preferred_channels"] = ["sms", "sms"]
    errors = intake.ReferralSchema().validate(body)
    windows = errors["participants"][0]["safe_contact_windows"]
    assert set(windows[0]) == {"days"} and set(windows[1]) == {"end"} and set(windows[2]) == {"start", "end"}
    assert "preferred_channels" in errors["participants"][1]
    assert "crime_reported_on" in intake.ReferralSchema().validate(
        referral_body(0, crime_reported_on=before_the_offence))
    future = referral_body(0)
    future["offence"]["date"] = days_ahead(30)
    assert "date" in intake.ReferralSchema().validate(future)["offence"]


def test_personal_data_goes_only_to_roles_that_need_it():
    assert views.sees_personal_data("coordinator", "RECEIVED")
    assert not views.sees_personal_data("facilitator", "ASSESSMENT")   # an offer is not an acceptance
    assert views.sees_personal_data("facilitator", "ALLOCATED")
    assert views.sees_personal_data("facilitator", "ON_HOLD", "PREPARATION")
    assert not views.sees_personal_data("facilitator", "CLOSED")
    assert not views.sees_personal_data("referrer", "ALLOCATED")
    assert not views.sees_personal_data("auditor", "ALLOCATED")
