"""Who is told what, for each event (pure)."""
from types import SimpleNamespace

from services.notifications import audience


def case(**changes):
    base = dict(case_id="case-9", referrer_id="ref-9", assignments={"as-lead": {"facilitator_id": "fac-1", "role": "lead"},
                                                                     "as-co": {"facilitator_id": "fac-2", "role": "co_facilitator"}},
                participants=[{"participant_id": "p-h", "role": "harmed"}, {"participant_id": "p-x", "role": "harmer"},
                              {"participant_id": "p-s", "role": "supporter"}],
                summary={"region": "gwent"})
    base.update(changes)
    return SimpleNamespace(**base)


def told(event_type, **data):
    return [(n.recipient_role, n.recipient_id, n.purpose, n.holder, n.template)
            for n in audience.notices({"type": event_type, "data": {"case_id": "case-9", **data}}, case())]


def test_a_new_referral_tells_the_referrer_and_the_harmed_person_only():
    assert told("referral.received") == [
        ("referrer", "ref-9", "referrer_update", "referrals", "referrer.referral_received"),
        ("harmed", "p-h", "participant_information", "referrals", "harmed.referral_received"),
    ]


def test_the_harmer_hears_of_rj_only_once_the_case_is_found_suitable():
    assert told("case.assessed", decision="suitable") == [
        ("referrer", "ref-9", "referrer_update", "referrals", "referrer.case_assessed"),
        ("harmer", "p-x", "participant_information", "referrals", "harmer.case_assessed"),
    ]
    for decision in ("unsuitable", "needs_review"):
        assert [t[0] for t in told("case.assessed", decision=decision)] == ["referrer"]


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
    events = [("referral.received", {}), ("case.assessed", {"decision": "suitable"}),
              ("facilitator.assigned", {"facilitator_id": "fac-1", "role": "lead"}),
              ("assignment.accepted", {"assignment_id": "as-lead"}), ("case.outcome_recorded", {"outcome": "agreement_completed"}),
              ("case.deadline_due", {"deadline": "support_referral"}),
              ("case.deadline_missed", {"deadline": "victim_told_about_rj"})]
    seen = {(n.event_type, n.recipient_role) for kind, data in events
            for n in audience.notices({"type": kind, "data": {"case_id": "case-9", **data}}, case())}
    assert seen == pairs
