"""Who is told what, for each event (pure)."""
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from services.notifications import audience, sessions


def case(**changes):
    base = dict(case_id="case-9", referrer_id="ref-9", assignments={"as-lead": {"facilitator_id": "fac-1", "role": "lead"},
                                                                     "as-co": {"facilitator_id": "fac-2", "role": "co_facilitator"}},
                participants=[{"participant_id": "p-h", "role": "harmed"}, {"participant_id": "p-x", "role": "harmer"},
                              {"participant_id": "p-s", "role": "supporter"}],
                summary={"offence_category": "burglary", "flags": [], "initiated_by": "harmed", "region": "gwent"},
                assessment={"decision": "suitable", "basis": "referral"})
    base.update(changes)
    entry = SimpleNamespace(**base)
    entry.participant = lambda pid: next((p for p in entry.participants if p["participant_id"] == pid), None)
    return entry


def told(event_type, entry=None, **data):
    return [(n.recipient_role, n.recipient_id, n.purpose, n.holder, n.template)
            for n in audience.notices({"type": event_type, "data": {"case_id": "case-9", **data}}, entry or case())]


def roles_told(event_type, entry=None, **data):
    return [t[0] for t in told(event_type, entry, **data)]


def test_a_new_referral_tells_the_referrer_only():
    # the harmed person hears nothing before the case is assessed: a referral the policy
    # refuses for safety (one a domestic abuser started, say) must never reach them
    assert told("referral.received") == [
        ("referrer", "ref-9", "referrer_update", "referrals", "referrer.referral_received")]


def test_a_suitable_case_tells_the_referrer_then_both_parties():
    assert told("case.assessed", decision="suitable") == [
        ("referrer", "ref-9", "referrer_update", "referrals", "referrer.case_assessed"),
        ("harmed", "p-h", "participant_information", "referrals", "harmed.case_assessed"),
        ("harmer", "p-x", "participant_information", "referrals", "harmer.case_assessed"),
    ]


@pytest.mark.parametrize("decision", ["unsuitable", "needs_review"])
def test_no_party_is_contacted_before_a_case_is_found_suitable(decision):
    assert roles_told("case.assessed", decision=decision) == ["referrer"]
    assert roles_told("case.assessed", decision=decision, basis="review") == ["referrer"]


@pytest.mark.parametrize("summary", [
    {"offence_category": "violence_against_the_person", "flags": ["domestic_abuse"], "initiated_by": "harmer"},
    {"offence_category": "violence_against_the_person", "flags": ["domestic_abuse"], "initiated_by": "harmed"},
    {"offence_category": "public_order", "flags": ["gender_based_violence"], "initiated_by": "harmed"},
    {"offence_category": "sexual_offence", "flags": [], "initiated_by": "harmed"},
    {"offence_category": "other", "flags": ["sexual_offence"], "initiated_by": "harmed"},
])
def test_in_domestic_abuse_gbv_and_sexual_offence_cases_no_party_is_ever_written_to(summary):
    entry = case(summary=summary, assessment={"decision": "suitable", "basis": "review"})
    for basis in ("referral", "review"):
        assert roles_told("case.assessed", entry, decision="suitable", basis=basis) == ["referrer"]
    assert roles_told("assignment.accepted", entry, assignment_id="as-lead", facilitator_id="fac-1") == []
    # after the intervention the lead facilitator is told instead of the party; the referrer as ever
    assert roles_told("case.outcome_recorded", entry, outcome="agreement_completed") == ["referrer", "facilitator"]
    assert roles_told("case.closed", entry, from_status="FOLLOW_UP", reason="completed_direct") == [
        "referrer", "facilitator"]
    assert told("agreement.item_due", entry, **ITEM)[0][:4] == ("facilitator", "fac-1", "case_update", "matching")
    assert told("survey.requested", entry, **SURVEY)[0][:4] == ("facilitator", "fac-1", "case_update", "matching")
    assert roles_told("referral.received", entry) == ["referrer"]
    # the facilitator is still told, and the offer says contact is theirs to lead
    assert roles_told("facilitator.assigned", entry, facilitator_id="fac-1", role="lead") == [
        "referrer", "facilitator"]
    assert audience.contact_led_by_facilitator(entry)


