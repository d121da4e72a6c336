"""The pure rules after the intervention: the agreement (agreement.py), surveys
(surveys.py), retention (retention.py) and what closing a case sets off (aftercare.py)."""
from datetime import date, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from marshmallow import ValidationError

from services.referrals import aftercare, agreement, retention, surveys

TODAY = date(2027, 3, 10)
NOW = datetime(2027, 3, 10, 12, 0, tzinfo=timezone.utc)
HARMED, HARMER, SUPPORTER = "p-" + "1" * 32, "p-" + "2" * 32, "p-" + "3" * 32


def case(**changes):
    base = dict(case_id="case-1", status="INTERVENTION", history=[], consents=[], agreement={}, surveys=[],
                participants=[{"party_id": HARMED, "role": "harmed", "attributes": {"age_band": "50_64", "language": "cy",
                                                                                  "access_needs": ["hearing_loop"]},
                               "sealed": "x"},
                              {"party_id": HARMER, "role": "harmer", "attributes": {"age_band": "18_24"}, "sealed": "x"},
                              {"party_id": SUPPORTER, "role": "supporter", "attributes": {"age_band": "35_49"},
                               "sealed": "x"}])
    base.update(changes)
    found = SimpleNamespace(**base)
    found.party = lambda pid: next((p for p in found.participants if p["party_id"] == pid), None)
    return found


def item(item_id, due_on, status="open", reminded_at=None):
    return {"item_id": item_id, "kind": "apology", "owner_id": HARMER, "owner_role": "harmer", "due_on": due_on,
            "status": status, "reminded_at": reminded_at, "sealed": "x"}


def an_agreement(*items, status="open"):
    return {"agreement_id": "agr-1", "agreed_on": "2027-03-01", "status": status, "items": list(items)}


# --- agreement.py -------------------------------------------------------------------------

def test_the_body_is_checked_field_by_field():
    good = {"kind": "restitution", "owner_id": HARMER, "due_on": "2027-04-01", "description": "Pay £50",
            "amount_pence": 5000}
    loaded = agreement.AgreementSchema().load({"items": [good], "agreed_on": "2027-03-10"})
    assert loaded["items"][0]["due_on"] == date(2027, 4, 1) and loaded["items"][0]["amount_pence"] == 5000
    with pytest.raises(ValidationError) as bad:
        agreement.AgreementSchema().load({"items": [dict(good, kind="apology", amount_pence=5000.5,
                                                         description="  ")]})
    assert bad.value.messages == {"agreed_on": ["Missing data for required field."],
                                  "items": {0: {"amount_pence": ["Not a valid integer."],
                                                "description": ["Must not be blank."]}}}
    with pytest.raises(ValidationError) as other_kind:
        agreement.ItemSchema().load(dict(good, kind="apology"))
    assert set(other_kind.value.messages) == {"amount_pence"}
    with pytest.raises(ValidationError) as too_many:
        agreement.AgreementSchema().load({"items": [good] * 31, "agreed_on": "2027-03-10"})
    assert set(too_many.value.messages) == {"items"}


def test_dates_are_judged_against_the_london_day():
    data = {"agreed_on": date(2027, 3, 11), "items": [{"due_on": date(2027, 3, 9)}, {"due_on": TODAY}]}
    assert agreement.date_faults(data, TODAY) == {"agreed_on": ["Must be today or earlier."],
                                                  "items": {0: {"due_on": ["Must be today or later."]}}}
    assert agreement.date_faults({"agreed_on": TODAY, "items": [{"due_on": TODAY}]}, TODAY) == {}
    # (the workflow gives it London's today: deadlines.today_in_london, tested with intake)


def test_only_a_party_of_the_case_owns_an_item():
    faults = agreement.owner_faults(case(), [{"owner_id": HARMER}, {"owner_id": SUPPORTER}, {"owner_id": "p-9"}])
    assert sorted(faults["items"]) == [1, 2]
    assert agreement.owner_faults(case(), [{"owner_id": HARMED}]) == {}


