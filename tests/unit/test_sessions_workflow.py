"""The intervention and session workflows of referrals on the in-memory store: each is one
change of the case carrying its events, a refusal stores nothing, the venue stays in
referrals (released only through get_contact's session_invitation purpose) and the
notes are sealed."""
from datetime import datetime, timedelta, timezone

import pytest

from services.referrals import cases, workflow
from shared.web import BadRequest, Conflict, NotFound
from tests.factories import full_referral_body, referral_body
from tests.unit.test_referrals_workflow import (  # noqa: F401  (fixtures: store, outbox, vault)
    AUDITOR, COORDINATOR, outbox, principal, refer, store, vault)

VENUE = {"kind": "community", "name": "Canolfan Gymunedol Grangetown", "address": "Havelock Place, Grangetown"}
FACILITATOR = principal("facilitator", subject="fac-7")


def set_up(store, case_id, **state):
    """Test setup, through the store: what the other workflows (matching's assessment, the
    facilitator's safety decision, the lifecycle) would have recorded."""
    case = store.load_case(case_id)
    assert store.record_change(case, cases.next_change(case, state, [], "test:setup")) is not None


def preparing(store, outbox, vault, body=None, process_types=("direct_conference", "shuttle"), decision="direct"):
    case_id, _ = refer(store, outbox, vault, body=body or full_referral_body())
    set_up(store, case_id, status="PREPARATION",
           assessment={"decision": "suitable", "process_types": list(process_types), "risk_level": "low"},
           safety={"decision": decision, "by": "facilitator:fac-7"} if decision else {},
           staffing={"as-1": {"facilitator_id": "fac-7", "state": "accepted"}}, held_by=["fac-7"],
           facilitators=["fac-7"])
    outbox.flushed.clear()
    return case_id


def ids(store, case_id):
    """party id by role (the first of each)."""
    found = {}
    for p in store.load_case(case_id).participants:
        found.setdefault(p["role"], p["party_id"])
    return found


def session_body(attendees, starts_at=None, **changes):
    body = {"starts_at": (starts_at or datetime.now(timezone.utc) + timedelta(days=3)).isoformat(),
            "duration_minutes": 120, "venue": dict(VENUE), "attendees": list(attendees)}
    body.update(changes)
    return body


def events(outbox, event_type):
    return [e for _, _, flushed in outbox.flushed for e in flushed if e["type"] == event_type]


def test_choosing_the_intervention_moves_the_case_in_one_change_with_both_events(store, outbox, vault):
    case_id = preparing(store, outbox, vault)
    answer = workflow.choose_intervention(store, case_id, {"process_type": "shuttle"}, FACILITATOR, outbox)
    assert answer["status"] == "INTERVENTION" and answer["intervention"]["process_type"] == "shuttle"
    assert answer["intervention"]["by"] == FACILITATOR.who
    assert len(outbox.flushed) == 1 and outbox.types() == ["case.status_changed", "intervention.chosen"]
    assert events(outbox, "case.status_changed")[0]["data"]["to_status"] == "INTERVENTION"
    assert events(outbox, "intervention.chosen")[0]["data"] == {"case_id": case_id, "process_type": "shuttle"}
    case = store.load_case(case_id)
    assert (case.status, case.intervention["process_type"], case.history[-1]["to"]) == (
        "INTERVENTION", "shuttle", "INTERVENTION")
    # the same again changes nothing; another process is chosen again, with its event
    workflow.choose_intervention(store, case_id, {"process_type": "shuttle"}, FACILITATOR, outbox)
    assert len(outbox.flushed) == 1
    workflow.choose_intervention(store, case_id, {"process_type": "direct_conference"}, FACILITATOR, outbox)
    assert outbox.types()[-1] == "intervention.chosen" and len(events(outbox, "case.status_changed")) == 1