def test_after_a_review_the_harmer_is_not_contacted_before_the_facilitators_risk_assessment():
    assert roles_told("case.assessed", decision="suitable", basis="review") == ["referrer", "harmed"]
    reviewed = case(assessment={"decision": "suitable", "basis": "review"})
    assert [t[:3] for t in told("assignment.accepted", reviewed, assignment_id="as-lead", facilitator_id="fac-1")] == [
        ("harmed", "p-h", "participant_information")]


def test_a_directory_that_missed_the_reviews_assessment_still_holds_the_harmer_back():
    # the needs_review assessment is the last the directory saw: the review's was lost
    stale = case(assessment={"decision": "needs_review", "basis": "referral"})
    assert [t[0] for t in told("assignment.accepted", stale, assignment_id="as-lead", facilitator_id="fac-1")] == [
        "harmed"]


def test_an_assessment_after_consent_is_given_again_tells_the_referrer_only():
    assert roles_told("case.assessed", decision="suitable", basis="consent") == ["referrer"]


def test_an_assignment_tells_the_facilitator_and_for_the_lead_the_referrer():
    assert told("facilitator.assigned", facilitator_id="fac-1", role="lead") == [
        ("referrer", "ref-9", "referrer_update", "referrals", "referrer.facilitator_assigned"),
        ("facilitator", "fac-1", "assignment_offer", "matching", "facilitator.facilitator_assigned"),
    ]
    assert told("facilitator.assigned", facilitator_id="fac-2", role="co_facilitator") == [
        ("facilitator", "fac-2", "assignment_offer", "matching", "facilitator.facilitator_assigned"),
    ]


def test_the_leads_acceptance_tells_both_parties_and_a_co_facilitators_tells_no_one():
    assert [t[:3] for t in told("assignment.accepted", assignment_id="as-lead", facilitator_id="fac-1")] == [
        ("harmed", "p-h", "participant_information"), ("harmer", "p-x", "participant_information")]
    assert told("assignment.accepted", assignment_id="as-co", facilitator_id="fac-2") == []


def test_the_outcome_goes_to_the_referrer_and_the_harmed_person():
    assert told("case.outcome_recorded", outcome="agreement_not_completed") == [
        ("referrer", "ref-9", "referrer_update", "referrals", "referrer.case_outcome_recorded"),
        ("harmed", "p-h", "outcome_update", "referrals", "harmed.case_outcome_recorded")]


def test_a_victims_code_deadline_tells_the_coordinating_team_of_the_case_region_and_no_one_else():
    for event_type in ("case.deadline_due", "case.deadline_missed"):
        for deadline in ("victim_told_about_rj", "support_referral"):
            assert told(event_type, deadline=deadline, due_at="2026-11-21T00:00:00+00:00", enhanced_rights=False) == [
                ("coordinator", "coordinators.gwent", "deadline_alert", "coordinators",
                 f"coordinator.{event_type.replace('.', '_')}")]


ITEM = {"agreement_id": "agr-1", "item_id": "agi-1", "kind": "apology", "owner_id": "p-x", "owner_role": "harmer",
        "due_on": "2026-12-10"}
SURVEY = {"survey_id": "srv-1", "participant_id": "p-h", "participant_role": "harmed", "stage": "closure"}


def test_the_end_of_the_intervention_tells_the_harmed_person_and_any_closure_the_referrer():
    assert told("case.closed", from_status="AGREEMENT_MONITORING", reason="partial") == [
        ("referrer", "ref-9", "referrer_update", "referrals", "referrer.case_closed"),
        ("harmed", "p-h", "outcome_update", "referrals", "harmed.case_closed")]
    # a case closed before its intervention: nothing had begun for the harmed person to be told has ended
    assert roles_told("case.closed", from_status="TRIAGE", reason="not_suitable") == ["referrer"]


