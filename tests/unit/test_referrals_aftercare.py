"""The aftercare workflows on the in-memory store: the outcome agreement and its
monitoring (requests and the timer, racing), closure and its surveys, follow-up surveys,
answers by token, and retention, with claims lost and won as under concurrency."""
from datetime import datetime, timedelta, timezone

import pytest

from services.referrals import agreement, aftercare, cases, deadlines, surveys, workflow
from shared.web import BadRequest, Conflict, Gone, NotFound
from tests.factories import referral_body
from tests.unit.test_referrals_casework import FACTORS, contact, decided
from tests.unit.test_referrals_workflow import (  # noqa: F401  (fixtures: store, outbox, vault)
    SERVED, outbox, principal, store, vault)

LONDON_TODAY = deadlines.today_in_london()
SETTINGS = aftercare.Aftercare(public_url="https://rj.example")
REGIONS = ("south-wales", "gwent")
REFERRER, COORDINATOR = principal("referrer", regions=REGIONS), principal("coordinator", regions=REGIONS)
TO_PREPARATION = ("TRIAGE", "CONTACTING", "ASSESSMENT", "ALLOCATED", "PREPARATION")


def day(offset):
    return (LONDON_TODAY + timedelta(days=offset)).isoformat()


def in_intervention(store, outbox, vault, body=None, consent=("harmed", "harmer")):
    """A case moved to INTERVENTION, with the named parties' consent to take part: through
    preparation, where the risk is assessed with both parties and the facilitator decides
    it is safe (the gate the move to INTERVENTION needs open)."""
    _, payload, _ = workflow.submit_referral(store, body or referral_body(0), REFERRER, None, outbox, vault,
                                             served=SERVED)
    case_id = payload["case_id"]
    for status in TO_PREPARATION:
        workflow.transition_case(store, case_id, {"to": status}, COORDINATOR, outbox, vault, SETTINGS)
    decided(store, outbox, vault, case_id, (party(store, case_id, "harmed"), party(store, case_id, "harmer")))
    workflow.transition_case(store, case_id, {"to": "INTERVENTION"}, COORDINATOR, outbox, vault, SETTINGS)
    for role in consent:
        workflow.record_consent(store, case_id, {"participant_id": party(store, case_id, role),
                                                 "scope": "participation", "granted": True}, COORDINATOR, outbox)
    return case_id


def party(store, case_id, role):
    return next(p["party_id"] for p in store.load_case(case_id).participants if p["role"] == role)


def agreement_body(store, case_id, *items, agreed_on=None):
    harmer = party(store, case_id, "harmer")
    items = items or ({"kind": "apology", "owner_id": harmer, "due_on": day(10),
                       "description": "A letter of apology to Ms Jones, about the broken window"},
                      {"kind": "restitution", "owner_id": harmer, "due_on": day(20), "amount_pence": 15000,
                       "description": "Pay for the glazier, £150 in three parts"})
    return {"items": list(items), "agreed_on": agreed_on or day(0)}


def close(store, case_id, outbox, vault, reason="completed_direct"):
    return workflow.transition_case(store, case_id, {"to": "CLOSED", "reason": reason}, COORDINATOR, outbox,
                                    vault, SETTINGS)


# --- the outcome agreement ------------------------------------------------------------

def test_an_agreement_is_recorded_sealed_under_each_owner_and_moves_the_case_on(store, outbox, vault):
    case_id = in_intervention(store, outbox, vault)
    answer = workflow.record_agreement(store, case_id, agreement_body(store, case_id), COORDINATOR, outbox, vault)
    assert answer["status"] == "AGREEMENT_MONITORING" and answer["agreement"]["status"] == "open"
    items = answer["agreement"]["items"]
    assert [i["kind"] for i in items] == ["apology", "restitution"] and items[1]["amount_pence"] == 15000
    assert all(agreement.ITEM_ID.match(i["item_id"]) for i in items) and "description" not in str(answer)
    case = store.load_case(case_id)
    assert "Ms Jones" not in str(case.agreement) and "glazier" not in str(case.agreement)
    harmer = party(store, case_id, "harmer")
    assert cases.unseal(store, vault, harmer, case.agreement["items"][0]["sealed"])["description"].startswith(
        "A letter of apology")
    recorded = outbox.events("agreement.recorded")[0]["data"]
    assert recorded["items"] == [{"item_id": i["item_id"], "kind": i["kind"], "owner_role": "harmer",
                                  "due_on": i["due_on"]} for i in items]
    assert outbox.types()[-2:] == ["agreement.recorded", "case.status_changed"]
    assert "Jones" not in str(outbox.events("agreement.recorded"))
    # the view: descriptions to whoever may see personal data, never to a referrer
    seen = workflow.case_view(store, case_id, COORDINATOR, vault)["agreement"]["items"]
    assert seen[0]["description"].startswith("A letter of apology") and seen[0]["status"] == "open"
    hidden = workflow.case_view(store, case_id, REFERRER, vault)["agreement"]["items"]
    assert "description" not in hidden[0] and hidden[0]["due_on"] == day(10)