@pytest.mark.parametrize("body,code,reason", [
    ({"process_type": "group_conference"}, 409, "process_not_assessed"),
    ({"process_type": "teleport"}, 400, None),
    ({}, 400, None),
])
def test_an_intervention_refused_stores_nothing(store, outbox, vault, body, code, reason):
    case_id = preparing(store, outbox, vault)
    before = store.counts()
    with pytest.raises(Conflict if code == 409 else BadRequest) as raised:
        workflow.choose_intervention(store, case_id, body, COORDINATOR, outbox)
    if reason:
        assert raised.value.details["reason"] == reason
    else:
        assert "process_type" in raised.value.details["fields"]
    assert store.counts() == before and outbox.flushed == []


def test_before_a_safety_decision_and_for_a_meeting_on_indirect_only_the_gate_refuses(store, outbox, vault):
    undecided = preparing(store, outbox, vault, decision=None)
    with pytest.raises(Conflict) as raised:
        workflow.choose_intervention(store, undecided, {"process_type": "shuttle"}, COORDINATOR, outbox)
    assert raised.value.details["reason"] == "safety_decision_missing"
    indirect = preparing(store, outbox, vault, decision="indirect_only")
    with pytest.raises(Conflict) as raised:
        workflow.choose_intervention(store, indirect, {"process_type": "direct_conference"}, COORDINATOR, outbox)
    assert raised.value.details["reason"] == "indirect_only"
    assert store.load_case(indirect).status == "PREPARATION" and outbox.flushed == []


def test_a_session_is_scheduled_with_its_venue_kept_in_referrals_and_its_notes_sealed(store, outbox, vault):
    case_id = preparing(store, outbox, vault)
    workflow.choose_intervention(store, case_id, {"process_type": "shuttle"}, FACILITATOR, outbox)
    people = ids(store, case_id)
    answer = workflow.schedule_session(store, case_id, session_body(
        [people["harmed"], people["interpreter"]], notes="Siân would like her sister to wait outside."),
        FACILITATOR, outbox, vault)
    assert answer["venue"] == VENUE and answer["notes"].startswith("Siân would like")
    scheduled = events(outbox, "session.scheduled")
    assert len(scheduled) == 1
    data = scheduled[0]["data"]
    assert data["session_id"] == answer["session_id"] and data["attendee_ids"] == [people["harmed"],
                                                                                   people["interpreter"]]
    assert (data["venue_kind"], data["process_type"], data["facilitator_led"], data["revision"]) == (
        "community", "shuttle", False, 1)
    assert data["facilitator_ids"] == ["fac-7"]
    assert "Grangetown" not in repr(scheduled) and "sister" not in repr(scheduled)
    stored = store.load_case(case_id).sessions[0]
    assert stored["venue"] == VENUE and "sister" not in repr(stored["notes"])
    # a coordinator sees the venue and the notes; an auditor sees when and what kind of place only
    view = workflow.case_view(store, case_id, COORDINATOR, vault)["sessions"][0]
    assert view["venue"]["address"] == VENUE["address"] and "sister" in view["notes"]
    hidden = workflow.case_view(store, case_id, AUDITOR, vault)
    assert hidden["sessions"][0]["venue"] == {"kind": "community"} and "notes" not in hidden["sessions"][0]
    assert "Grangetown" not in repr(hidden) and hidden["intervention"]["process_type"] == "shuttle"