def test_a_reminder_goes_to_the_items_owner_and_a_missed_item_to_the_lead_facilitator():
    assert told("agreement.item_due", **ITEM) == [
        ("harmer", "p-x", "agreement_reminder", "referrals", "harmer.agreement_item_due")]
    assert told("agreement.item_due", **dict(ITEM, owner_id="p-h", owner_role="harmed"))[0][:3] == (
        "harmed", "p-h", "agreement_reminder")
    assert told("agreement.item_missed", **ITEM, detected="due_date_passed") == [
        ("facilitator", "fac-1", "case_update", "matching", "facilitator.agreement_item_missed")]


def test_a_survey_goes_to_the_party_asked_with_its_own_purpose():
    assert told("survey.requested", **SURVEY) == [
        ("harmed", "p-h", "survey_invitation", "referrals", "harmed.survey_requested")]
    assert told("survey.requested", **dict(SURVEY, participant_id="p-x", participant_role="harmer"))[0][:3] == (
        "harmer", "p-x", "survey_invitation")


def test_the_lead_facilitator_is_the_lead_assignment_last_accepted():
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    entry = case(assignments={"as-1": {"facilitator_id": "fac-old", "role": "lead", "accepted_at": now},
                              "as-2": {"facilitator_id": "fac-new", "role": "lead",
                                       "accepted_at": now + timedelta(days=3)},
                              "as-3": {"facilitator_id": "fac-offered", "role": "lead"},
                              "as-co": {"facilitator_id": "fac-co", "role": "co_facilitator", "accepted_at": now}})
    assert audience.lead_facilitator(entry) == "fac-new"
    assert roles_told("agreement.item_missed", entry, **ITEM, detected="recorded") == ["facilitator"]
    assert told("agreement.item_missed", entry, **ITEM, detected="recorded")[0][1] == "fac-new"
    # two leads, neither known to have accepted: nobody is guessed at
    unknown = case(assignments={"as-1": {"facilitator_id": "a", "role": "lead"},
                                "as-2": {"facilitator_id": "b", "role": "lead"}})
    assert audience.lead_facilitator(unknown) is None and told("agreement.item_missed", unknown, **ITEM,
                                                                 detected="recorded") == []


def test_every_notice_has_a_message():
    pairs = set(audience.MESSAGES)
    session = {"session_id": "ses-1", "attendee_ids": ["p-h", "p-x", "p-s"], "facilitator_ids": ["fac-1"]}
    events = [("referral.received", {}), ("case.assessed", {"decision": "suitable"}),
              ("facilitator.assigned", {"facilitator_id": "fac-1", "role": "lead"}),
              ("assignment.accepted", {"assignment_id": "as-lead"}), ("case.outcome_recorded", {"outcome": "agreement_completed"}),
              ("case.deadline_due", {"deadline": "support_referral"}),
              ("case.deadline_missed", {"deadline": "victim_told_about_rj"}),
              ("case.closed", {"from_status": "FOLLOW_UP", "reason": "completed_direct"}),
              ("agreement.item_due", ITEM), ("agreement.item_due", dict(ITEM, owner_id="p-h", owner_role="harmed")),
              ("agreement.item_missed", dict(ITEM, detected="recorded")), ("survey.requested", SURVEY),
              ("survey.requested", dict(SURVEY, participant_id="p-x", participant_role="harmer"))]
    events += [(kind, dict(session, facilitator_led=led)) for kind in sessions.EVENTS for led in (False, True)]
    # facilitator-led: what follows the intervention goes to the lead facilitator instead
    led_case = case(summary={"offence_category": "sexual_offence", "flags": [], "initiated_by": "harmed"})
    seen = {(n.event_type, audience.template_role(n.event_type, n.recipient_role)) for kind, data in events
            for entry in (case(), led_case)
            for n in audience.notices({"type": kind, "data": {"case_id": "case-9", **data}}, entry)}
    # a session's reminder is no event's notice: it is planned from the invitation (workflow.plan_reminder)
    assert (sessions.SCHEDULED, sessions.ATTENDEE) in seen
    seen.add((sessions.REMINDER, sessions.ATTENDEE))
    # a subscription's owner: no case's notice, but owners.notice's
    from services.notifications import owners
    notice = owners.notice({"type": owners.DISABLED, "data": {"agency": "test-police"}})
    seen.add((notice.event_type, notice.recipient_role))
    assert seen == pairs