def test_a_bad_agreement_is_a_400_naming_each_fault_and_stores_nothing(store, outbox, vault):
    case_id = in_intervention(store, outbox, vault)
    adult_case = in_intervention(store, outbox, vault, referral_body(1))
    before = store.counts()
    harmer = party(store, case_id, "harmer")
    cases_ = [
        ({"items": [], "agreed_on": day(0)}, {"items"}),
        ({"items": [{"kind": "hug", "owner_id": "x", "due_on": "tomorrow", "description": ""}]}, {"items", "agreed_on"}),
        (agreement_body(store, case_id, {"kind": "apology", "owner_id": harmer, "due_on": day(-1),
                                         "description": "late"}, agreed_on=day(1)), {"items", "agreed_on"}),
        (agreement_body(store, case_id, {"kind": "apology", "owner_id": harmer, "due_on": day(1),
                                         "description": "x", "amount_pence": 5}), {"items"}),
        (agreement_body(store, case_id, {"kind": "apology", "owner_id": "p-" + "0" * 32, "due_on": day(1),
                                         "description": "x"}), {"items"}),
        ({**agreement_body(store, case_id), "colour": "red"}, {"colour"}),
    ]
    for body, fields in cases_:
        with pytest.raises(BadRequest) as refused:
            workflow.record_agreement(store, case_id, body, COORDINATOR, outbox, vault)
        assert set(refused.value.details["fields"]) == fields, refused.value.details
    with pytest.raises(BadRequest) as refused:
        workflow.record_agreement(store, case_id, cases_[1][0], COORDINATOR, outbox, vault)
    assert set(refused.value.details["fields"]["items"][0]) == {"kind", "owner_id", "due_on", "description"}
    # a supporter or an appropriate adult owns no item: only a party does
    adult = party(store, adult_case, "appropriate_adult")
    with pytest.raises(BadRequest) as refused:
        workflow.record_agreement(store, adult_case, agreement_body(store, adult_case, {
            "kind": "apology", "owner_id": adult, "due_on": day(1), "description": "x"}), COORDINATOR, outbox, vault)
    assert refused.value.details["fields"] == {"items": {0: {"owner_id": ["Not a party (harmed or harmer) of "
                                                                          "this case."]}}}
    assert store.counts() == before and outbox.events("agreement.recorded") == []
    assert store.load_case(case_id).agreement == {} and store.load_case(case_id).status == "INTERVENTION"


def test_an_agreement_needs_a_case_in_intervention_and_only_one(store, outbox, vault):
    _, payload, _ = workflow.submit_referral(store, referral_body(0), REFERRER, None, outbox, vault, served=SERVED)
    early = payload["case_id"]
    with pytest.raises(Conflict) as wrong_state:
        workflow.record_agreement(store, early, agreement_body(store, early), COORDINATOR, outbox, vault)
    assert wrong_state.value.details["status"] == "RECEIVED"
    case_id = in_intervention(store, outbox, vault)
    workflow.record_agreement(store, case_id, agreement_body(store, case_id), COORDINATOR, outbox, vault)
    with pytest.raises(Conflict) as twice:
        workflow.record_agreement(store, case_id, agreement_body(store, case_id), COORDINATOR, outbox, vault)
    assert "already" in str(twice.value)
    assert outbox.types().count("agreement.recorded") == 1