def test_session_requests_refused_store_nothing_and_name_the_fault(store, outbox, vault):
    case_id = preparing(store, outbox, vault, body=referral_body(1))   # a harmer under 18, an appropriate adult
    people = ids(store, case_id)
    with pytest.raises(Conflict) as raised:   # no intervention yet
        workflow.schedule_session(store, case_id, session_body([people["harmer"]]), COORDINATOR, outbox, vault)
    assert raised.value.details["reason"] == "intervention_missing"
    workflow.choose_intervention(store, case_id, {"process_type": "shuttle"}, COORDINATOR, outbox)
    outbox.flushed.clear()
    before = store.counts()
    stranger = "p-" + "0" * 32
    refusals = [
        (session_body([people["harmer"]], duration_minutes=500, venue={"kind": "remote", "name": "Teams",
                                                                       "address": "x"}), BadRequest,
         {"duration_minutes", "venue"}),
        (session_body([people["harmer"]], starts_at=datetime.now(timezone.utc) - timedelta(hours=1)), BadRequest,
         {"starts_at"}),
        (session_body([people["harmer"], stranger]), BadRequest, {"attendees"}),
        (session_body([people["harmer"]]), Conflict, "appropriate_adult_required"),
        (session_body([people["harmer"], people["harmed"], people["appropriate_adult"]]), Conflict, "one_party_only"),
    ]
    for body, error, expected in refusals:
        with pytest.raises(error) as raised:
            workflow.schedule_session(store, case_id, body, COORDINATOR, outbox, vault)
        if error is BadRequest:
            assert set(raised.value.details["fields"]) == expected
        else:
            assert raised.value.details["reason"] == expected
    assert raised.value.details["party_ids"] == [people["harmer"], people["harmed"]]
    assert store.counts() == before and outbox.flushed == []
    ok = workflow.schedule_session(store, case_id, session_body([people["harmer"], people["appropriate_adult"]]),
                                   COORDINATOR, outbox, vault)
    assert ok["status"] == "scheduled"
    with pytest.raises(NotFound):
        workflow.change_session(store, case_id, "ses-" + "1" * 32, {"duration_minutes": 60}, COORDINATOR, outbox,
                                vault)


def test_a_withdrawn_or_erased_attendee_is_named(store, outbox, vault):
    case_id = preparing(store, outbox, vault)
    workflow.choose_intervention(store, case_id, {"process_type": "direct_conference"}, COORDINATOR, outbox)
    people = ids(store, case_id)
    workflow.record_consent(store, case_id, {"participant_id": people["harmer"], "scope": "participation",
                                             "granted": False}, COORDINATOR, outbox)
    workflow.erase_participant(store, case_id, people["supporter"], COORDINATOR, outbox)
    with pytest.raises(Conflict) as raised:
        workflow.schedule_session(store, case_id, session_body([people["harmed"], people["harmer"],
                                                                people["supporter"]]), COORDINATOR, outbox, vault)
    assert (raised.value.details["reason"], raised.value.details["participant_ids"]) == (
        "attendee_unavailable", [people["harmer"], people["supporter"]])


def test_a_session_is_changed_cancelled_and_held_each_with_its_event(store, outbox, vault):
    case_id = preparing(store, outbox, vault)
    workflow.choose_intervention(store, case_id, {"process_type": "direct_conference"}, COORDINATOR, outbox)
    people = ids(store, case_id)
    # (the harmer is under 18: the appropriate adult comes too)
    first = workflow.schedule_session(store, case_id, session_body([people["harmed"], people["harmer"],
                                                                    people["appropriate_adult"], people["supporter"]]),
                                      COORDINATOR, outbox, vault)
    sid = first["session_id"]
    moved_to = (datetime.now(timezone.utc) + timedelta(days=5)).replace(microsecond=0)
    changed = workflow.change_session(store, case_id, sid, {"starts_at": moved_to.isoformat(),
                                                            "attendees": [people["harmed"], people["harmer"],
                                                                          people["appropriate_adult"]]},
                                      COORDINATOR, outbox, vault)
    assert (changed["status"], changed["revision"], changed["starts_at"]) == ("changed", 2, moved_to.isoformat())
    data = events(outbox, "session.changed")[0]["data"]
    assert data["removed_attendee_ids"] == [people["supporter"]] and data["starts_at"] == moved_to.isoformat()
    # notes only: kept, nobody told
    flushed = len(outbox.flushed)
    noted = workflow.change_session(store, case_id, sid, {"notes": "Room 2."}, COORDINATOR, outbox, vault)
    assert noted["notes"] == "Room 2." and noted["revision"] == 2
    assert events(outbox, "session.changed") == [events(outbox, "session.changed")[0]] and \
        len(outbox.flushed) == flushed + 1 and outbox.flushed[-1][2] == []
    cancelled = workflow.cancel_session(store, case_id, sid, {"reason": "venue_unavailable"}, COORDINATOR, outbox,
                                        vault)
    assert (cancelled["status"], cancelled["cancelled"]["reason"]) == ("cancelled", "venue_unavailable")
    assert events(outbox, "session.cancelled")[0]["data"]["reason"] == "venue_unavailable"
    with pytest.raises(Conflict) as raised:
        workflow.cancel_session(store, case_id, sid, {"reason": "again"}, COORDINATOR, outbox, vault)
    assert raised.value.details["reason"] == "session_cancelled"
    # a session that has started is recorded as held
    second = workflow.schedule_session(store, case_id, session_body([people["harmed"], people["harmer"],
                                                                     people["appropriate_adult"]]),
                                       COORDINATOR, outbox, vault)
    case = store.load_case(case_id)
    started = [dict(s, starts_at=s["starts_at"] - timedelta(days=4)) if s["session_id"] == second["session_id"]
               else s for s in case.sessions]
    set_up(store, case_id, sessions=started)
    done = workflow.record_session_held(store, case_id, second["session_id"], {"attended": [people["harmed"]]},
                                        COORDINATOR, outbox, vault)
    assert done["held"]["attended_ids"] == [people["harmed"]]
    assert events(outbox, "session.held")[0]["data"]["attended_ids"] == [people["harmed"]]
    assert "Grangetown" not in repr(outbox.flushed)