def test_due_actions_remind_ahead_and_miss_once_the_day_has_passed():
    found = an_agreement(item("a", "2027-03-09"), item("b", "2027-03-10"), item("c", "2027-03-13"),
                         item("d", "2027-03-14"), item("e", "2027-03-11", reminded_at=NOW),
                         item("f", "2027-03-01", status="completed"))
    actions = [(action, entry["item_id"]) for action, entry in agreement.due_actions(found, TODAY, 3)]
    assert actions == [("miss", "a"), ("remind", "b"), ("remind", "c")]
    assert agreement.due_actions(an_agreement(item("a", "2027-03-01"), status="not_completed"), TODAY) == []
    assert agreement.remind_days(found) == ["2027-03-09", "2027-03-10", "2027-03-13", "2027-03-14"]
    assert agreement.open_days(found) == ["2027-03-09", "2027-03-10", "2027-03-11", "2027-03-13", "2027-03-14"]
    assert agreement.remind_days(dict(found, status="completed")) == [] == agreement.open_days({})


def test_the_outcome_follows_the_items():
    assert agreement.outcome(an_agreement(item("a", "x"), item("b", "x", status="completed"))) is None
    assert agreement.outcome(an_agreement(item("a", "x", status="waived"), item("b", "x", status="completed"))) == \
        "agreement_completed"
    assert agreement.outcome(an_agreement(item("a", "x", status="missed"), item("b", "x", status="completed"))) == \
        "agreement_not_completed"
    settled, (event_type, data) = agreement.settle("case-1", an_agreement(item("a", "2027-03-20")), "a", "missed",
                                                   NOW, "timer", detected="due_date_passed")
    assert event_type == "agreement.item_missed" and data["detected"] == "due_date_passed"
    assert settled["items"][0]["status"] == "missed" and settled["items"][0]["settled_by"] == "timer"
    concluded = agreement.conclude(settled, "agreement_not_completed", NOW, "monitoring")
    assert (concluded["status"], concluded["outcome"]) == ("not_completed", "agreement_not_completed")


def test_the_view_gives_descriptions_only_when_asked_to():
    found = an_agreement(item("a", "2027-03-20"))
    assert "description" not in agreement.view(found)["items"][0]
    shown = agreement.view(found, {"a": {"description": "Sorry", "note": None}})["items"][0]
    assert shown["description"] == "Sorry" and "sealed" not in shown and "owner_id" in shown
    assert agreement.view({}) is None


# --- surveys.py ------------------------------------------------------------------------

def consent(pid, granted):
    return {"participant_id": pid, "scope": "participation", "item": None, "with_role": None, "granted": granted}


def test_only_parties_whose_consent_is_in_force_and_who_are_not_erased_are_asked():
    consents = [consent(HARMED, True), consent(HARMER, True), consent(HARMER, False), consent(SUPPORTER, True)]
    assert [p["party_id"] for p in surveys.recipients(case(consents=consents))] == [HARMED]
    erased = case(consents=[consent(HARMED, True)])
    erased.participants[0]["sealed"] = None
    assert surveys.recipients(erased) == []
    assert surveys.recipients(case()) == []   # nobody has said yes


def test_a_case_reached_the_intervention_if_its_history_says_so():
    assert surveys.reached_intervention(case(status="FOLLOW_UP"))
    assert surveys.reached_intervention(case(status="CLOSED", history=[{"to": "INTERVENTION"}, {"to": "CLOSED"}]))
    assert not surveys.reached_intervention(case(status="CLOSED", history=[{"to": "PREPARATION"}, {"to": "CLOSED"}]))


def test_a_survey_is_open_then_answered_or_expired_and_keeps_no_token():
    party = case().participants[0]
    survey = surveys.new_survey(party, "closure", "key-1", "sealed", NOW)
    assert survey["language"] == "cy" and survey["expires_at"] == NOW + timedelta(days=60)
    assert surveys.state(survey, NOW) == "open" and surveys.state(survey, NOW + timedelta(days=60)) == "expired"
    assert surveys.open_survey_for([survey], HARMED, NOW) is survey
    answered = surveys.answered(survey, {"felt_safe": 5}, None, NOW)
    assert surveys.state(answered, NOW) == "answered" and surveys.open_survey_for([answered], HARMED, NOW) is None
    shown = surveys.view([answered], NOW)[0]
    assert "key" not in shown and "sealed_token" not in shown and shown["state"] == "answered"
    form = surveys.form(survey)
    assert form["language"] == "cy" and form["questions"][0]["text"].startswith("Pa mor fodlon")
    assert [q["required"] for q in form["questions"]] == [True, True, True, True, False]
    assert surveys.link("https://rj.example/", "tok") == "https://rj.example/v1/surveys/tok"
    assert len({surveys.new_token() for _ in range(50)}) == 50 and surveys.TOKEN.match(surveys.new_token())