def test_an_erased_owner_cannot_be_given_an_item(store, outbox, vault):
    case_id = in_intervention(store, outbox, vault)
    workflow.erase_participant(store, case_id, party(store, case_id, "harmer"), COORDINATOR, outbox)
    with pytest.raises(Conflict) as erased:
        workflow.record_agreement(store, case_id, agreement_body(store, case_id), COORDINATOR, outbox, vault)
    assert erased.value.details["erased_owners"] == [party(store, case_id, "harmer")]
    assert store.load_case(case_id).status == "INTERVENTION"


def items_of(store, case_id):
    return [i["item_id"] for i in store.load_case(case_id).agreement["items"]]


def test_settling_every_item_records_the_outcome_once_and_moves_to_follow_up(store, outbox, vault):
    case_id = in_intervention(store, outbox, vault)
    workflow.record_agreement(store, case_id, agreement_body(store, case_id), COORDINATOR, outbox, vault)
    first, second = items_of(store, case_id)
    answer = workflow.update_agreement_item(store, case_id, first, {"status": "completed", "note": "Read out, Ms J"},
                                            COORDINATOR, outbox, vault)
    assert answer["status"] == "AGREEMENT_MONITORING" and answer["agreement"]["items"][0]["status"] == "completed"
    assert outbox.events("case.outcome_recorded") == []
    with pytest.raises(Conflict) as settled:
        workflow.update_agreement_item(store, case_id, first, {"status": "missed"}, COORDINATOR, outbox, vault)
    assert settled.value.details["item_status"] == "completed"
    done = workflow.update_agreement_item(store, case_id, second, {"status": "waived"}, COORDINATOR, outbox, vault)
    assert done["status"] == "FOLLOW_UP" and done["agreement"]["outcome"] == "agreement_completed"
    assert [e["data"] for e in outbox.events("case.outcome_recorded")] == [
        {"case_id": case_id, "outcome": "agreement_completed"}]
    assert outbox.types()[-3:] == ["agreement.item_waived", "case.outcome_recorded", "case.status_changed"]
    view = workflow.case_view(store, case_id, COORDINATOR, vault)
    assert view["agreement"]["items"][0]["note"] == "Read out, Ms J"
    assert "Ms J" not in str(store.load_case(case_id).agreement)
    with pytest.raises(Conflict):   # no longer monitored
        workflow.update_agreement_item(store, case_id, second, {"status": "completed"}, COORDINATOR, outbox, vault)
    with pytest.raises(NotFound):
        workflow.update_agreement_item(store, case_id, "agi-" + "0" * 32, {"status": "completed"}, COORDINATOR,
                                       outbox, vault)
    with pytest.raises(BadRequest) as bad:
        workflow.update_agreement_item(store, case_id, first, {"status": "done", "x": 1}, COORDINATOR, outbox, vault)
    assert set(bad.value.details["fields"]) == {"status", "x"}
    assert len(outbox.events("case.outcome_recorded")) == 1


def test_a_missed_item_makes_the_agreement_not_completed(store, outbox, vault):
    case_id = in_intervention(store, outbox, vault)
    workflow.record_agreement(store, case_id, agreement_body(store, case_id), COORDINATOR, outbox, vault)
    first, second = items_of(store, case_id)
    workflow.update_agreement_item(store, case_id, first, {"status": "missed"}, COORDINATOR, outbox, vault)
    missed = outbox.events("agreement.item_missed")[0]["data"]
    assert missed["detected"] == "recorded" and missed["item_id"] == first
    workflow.update_agreement_item(store, case_id, second, {"status": "completed"}, COORDINATOR, outbox, vault)
    assert [e["data"]["outcome"] for e in outbox.events("case.outcome_recorded")] == ["agreement_not_completed"]