def test_session_invitation_releases_the_session_to_those_invited_and_logs_it(store, outbox, vault):
    case_id = preparing(store, outbox, vault)
    workflow.choose_intervention(store, case_id, {"process_type": "shuttle"}, COORDINATOR, outbox)
    people = ids(store, case_id)
    sid = workflow.schedule_session(store, case_id, session_body([people["harmed"], people["interpreter"]]),
                                    COORDINATOR, outbox, vault)["session_id"]
    answer = workflow.get_contact(store, people["interpreter"], "session_invitation", "notifications", vault,
                                  session_id=sid)
    assert answer["granted"] and answer["details"]["email"] == "ieuan@interpreters.example"
    assert answer["details"]["session"]["venue"] == VENUE and answer["details"]["session"]["revision"] == 1
    # the interpreter is no participant_information recipient, and nobody else's session is theirs
    assert workflow.get_contact(store, people["interpreter"], "participant_information", "notifications",
                                vault)["reason"] == "purpose_does_not_cover_role"
    assert workflow.get_contact(store, people["harmer"], "session_invitation", "notifications", vault,
                                session_id=sid) == {"granted": False, "reason": "not_invited", "details": {}}
    assert workflow.get_contact(store, people["harmed"], "session_invitation", "notifications",
                                vault)["reason"] == "unknown_session"
    workflow.record_consent(store, case_id, {"participant_id": people["harmed"], "scope": "participation",
                                             "granted": False}, COORDINATOR, outbox)
    assert workflow.get_contact(store, people["harmed"], "session_invitation", "notifications", vault,
                                session_id=sid)["reason"] == "consent_withdrawn"
    logged = [(a.party_id, a.purpose, a.reason, a.fields_released) for a in store.access_log(case_id)
              if a.purpose == "session_invitation"]
    assert logged[0][:3] == (people["interpreter"], "session_invitation", "granted") and "session" in logged[0][3]
    assert [reason for _, _, reason, _ in logged[1:]] == ["not_invited", "unknown_session", "consent_withdrawn"]


def test_in_a_domestic_abuse_case_no_session_invitation_is_released(store, outbox, vault):
    case_id = preparing(store, outbox, vault, body=full_referral_body(flags=["domestic_abuse"]))
    set_up(store, case_id, supervision={"decision": "approved", "by": "coordinator:c-1"})
    workflow.choose_intervention(store, case_id, {"process_type": "shuttle"}, COORDINATOR, outbox)
    people = ids(store, case_id)
    sid = workflow.schedule_session(store, case_id, session_body([people["harmed"]]), COORDINATOR, outbox,
                                    vault)["session_id"]
    assert events(outbox, "session.scheduled")[0]["data"]["facilitator_led"] is True
    assert workflow.get_contact(store, people["harmed"], "session_invitation", "notifications", vault,
                                session_id=sid)["reason"] == "facilitator_led"
