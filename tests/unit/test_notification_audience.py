"""Who is told what, for each event (pure)."""
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
    assert roles_told("case.outcome_recorded", entry, outcome="agreement_completed") == []
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


def test_the_outcome_goes_to_the_harmed_person_only():
    assert told("case.outcome_recorded", outcome="agreement_not_completed") == [
        ("harmed", "p-h", "outcome_update", "referrals", "harmed.case_outcome_recorded")]


def test_a_victims_code_deadline_tells_the_coordinating_team_of_the_case_region_and_no_one_else():
    for event_type in ("case.deadline_due", "case.deadline_missed"):
        for deadline in ("victim_told_about_rj", "support_referral"):
            assert told(event_type, deadline=deadline, due_at="2026-11-21T00:00:00+00:00", enhanced_rights=False) == [
                ("coordinator", "coordinators.gwent", "deadline_alert", "coordinators",
                 f"coordinator.{event_type.replace('.', '_')}")]


def test_every_notice_has_a_message():
    pairs = set(audience.MESSAGES)
    session = {"session_id": "ses-1", "attendee_ids": ["p-h", "p-x", "p-s"], "facilitator_ids": ["fac-1"]}
    events = [("referral.received", {}), ("case.assessed", {"decision": "suitable"}),
              ("facilitator.assigned", {"facilitator_id": "fac-1", "role": "lead"}),
              ("assignment.accepted", {"assignment_id": "as-lead"}), ("case.outcome_recorded", {"outcome": "agreement_completed"}),
              ("case.deadline_due", {"deadline": "support_referral"}),
              ("case.deadline_missed", {"deadline": "victim_told_about_rj"})]
    events += [(kind, dict(session, facilitator_led=led)) for kind in sessions.EVENTS for led in (False, True)]
    seen = {(n.event_type, audience.template_role(n.event_type, n.recipient_role)) for kind, data in events
            for n in audience.notices({"type": kind, "data": {"case_id": "case-9", **data}}, case())}
    # a session's reminder is no event's notice: it is planned from the invitation (workflow.plan_reminder)
    assert (sessions.SCHEDULED, sessions.ATTENDEE) in seen
    seen.add((sessions.REMINDER, sessions.ATTENDEE))
    assert seen == pairs