def test_the_timer_reminds_then_misses_each_item_once(store, outbox, vault):
    case_id = in_intervention(store, outbox, vault)
    harmer = party(store, case_id, "harmer")
    body = agreement_body(store, case_id, {"kind": "apology", "owner_id": harmer, "due_on": day(2),
                                           "description": "soon"},
                          {"kind": "community_work", "owner_id": harmer, "due_on": day(30), "description": "later"})
    workflow.record_agreement(store, case_id, body, COORDINATOR, outbox, vault)
    soon, later = items_of(store, case_id)
    now = datetime.now(timezone.utc)
    assert workflow.monitor_agreements(store, outbox, now, SETTINGS) == [("agreement.item_due", soon)]
    assert workflow.monitor_agreements(store, outbox, now, SETTINGS) == []
    due = outbox.events("agreement.item_due")[0]["data"]
    assert due == {"case_id": case_id, "agreement_id": store.load_case(case_id).agreement["agreement_id"],
                   "item_id": soon, "kind": "apology", "owner_id": harmer, "owner_role": "harmer", "due_on": day(2)}
    # three days on, the first item's day has passed: missed, once; the second is not yet due a reminder
    later_now = now + timedelta(days=3)
    assert workflow.monitor_agreements(store, outbox, later_now, SETTINGS) == [("agreement.item_missed", soon)]
    assert workflow.monitor_agreements(store, outbox, later_now, SETTINGS) == []
    assert outbox.events("agreement.item_missed")[0]["data"]["detected"] == "due_date_passed"
    # 27 days on: the second is reminded; 31 days on it is missed, and that settles the agreement
    assert workflow.monitor_agreements(store, outbox, now + timedelta(days=27), SETTINGS) == [
        ("agreement.item_due", later)]
    assert workflow.monitor_agreements(store, outbox, now + timedelta(days=31), SETTINGS) == [
        ("agreement.item_missed", later)]
    assert [e["data"]["outcome"] for e in outbox.events("case.outcome_recorded")] == ["agreement_not_completed"]
    assert store.load_case(case_id).status == "FOLLOW_UP"
    assert workflow.monitor_agreements(store, outbox, now + timedelta(days=40), SETTINGS) == []
    assert len(outbox.events("agreement.item_due")) == 2 and len(outbox.events("agreement.item_missed")) == 2


def test_the_timer_and_a_request_racing_for_the_last_item_record_the_outcome_once(store, outbox, vault):
    """The caseworker completes the last open item while the timer, reading the same
    version, finds it overdue: one of them makes the next version, the other decides
    again on it and finds nothing left to do."""
    case_id = in_intervention(store, outbox, vault)
    harmer = party(store, case_id, "harmer")
    workflow.record_agreement(store, case_id, agreement_body(store, case_id, {
        "kind": "explanation", "owner_id": harmer, "due_on": day(0), "description": "why"}), COORDINATOR, outbox, vault)
    (item,) = items_of(store, case_id)
    real_record = store.record_change
    raced = []

    def the_request_lands_first(case, change):
        if not raced:
            raced.append(True)
            workflow.update_agreement_item(store, case_id, item, {"status": "completed"}, COORDINATOR, outbox, vault)
        return real_record(case, change)

    store.record_change = the_request_lands_first
    tomorrow = datetime.now(timezone.utc) + timedelta(days=1)
    assert workflow.monitor_agreements(store, outbox, tomorrow, SETTINGS) == []
    store.record_change = real_record
    assert [e["data"]["outcome"] for e in outbox.events("case.outcome_recorded")] == ["agreement_completed"]
    assert outbox.events("agreement.item_missed") == []
    assert store.load_case(case_id).agreement["items"][0]["status"] == "completed"


def test_closing_a_monitored_case_ends_the_agreement_not_completed(store, outbox, vault):
    case_id = in_intervention(store, outbox, vault)
    workflow.record_agreement(store, case_id, agreement_body(store, case_id), COORDINATOR, outbox, vault)
    close(store, case_id, outbox, vault, "terminated_noncompliance")
    case = store.load_case(case_id)
    assert case.agreement["status"] == "not_completed" and case.agreement["ended_by"] == "closure"
    assert [e["data"]["outcome"] for e in outbox.events("case.outcome_recorded")] == ["agreement_not_completed"]
    later = datetime.now(timezone.utc) + timedelta(days=60)
    assert workflow.monitor_agreements(store, outbox, later, SETTINGS) == []   # nothing is monitored after closure


# --- closure, surveys and the follow-up ------------------------------------------------