def test_an_answer_takes_scores_1_to_5_and_a_real_boolean():
    good = {"satisfied_with_process": 1, "felt_safe": 5, "would_recommend": False, "harm_repaired": 3}
    assert surveys.AnswerSchema().load(good) == good
    with pytest.raises(ValidationError) as bad:
        surveys.AnswerSchema().load({**good, "felt_safe": 0, "would_recommend": 1, "harm_repaired": 2.0,
                                     "comments": "x" * 2001})
    assert set(bad.value.messages) == {"felt_safe", "would_recommend", "harm_repaired", "comments"}


def test_the_follow_up_falls_due_after_its_days_until_done():
    follow_up = surveys.follow_up_schedule(NOW, 90)
    assert follow_up == {"due_on": "2027-06-08", "requested_at": None}
    assert not surveys.follow_up_owed(follow_up, date(2027, 6, 7)) and surveys.follow_up_owed(follow_up,
                                                                                            date(2027, 6, 8))
    assert surveys.follow_up_day(dict(follow_up, requested_at=NOW)) is None


# --- retention.py -------------------------------------------------------------------------

def test_retention_starts_only_for_declined_or_unreachable_victims():
    assert retention.schedule("harmed_declined", NOW, 365)["due_on"] == "2028-03-09"
    assert retention.schedule("no_contact", NOW, 30)["due_on"] == "2027-04-09"
    assert retention.schedule("completed_direct", NOW) == {} == retention.schedule("harmer_declined", NOW)
    kept = retention.schedule("no_contact", NOW, 0)
    assert retention.owed(kept, TODAY) and not retention.owed(dict(kept, reduced_at=NOW), TODAY)
    assert retention.due_day(dict(kept, reduced_at=NOW)) is None


def test_the_victim_and_supporters_keep_only_statistical_attributes():
    assert retention.targets(case()) == [HARMED, SUPPORTER]
    reduced, kept = retention.reduced(case().participants[0])
    assert reduced["attributes"] == {"age_band": "50_64"} and kept == ["age_band"] and reduced["reduced"] is True
    with_more = {"party_id": HARMED, "attributes": {"age_band": "18_24", "gender": "f", "ethnicity": "w1",
                                                    "language": "en"}}
    assert retention.reduced(with_more)[1] == ["age_band", "ethnicity", "gender"]


# --- aftercare.py -------------------------------------------------------------------------

def test_closing_ends_an_open_agreement_schedules_the_follow_up_and_retention():
    open_one = case(status="AGREEMENT_MONITORING", agreement=an_agreement(item("a", "2027-04-01")))
    state, events, ask = aftercare.at_closure(open_one, "no_contact", NOW, aftercare.Aftercare())
    assert events == [("case.outcome_recorded", {"case_id": "case-1", "outcome": "agreement_not_completed"})]
    assert state["agreement"]["ended_by"] == "closure" and ask is True
    assert state["follow_up"]["due_on"] == "2027-06-08" and state["retention"]["due_on"] == "2028-03-09"
    early = case(status="TRIAGE")
    assert aftercare.at_closure(early, "safety_stop", NOW, aftercare.Aftercare()) == ({}, [], False)


def test_settings_come_from_the_environment_and_refuse_nonsense():
    settings = aftercare.from_environment({"REFERRALS_FOLLOW_UP_DAYS": "30", "REFERRALS_RETENTION_DAYS": "0",
                                           "REFERRALS_PUBLIC_URL": "https://rj.example"})
    assert (settings.reminder_days, settings.follow_up_days, settings.retention_days, settings.public_url) == (
        3, 30, 0, "https://rj.example")
    with pytest.raises(ValueError, match="REFERRALS_AGREEMENT_REMINDER_DAYS"):
        aftercare.from_environment({"REFERRALS_AGREEMENT_REMINDER_DAYS": "-1"})