def test_closure_after_intervention_asks_each_consenting_party_once_with_a_sealed_token(store, outbox, vault):
    case_id = in_intervention(store, outbox, vault, consent=("harmed",))
    close(store, case_id, outbox, vault)
    case = store.load_case(case_id)
    (survey,) = case.surveys
    harmed = party(store, case_id, "harmed")
    assert (survey["participant_id"], survey["stage"], survey["answered_at"]) == (harmed, "closure", None)
    requested = outbox.events("survey.requested")
    assert [e["data"] for e in requested] == [{"case_id": case_id, "survey_id": survey["survey_id"],
                                               "participant_id": harmed, "participant_role": "harmed",
                                               "stage": "closure"}]
    assert outbox.types()[-3:] == ["case.status_changed", "case.closed", "survey.requested"]
    token = cases.unseal(store, vault, harmed, survey["sealed_token"])["token"]
    assert len(token) >= 40 and token not in str(case) and token not in str(outbox.flushed)
    assert survey["key"] == vault.fingerprint(surveys.TOKEN_LABEL, token)
    assert case.follow_up["due_on"] == day(90) and case.retention == {}
    # the view says who was asked and whether they answered, never the token or its key
    view = workflow.case_view(store, case_id, COORDINATOR, vault)
    assert view["surveys"][0]["state"] == "open" and token not in str(view) and survey["key"] not in str(view)
    # the contact lookup gives notifications the link, for this purpose alone
    answer = workflow.get_contact(store, harmed, "survey_invitation", "notifications", vault,
                                  public_url="https://rj.example")
    assert answer["details"]["survey_link"] == f"https://rj.example/v1/surveys/{token}"
    assert "survey_link" not in workflow.get_contact(store, harmed, "participant_information", "notifications",
                                                     vault)["details"]
    harmer = party(store, case_id, "harmer")
    assert workflow.get_contact(store, harmer, "survey_invitation", "notifications", vault)["reason"] == \
        "no_open_survey"
    logged = [(a.party_id, a.purpose, a.reason, "survey_link" in a.fields_released) for a in store.all_accesses()
              if a.purpose == "survey_invitation"]
    assert logged == [(harmed, "survey_invitation", "granted", True),
                      (harmer, "survey_invitation", "no_open_survey", False)]


def test_a_case_closed_before_the_intervention_asks_nobody(store, outbox, vault):
    _, payload, _ = workflow.submit_referral(store, referral_body(0), REFERRER, None, outbox, vault, served=SERVED)
    case_id = payload["case_id"]
    workflow.record_consent(store, case_id, {"participant_id": party(store, case_id, "harmed"),
                                             "scope": "participation", "granted": True}, COORDINATOR, outbox)
    close(store, case_id, outbox, vault, "not_suitable")
    case = store.load_case(case_id)
    assert case.surveys == [] and case.follow_up == {} and outbox.events("survey.requested") == []


def test_a_survey_is_answered_once_by_its_token_and_expires(store, outbox, vault):
    case_id = in_intervention(store, outbox, vault)
    close(store, case_id, outbox, vault)
    harmed = party(store, case_id, "harmed")
    survey = next(s for s in store.load_case(case_id).surveys if s["participant_id"] == harmed)
    token = cases.unseal(store, vault, harmed, survey["sealed_token"])["token"]
    form = workflow.survey_form(store, token, vault)
    assert [q["id"] for q in form["questions"]] == list(surveys.SCORES) + ["comments"]
    assert form["language"] == "en" and form["stage"] == "closure"
    with pytest.raises(NotFound):
        workflow.survey_form(store, token[:-2] + "zz", vault)
    with pytest.raises(BadRequest) as bad:
        workflow.answer_survey(store, token, {"satisfied_with_process": 6, "felt_safe": "4", "would_recommend": 1},
                               outbox, vault)
    assert set(bad.value.details["fields"]) == {"satisfied_with_process", "felt_safe", "would_recommend",
                                                "harm_repaired"}
    answer = {"satisfied_with_process": 5, "felt_safe": 4, "would_recommend": True, "harm_repaired": 3,
              "comments": "Thank you, Dafydd was kind"}
    assert workflow.answer_survey(store, token, answer, outbox, vault)["stage"] == "closure"
    with pytest.raises(Conflict):
        workflow.answer_survey(store, token, answer, outbox, vault)
    with pytest.raises(Conflict):
        workflow.survey_form(store, token, vault)
    answered = outbox.events("survey.answered")
    assert [e["data"] for e in answered] == [{"case_id": case_id, "survey_id": survey["survey_id"],
                                              "stage": "closure", "participant_role": "harmed",
                                              "scores": {k: answer[k] for k in surveys.SCORES}}]
    stored = next(s for s in store.load_case(case_id).surveys if s["participant_id"] == harmed)
    assert "Dafydd" not in str(stored) and cases.unseal(store, vault, harmed, stored["comments_sealed"]) == {
        "comments": "Thank you, Dafydd was kind"}
    # the other party's survey, 61 days on, has expired
    harmer = party(store, case_id, "harmer")
    other = next(s for s in store.load_case(case_id).surveys if s["participant_id"] == harmer)
    other_token = cases.unseal(store, vault, harmer, other["sealed_token"])["token"]
    with pytest.raises(Gone):
        workflow.answer_survey(store, other_token, answer, outbox, vault,
                               now=datetime.now(timezone.utc) + timedelta(days=61))
    assert len(outbox.events("survey.answered")) == 1


def test_a_survey_of_an_erased_person_is_gone(store, outbox, vault):
    case_id = in_intervention(store, outbox, vault)
    close(store, case_id, outbox, vault)
    harmed = party(store, case_id, "harmed")
    survey = next(s for s in store.load_case(case_id).surveys if s["participant_id"] == harmed)
    token = cases.unseal(store, vault, harmed, survey["sealed_token"])["token"]
    workflow.erase_participant(store, case_id, harmed, COORDINATOR, outbox)
    with pytest.raises(Gone):
        workflow.survey_form(store, token, vault)


def test_the_follow_up_survey_is_asked_for_once_after_its_days(store, outbox, vault):
    case_id = in_intervention(store, outbox, vault)
    close(store, case_id, outbox, vault)
    now = datetime.now(timezone.utc)
    assert workflow.request_follow_up_surveys(store, outbox, vault, now + timedelta(days=89), SETTINGS) == []
    # the harmer has withdrawn since: only the harmed person is asked again
    harmer = party(store, case_id, "harmer")
    workflow.record_consent(store, case_id, {"participant_id": harmer, "scope": "participation", "granted": False},
                            COORDINATOR, outbox)
    at = now + timedelta(days=90)
    assert workflow.request_follow_up_surveys(store, outbox, vault, at, SETTINGS) == [case_id]
    assert workflow.request_follow_up_surveys(store, outbox, vault, at, SETTINGS) == []
    follow_ups = [e["data"] for e in outbox.events("survey.requested") if e["data"]["stage"] == "follow_up"]
    assert [d["participant_role"] for d in follow_ups] == ["harmed"]
    assert store.load_case(case_id).follow_up["requested_at"] is not None


# --- retention ----------------------------------------------------------------------------

def test_a_declined_victims_record_is_reduced_to_statistics_once_after_the_retention_period(store, outbox, vault):
    body = referral_body(0)
    body["participants"].append({"role": "supporter", "name": "Nia Hughes", "age_band": "35_49", "language": "cy",
                                 "contact": {"email": "nia@mail.example"}, "access_needs": ["hearing_loop"]})
    _, payload, _ = workflow.submit_referral(store, body, REFERRER, None, outbox, vault, served=SERVED)
    case_id = payload["case_id"]
    close(store, case_id, outbox, vault, "harmed_declined")
    harmed, harmer = party(store, case_id, "harmed"), party(store, case_id, "harmer")
    supporter = party(store, case_id, "supporter")
    assert store.load_case(case_id).retention["due_on"] == day(365)
    now = datetime.now(timezone.utc)
    assert workflow.reduce_to_statistics(store, outbox, now + timedelta(days=364)) == []
    assert store.data_key(harmed) is not None
    at = now + timedelta(days=365)
    assert workflow.reduce_to_statistics(store, outbox, at) == [case_id]
    assert workflow.reduce_to_statistics(store, outbox, at) == []
    case = store.load_case(case_id)
    assert store.data_key(harmed) is None and store.data_key(supporter) is None and store.data_key(harmer)
    reduced = {p["party_id"]: p for p in case.participants}
    assert reduced[harmed]["attributes"] == {"age_band": "50_64"} and reduced[harmed]["sealed"] is None
    assert reduced[supporter]["attributes"] == {"age_band": "35_49"} and reduced[harmer]["attributes"]["language"]
    assert [(e["type"], e["data"]["participant_id"]) for e in outbox.events(
        "participant.erased", "participant.reduced_to_statistics")] == [
        ("participant.erased", harmed), ("participant.erased", supporter),
        ("participant.reduced_to_statistics", harmed), ("participant.reduced_to_statistics", supporter)]
    assert outbox.events("participant.reduced_to_statistics")[0]["data"] == {
        "case_id": case_id, "participant_id": harmed, "reason": "retention", "retained": ["age_band"]}
    view = workflow.case_view(store, case_id, COORDINATOR, vault)
    assert view["retention"]["reduced_at"] and view["participants"][0]["reduced_to_statistics"] is True
    assert "Sian Jones" not in str(view) and "Nia Hughes" not in str(view)


def test_retention_drops_the_victims_casework_ciphertext_as_erasure_does(store, outbox, vault):
    """Retention goes through the erasure's own path: the victim's preparation notes, risk
    notes and items lose their ciphertext too; the harmer's are kept."""
    _, payload, _ = workflow.submit_referral(store, referral_body(0), REFERRER, None, outbox, vault, served=SERVED)
    case_id = payload["case_id"]
    for status in TO_PREPARATION:
        workflow.transition_case(store, case_id, {"to": status}, COORDINATOR, outbox, vault, SETTINGS)
    harmed, harmer = party(store, case_id, "harmed"), party(store, case_id, "harmer")
    for who in (harmed, harmer):
        workflow.record_contact(store, case_id, contact(who, notes=f"notes on {who}"), COORDINATOR, outbox, vault)
        workflow.record_risk_assessment(store, case_id, {"participant_id": who, "factors": FACTORS,
                                                         "notes": f"risk of {who}"}, COORDINATOR, outbox, vault)
    workflow.record_item(store, case_id, {"author_id": harmed, "kind": "impact_statement", "content": "It hurt."},
                         COORDINATOR, outbox, vault)
    close(store, case_id, outbox, vault, "harmed_declined")
    assert workflow.reduce_to_statistics(store, outbox, datetime.now(timezone.utc) + timedelta(days=366)) == [case_id]
    case = store.load_case(case_id)
    for records, owner in ((case.preparation_contacts, "participant_id"), (case.risk_assessments, "participant_id"),
                           (case.voice_items, "author_id")):
        assert {r[owner]: bool(r.get("sealed")) for r in records} == (
            {harmed: False} if owner == "author_id" else {harmed: False, harmer: True})
    assert case.participants[0]["reduced"] and case.participants[0]["sealed"] is None
    assert case.support_settled_at is not None   # no harmed person is left to refer


def test_retention_applies_only_to_declined_or_unreachable_victims(store, outbox, vault):
    for reason, kept in (("no_contact", True), ("safety_stop", False), ("harmer_declined", False)):
        _, payload, _ = workflow.submit_referral(store, referral_body(0), REFERRER, None, outbox, vault, served=SERVED)
        close(store, payload["case_id"], outbox, vault, reason)
        assert bool(store.load_case(payload["case_id"]).retention) is kept, reason


def test_an_already_erased_victim_is_reduced_without_a_second_erasure(store, outbox, vault):
    _, payload, _ = workflow.submit_referral(store, referral_body(0), REFERRER, None, outbox, vault, served=SERVED)
    case_id = payload["case_id"]
    harmed = party(store, case_id, "harmed")
    workflow.erase_participant(store, case_id, harmed, COORDINATOR, outbox)
    close(store, case_id, outbox, vault, "no_contact")
    workflow.reduce_to_statistics(store, outbox, datetime.now(timezone.utc) + timedelta(days=366))
    assert len(outbox.events("participant.erased")) == 1
    assert [e["data"]["participant_id"] for e in outbox.events("participant.reduced_to_statistics")] == [harmed]


def test_a_losing_retention_writer_decides_again_and_emits_nothing_twice(store, outbox, vault):
    _, payload, _ = workflow.submit_referral(store, referral_body(0), REFERRER, None, outbox, vault, served=SERVED)
    case_id = payload["case_id"]
    close(store, case_id, outbox, vault, "no_contact")
    at = datetime.now(timezone.utc) + timedelta(days=365)
    real_record = store.record_change
    raced = []

    def another_process_first(case, change):
        if not raced:
            raced.append(True)
            workflow.reduce_to_statistics(store, outbox, at)   # the other instance, on the same tick
        return real_record(case, change)

    store.record_change = another_process_first
    assert workflow.reduce_to_statistics(store, outbox, at) == []
    assert len(outbox.events("participant.reduced_to_statistics")) == 1
    assert len(outbox.events("participant.erased")) == 1
