"""The referrals workflows on the in-memory store: intake and its idempotency, the
lifecycle, consents, erasure, contact details, the listing and the Victims' Code clocks,
with the claims (a case id, a case's next version) lost and won as under concurrency."""
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

from services.referrals import cases, deadlines, residency, workflow
from services.referrals.cases import change_key, next_change
from services.referrals.memory_store import InMemoryReferralsStore
from services.referrals.protection import Vault, load_master_key, new_master_key
from shared.events import new_event
from shared.security.api_keys import Principal
from shared.web import BadRequest, Conflict, Forbidden, NotFound
from tests.factories import days_ago, referral_body

AGENCY = "test-police"
# the referral regions these tests' deployment serves (AMENDS_REGIONS)
SERVED = residency.served_regions("south-wales,gwent,north-wales,dyfed-powys")


class FakeOutbox:
    """Makes real (validated) events and records what each flush would publish."""

    def __init__(self):
        self.flushed = []   # (collection, document id, events)

    def event(self, event_type, subject, data, correlationid=None):
        return new_event(event_type, subject, data, source="/amends/test/referrals", region="test",
                         correlationid=correlationid or subject)

    def flush(self, collection, doc_id, events=None):
        self.flushed.append((collection, doc_id, list(events or [])))
        return len(events or [])

    def events(self, *types):
        """What was published, in order; only the events of `types` when given."""
        return [e for _, _, events in self.flushed for e in events if not types or e["type"] in types]

    def types(self):
        return [e["type"] for e in self.events()]


@pytest.fixture
def store():
    return InMemoryReferralsStore()


@pytest.fixture
def outbox():
    return FakeOutbox()


@pytest.fixture
def vault():
    return Vault(load_master_key(new_master_key()))


def principal(role, subject=None, regions=("south-wales",), national=False, agency=AGENCY):
    return Principal(role=role, agency=agency, key_id=f"key-{role}", subject=subject or f"{role}-1",
                     regions=frozenset(regions), national=national)


REFERRER, COORDINATOR, AUDITOR = principal("referrer"), principal("coordinator"), principal("auditor", national=True)


def refer(store, outbox, vault, body=None, key=None, who=REFERRER):
    status, payload, replayed = workflow.submit_referral(store, body or referral_body(0), who, key, outbox, vault,
                                                         served=SERVED)
    assert status == 201
    return payload["case_id"], replayed


# --- intake -----------------------------------------------------------------------

def test_a_referral_is_stored_sealed_and_announced_from_the_case_document(store, outbox, vault):
    case_id, replayed = refer(store, outbox, vault)
    assert replayed is False
    case = store.load_case(case_id)
    assert (case.status, case.agency, case.region) == ("RECEIVED", AGENCY, "south-wales")
    assert outbox.flushed == [("cases", case_id, case.outbox)] and outbox.types() == ["referral.received"]
    # one key per person and one for the record; nothing personal in the clear
    assert store.counts()["data_keys"] == len(case.party_ids) + 1
    assert "Sian Jones" not in str(case) and "SWP/26/104455" not in str(case)
    assert cases.unseal(store, vault, case.participants[0]["party_id"], case.participants[0]["sealed"])["name"] \
        == "Sian Jones"
    assert case.deadline_notice_at is not None and case.deadline["deadline"] == "victim_told_about_rj"


def test_an_idempotency_key_replays_the_same_case_and_refuses_another_body(store, outbox, vault):
    first, replayed = refer(store, outbox, vault, key="key-1")
    assert replayed is False
    again, replayed = refer(store, outbox, vault, key="key-1")
    assert (again, replayed) == (first, True)
    assert store.counts()["cases"] == 1 and outbox.types() == ["referral.received"]
    with pytest.raises(Conflict):
        refer(store, outbox, vault, body=referral_body(3), key="key-1")
    other_agency = principal("referrer", agency="other-agency")
    theirs, replayed = refer(store, outbox, vault, key="key-1", who=other_agency)
    assert theirs != first and replayed is False


def test_the_loser_of_a_race_for_one_key_answers_with_the_winners_case_and_leaves_no_keys(store, outbox, vault):
    """Two requests with one key both find no case; the winner stores it first."""
    body = referral_body(1)
    real_fingerprint = store.intake_fingerprint
    calls = []

    def winner_stores_first(case_id):
        calls.append(case_id)
        if len(calls) == 1:   # the loser looked before the winner's insert landed
            refer(store, FakeOutbox(), vault, body=body, key="raced")
            return None
        return real_fingerprint(case_id)

    store.intake_fingerprint = winner_stores_first
    case_id, replayed = refer(store, outbox, vault, body=body, key="raced")
    assert replayed is True and store.counts()["cases"] == 1
    assert store.counts()["data_keys"] == len(store.load_case(case_id).party_ids) + 1   # the loser shredded its own
    assert outbox.flushed == []   # the loser announced nothing


def test_a_create_that_finds_the_id_taken_shreds_the_keys_it_made(store, outbox, vault):
    case_id, _ = refer(store, outbox, vault)
    from services.referrals import intake
    referral = intake.parse(referral_body(0), AGENCY, case_id=case_id)
    assert workflow.create_case(store, referral, outbox, vault) is False
    assert store.counts()["data_keys"] == len(store.load_case(case_id).party_ids) + 1
    assert all(store.data_key(p) is None for p in [referral.referrer.party_id])


def test_a_bad_or_out_of_region_referral_stores_nothing(store, outbox, vault):
    with pytest.raises(BadRequest):
        workflow.submit_referral(store, referral_body(0, cjs_stage=12), REFERRER, None, outbox, vault, served=SERVED)
    with pytest.raises(Forbidden):
        workflow.submit_referral(store, referral_body(0, region="gwent"), REFERRER, None, outbox, vault, served=SERVED)
    with pytest.raises(BadRequest):
        workflow.submit_referral(store, referral_body(0), REFERRER, "a b", outbox, vault, served=SERVED)
    assert store.counts() == {"cases": 0, "case_changes": 0, "data_keys": 0, "contact_access_log": 0}


# --- reading ----------------------------------------------------------------------

def test_a_coordinator_sees_personal_data_and_each_read_is_logged(store, outbox, vault):
    case_id, _ = refer(store, outbox, vault)
    view = workflow.case_view(store, case_id, COORDINATOR, vault)
    assert view["participants"][0]["personal_data"]["name"] == "Sian Jones"
    assert view["record"]["crime_reference"] == "SWP/26/104455"
    log = workflow.access_log(store, case_id, COORDINATOR)["entries"]
    assert len(log) == len(store.load_case(case_id).party_ids)
    assert {e["purpose"] for e in log} == {"case_view"} and all(e["granted"] for e in log)
    hidden = workflow.case_view(store, case_id, AUDITOR, vault)
    assert "personal_data" not in hidden["participants"][0] and "record" not in hidden
    assert len(workflow.access_log(store, case_id, COORDINATOR)["entries"]) == len(log)
    with pytest.raises(NotFound):
        workflow.case_view(store, str(uuid.uuid4()), COORDINATOR, vault)
    with pytest.raises(NotFound):
        workflow.case_view(store, "../etc", COORDINATOR, vault)
    assert workflow.case_relation(store, case_id).region == "south-wales"
    assert workflow.case_relation(store, "nope") is None


def test_the_listing_is_narrowed_to_the_callers_reach(store, outbox, vault):
    welsh, _ = refer(store, outbox, vault, body=referral_body(0))
    gwent, _ = refer(store, outbox, vault, body=referral_body(2), who=principal("referrer", regions=("gwent",)))
    theirs, _ = refer(store, outbox, vault, body=referral_body(3), who=principal("referrer", agency="other"))
    workflow.advance_for_event(store, matching_event("facilitator.assigned", gwent, facilitator_id="fac-9"), outbox)

    def listed(who, **args):
        return [item["case_id"] for item in workflow.list_cases(store, args, who, served=SERVED)["items"]]

    assert sorted(listed(REFERRER)) == sorted([welsh, gwent])
    assert listed(principal("coordinator", regions=("gwent",))) == [gwent]
    assert sorted(listed(principal("coordinator", regions=("gwent", "south-wales")))) == sorted([welsh, gwent, theirs])
    assert sorted(listed(AUDITOR)) == sorted([welsh, gwent, theirs])
    assert listed(AUDITOR, region="gwent") == [gwent]
    assert listed(COORDINATOR, region="gwent") == []      # beyond their reach: nothing
    assert listed(principal("facilitator", subject="fac-9")) == [gwent]
    assert listed(principal("facilitator", subject="fac-1")) == []
    assert listed(AUDITOR, status="ASSESSMENT") == [gwent]
    page = workflow.list_cases(store, {"limit": "1", "offset": "1"}, AUDITOR, served=SERVED)
    assert page["total"] == 3 and len(page["items"]) == 1 and page["next_offset"] == 2
    with pytest.raises(BadRequest):
        workflow.list_cases(store, {"limit": "0"}, AUDITOR, served=SERVED)


def test_a_case_shows_what_its_clocks_are_measured_from_and_a_coordinator_can_list_those_without_a_date(
        store, outbox, vault):
    reported_on = days_ago(14)
    reported, _ = refer(store, outbox, vault, body=referral_body(0, crime_reported_on=reported_on))
    unreported, _ = refer(store, outbox, vault, body=referral_body(3))   # no crime_reported_on

    view = workflow.case_view(store, unreported, COORDINATOR, vault)
    assert view["measured_from"] == "referral_received"
    assert view["deadline"]["measured_from"] == "referral_received"
    assert view["record"]["crime_reported_on"] is None   # not the day received, passed off as the report
    assert workflow.case_view(store, reported, AUDITOR, vault)["deadline"]["measured_from"] == "crime_reported"
    assert workflow.case_view(store, reported, COORDINATOR, vault)["record"]["crime_reported_on"] == reported_on

    def listed(**args):
        return {item["case_id"]: item["measured_from"]
                for item in workflow.list_cases(store, args, COORDINATOR, served=SERVED)["items"]}

    assert listed() == {reported: "crime_reported", unreported: "referral_received"}
    assert listed(measured_from="referral_received") == {unreported: "referral_received"}
    assert listed(measured_from="crime_reported") == {reported: "crime_reported"}
    with pytest.raises(BadRequest) as bad:
        workflow.list_cases(store, {"measured_from": "guessed"}, COORDINATOR, served=SERVED)
    assert "measured_from" in bad.value.details["fields"]


# --- changes ----------------------------------------------------------------------

def matching_event(event_type, case_id, **data):
    return {"id": str(uuid.uuid4()), "type": event_type,
            "data": {"case_id": case_id, "assignment_id": f"a-{case_id[:8]}", **data}}


def test_a_transition_is_one_change_with_its_event(store, outbox, vault):
    case_id, _ = refer(store, outbox, vault)
    view = workflow.transition_case(store, case_id, {"to": "TRIAGE"}, COORDINATOR, outbox)
    assert view["status"] == "TRIAGE" and [h["to_status"] for h in view["history"]] == ["TRIAGE"]
    change = store.change(change_key(case_id, 1))
    assert change.state["status"] == "TRIAGE" and change.by == "coordinator:coordinator-1"
    assert outbox.flushed[-1] == ("case_changes", change.change_id, change.outbox)
    assert [e["type"] for e in change.outbox] == ["case.status_changed"]
    with pytest.raises(Conflict) as illegal:
        workflow.transition_case(store, case_id, {"to": "FOLLOW_UP"}, COORDINATOR, outbox)
    assert "FOLLOW_UP" in str(illegal.value) and store.load_case(case_id).version == 1
    with pytest.raises(BadRequest):
        workflow.transition_case(store, case_id, {"to": "CLOSED"}, COORDINATOR, outbox)
    closed = workflow.transition_case(store, case_id, {"to": "CLOSED", "reason": _a_closure_reason()},
                                      COORDINATOR, outbox)
    assert closed["status"] == "CLOSED" and outbox.types()[-2:] == ["case.status_changed", "case.closed"]


def _a_closure_reason():
    from shared.events.vocabulary import CLOSURE_REASONS
    return CLOSURE_REASONS[0]


def test_a_version_taken_by_another_writer_is_decided_again_on_the_new_state(store, outbox, vault):
    """The claim of a version is lost to a concurrent writer: the workflow reloads and
    decides again, so both changes are kept and neither overwrites the other."""
    case_id, _ = refer(store, outbox, vault)
    real_record = store.record_change
    raced = []

    def another_writer_first(case, change):
        if not raced:
            raced.append(True)
            rival = store.load_case(case_id)
            real_record(rival, next_change(rival, {"consents": [{"participant_id": "p-x", "scope": "participation",
                                                                "granted": True}]}, [], "rival"))
        return real_record(case, change)

    store.record_change = another_writer_first
    view = workflow.transition_case(store, case_id, {"to": "TRIAGE"}, COORDINATOR, outbox)
    case = store.load_case(case_id)
    assert view["status"] == "TRIAGE" and case.version == 2
    assert case.status == "TRIAGE" and case.consents[0]["participant_id"] == "p-x"
    assert store.change(change_key(case_id, 1)).by == "rival"


def test_a_case_that_keeps_changing_is_a_conflict(store, outbox, vault, monkeypatch):
    case_id, _ = refer(store, outbox, vault)
    monkeypatch.setattr(workflow, "CONDITIONAL_RETRIES", 3)
    store.record_change = lambda case, change: None   # every version is always taken first
    with pytest.raises(Conflict):
        workflow.transition_case(store, case_id, {"to": "TRIAGE"}, COORDINATOR, outbox)
    with pytest.raises(workflow.KeptChanging):
        workflow.advance_for_event(store, matching_event("case.needs_review", case_id), outbox)


def test_matchings_events_move_the_case_forward_once_and_follow_who_holds_it(store, outbox, vault):
    case_id, _ = refer(store, outbox, vault)
    offered = matching_event("facilitator.assigned", case_id, facilitator_id="fac-1")
    step = workflow.advance_for_event(store, offered, outbox)
    assert step.to_status == "ASSESSMENT"
    case = store.load_case(case_id)
    assert case.offered_to == ["fac-1"] and case.facilitators == ["fac-1"] and case.held_by == []
    flushed = len(outbox.flushed)
    # the same event again (a redelivery): nothing changes, nothing is announced
    assert workflow.advance_for_event(store, offered, outbox) is None
    assert store.load_case(case_id).version == case.version and len(outbox.flushed) == flushed
    accepted = matching_event("assignment.accepted", case_id, facilitator_id="fac-1")
    workflow.advance_for_event(store, accepted, outbox)
    case = store.load_case(case_id)
    assert (case.status, case.held_by, case.offered_to) == ("ALLOCATED", ["fac-1"], [])
    # a late event for an earlier stage changes nothing
    assert workflow.advance_for_event(store, matching_event("case.needs_review", case_id), outbox) is None
    with pytest.raises(LookupError):
        workflow.advance_for_event(store, matching_event("case.needs_review", str(uuid.uuid4())), outbox)


def test_the_victim_being_told_is_noted_once(store, outbox, vault):
    case_id, _ = refer(store, outbox, vault)
    told = {"id": "n-1", "type": "notification.sent", "data": {"case_id": case_id, "recipient_role": "harmed"}}
    assert workflow.note_victim_told(store, told, outbox) is True
    at = store.load_case(case_id).victim_told_at
    assert at is not None
    assert workflow.note_victim_told(store, dict(told, id="n-2"), outbox) is False
    assert store.load_case(case_id).victim_told_at == at and store.load_case(case_id).version == 1
    other = {"id": "n-3", "type": "notification.sent", "data": {"case_id": case_id, "recipient_role": "harmer"}}
    assert workflow.note_victim_told(store, other, outbox) is False


def test_consent_is_recorded_and_a_harmed_persons_consent_meets_the_clock(store, outbox, vault):
    case_id, _ = refer(store, outbox, vault)
    harmed = store.load_case(case_id).participants[0]["party_id"]
    answer = workflow.record_consent(store, case_id, {"participant_id": harmed, "scope": "participation",
                                                      "granted": True}, COORDINATOR, outbox)
    assert answer["granted"] is True and answer["participant_id"] == harmed
    case = store.load_case(case_id)
    assert case.consents[0]["by"] == "coordinator:coordinator-1" and case.victim_told_at is not None
    assert outbox.types()[-1] == "consent.recorded"
    with pytest.raises(BadRequest):
        workflow.record_consent(store, case_id, {"participant_id": case.referrer["party_id"].replace("ref", "p"),
                                                 "scope": "participation", "granted": True}, COORDINATOR, outbox)


def test_erasure_shreds_the_key_once_and_keeps_the_case(store, outbox, vault):
    case_id, _ = refer(store, outbox, vault)
    harmed = store.load_case(case_id).participants[0]["party_id"]
    first = workflow.erase_participant(store, case_id, harmed, COORDINATOR, outbox)
    assert first["already_erased"] is False and store.data_key(harmed) is None
    case = store.load_case(case_id)
    assert case.participants[0]["sealed"] is None and case.participants[0]["role"] == "harmed"
    assert outbox.types()[-1] == "participant.erased"
    again = workflow.erase_participant(store, case_id, harmed, COORDINATOR, outbox)
    assert again["already_erased"] is True and again["erased_at"] == first["erased_at"]
    assert outbox.types().count("participant.erased") == 1
    with pytest.raises(Conflict):
        workflow.record_consent(store, case_id, {"participant_id": harmed, "scope": "participation",
                                                 "granted": True}, COORDINATOR, outbox)
    assert workflow.get_contact(store, harmed, "participant_information", "notifications", vault)["reason"] == \
        "personal_data_erased"
    with pytest.raises(NotFound):
        workflow.erase_participant(store, case_id, "p-" + "0" * 32, COORDINATOR, outbox)


# --- contact details --------------------------------------------------------------

def test_contact_details_go_to_a_purpose_that_covers_the_person_and_every_call_is_logged(store, outbox, vault):
    case_id, _ = refer(store, outbox, vault)
    case = store.load_case(case_id)
    referrer = case.referrer["party_id"]
    granted = workflow.get_contact(store, referrer, "referrer_update", "notifications", vault, "corr-1")
    assert granted["granted"] is True and granted["details"]["email"] == "dafydd.morgan@police.example"
    refusals = [(case.participants[0]["party_id"], "referrer_update", "purpose_does_not_cover_role"),
                (referrer, "marketing", "unknown_purpose"),
                ("p-" + "f" * 32, "participant_information", "unknown_party"),
                ({"$ne": None}, "participant_information", "unknown_party")]
    for party_id, purpose, reason in refusals:
        assert workflow.get_contact(store, party_id, purpose, "notifications", vault) == {
            "granted": False, "reason": reason, "details": {}}
    log = store.all_accesses()
    assert [a.reason for a in log] == ["granted"] + [r for _, _, r in refusals]
    assert log[0].case_id == case_id and log[0].correlationid == "corr-1" and log[3].case_id is None
    assert store.accesses_of_party(referrer)[0].fields_released == sorted(granted["details"])


# --- the Victims' Code clocks -----------------------------------------------------

def a_fortnight_ago():
    """A report whose five working days have run out, whenever the test runs: the longest
    run of five (from Christmas Eve, over the bank holidays) takes twelve days."""
    return days_ago(14)


RJ, SUPPORT = "victim_told_about_rj", "support_referral"


def test_the_clock_announces_due_and_missed_once_each(store, outbox, vault):
    reported = a_fortnight_ago()
    late, _ = refer(store, outbox, vault, body=referral_body(0, crime_reported_on=reported))
    enhanced_today, _ = refer(store, outbox, vault, body=referral_body(2),
                              who=principal("referrer", regions=("gwent",)))
    told, _ = refer(store, outbox, vault, body=referral_body(0, crime_reported_on=reported))
    harmed = store.load_case(told).participants[0]["party_id"]
    workflow.record_consent(store, told, {"participant_id": harmed, "scope": "participation", "granted": True},
                            COORDINATOR, outbox)
    emitted = workflow.announce_deadlines(store, outbox)
    assert [e for e in emitted if e[2] == RJ] == [("case.deadline_due", late, RJ), ("case.deadline_missed", late, RJ)]
    assert workflow.announce_deadlines(store, outbox) == []
    events = [e for _, _, es in outbox.flushed for e in es
              if e["type"].startswith("case.deadline") and e["data"]["deadline"] == RJ]
    assert [(e["type"], e["subject"]) for e in events] == [("case.deadline_due", late),
                                                            ("case.deadline_missed", late)]
    clock = deadlines.victim_told_about_rj(date.fromisoformat(reported), False)
    assert events[0]["data"]["due_at"] == clock.due_at.isoformat()
    assert events[0]["data"]["measured_from"] == "crime_reported"
    case = store.load_case(late)
    assert case.deadline_due_sent and case.deadline_missed_sent
    assert not store.load_case(enhanced_today).deadline_due_sent
    # a week on, the enhanced-rights case's clocks have run too (one working day takes five at most)
    later = datetime.now(timezone.utc) + timedelta(days=7)
    assert workflow.announce_deadlines(store, outbox, now=later) == [
        ("case.deadline_due", enhanced_today, RJ), ("case.deadline_missed", enhanced_today, RJ),
        ("case.deadline_due", enhanced_today, SUPPORT), ("case.deadline_missed", enhanced_today, SUPPORT)]


def test_a_closed_case_owes_no_clock(store, outbox, vault):
    reported = a_fortnight_ago()
    case_id, _ = refer(store, outbox, vault, body=referral_body(0, crime_reported_on=reported))
    workflow.transition_case(store, case_id, {"to": "CLOSED", "reason": _a_closure_reason()}, COORDINATOR, outbox)
    assert workflow.announce_deadlines(store, outbox) == []
    last_day = date.fromisoformat(store.load_case(case_id).deadline["last_day"])
    assert last_day == deadlines.add_working_days(date.fromisoformat(reported), 5) < date.today()
    view = workflow.case_view(store, case_id, AUDITOR, vault)
    assert view["deadline"]["state"] == view["support_referral"]["state"] == "stopped"


# --- the support referral clock ---------------------------------------------------

def support_referral(store, case_id, body, who=COORDINATOR, outbox=None):
    return workflow.record_support_referral(store, case_id, body, who, outbox or FakeOutbox())


def test_every_case_has_a_support_referral_clock_of_two_working_days(store, outbox, vault):
    reported = days_ago(14)   # a fortnight: both clocks have run out, whatever the day
    case_id, _ = refer(store, outbox, vault, body=referral_body(0, crime_reported_on=reported))
    case = store.load_case(case_id)
    # the two working days after the report (their arithmetic: tests/unit/test_deadlines.py)
    last_day = deadlines.add_working_days(date.fromisoformat(reported), 2)
    assert case.support_deadline == {"deadline": SUPPORT, "last_day": last_day.isoformat(), "enhanced_rights": False}
    assert case.support_due_at == deadlines.end_of_day(last_day)
    view = workflow.case_view(store, case_id, COORDINATOR, vault)
    assert view["support_referral"]["state"] == "missed" and view["support_referral"]["referrals"] == []
    assert view["support_referral"]["measured_from"] == "crime_reported"
    assert view["deadline"]["state"] == "missed" and view["deadline"]["deadline"] == RJ
    fresh, _ = refer(store, outbox, vault, body=referral_body(3))
    assert workflow.case_view(store, fresh, COORDINATOR, vault)["support_referral"]["state"] == "running"


def test_the_support_clock_is_announced_until_a_referral_or_a_refusal_is_recorded(store, outbox, vault):
    reported = days_ago(14)
    referred, _ = refer(store, outbox, vault, body=referral_body(0, crime_reported_on=reported))
    declined, _ = refer(store, outbox, vault, body=referral_body(0, crime_reported_on=reported))
    owed, _ = refer(store, outbox, vault, body=referral_body(0, crime_reported_on=reported))
    for case_id, body in ((referred, {"outcome": "referred", "service": "victim_support"}),
                          (declined, {"outcome": "declined"})):
        harmed = store.load_case(case_id).participants[0]["party_id"]
        answer = support_referral(store, case_id, {"participant_id": harmed, **body}, outbox=outbox)
        assert answer["outcome"] == body["outcome"] and answer["support_referral"]["state"] == "met_late"
    assert outbox.types()[-2:] == ["support.referral_recorded"] * 2
    recorded = [e for _, _, es in outbox.flushed for e in es if e["type"] == "support.referral_recorded"]
    assert recorded[0]["data"] == {"case_id": referred, "participant_id": store.load_case(referred).participants[0][
        "party_id"], "outcome": "referred", "service": "victim_support"}
    assert recorded[1]["data"]["service"] is None
    emitted = [e for e in workflow.announce_deadlines(store, outbox) if e[2] == SUPPORT]
    assert emitted == [("case.deadline_due", owed, SUPPORT), ("case.deadline_missed", owed, SUPPORT)]
    missed = [e for _, _, es in outbox.flushed for e in es
              if e["type"] == "case.deadline_missed" and e["data"]["deadline"] == SUPPORT]
    due_at = deadlines.support_referral(date.fromisoformat(reported), False).due_at.isoformat()
    assert missed[0]["data"] == {"case_id": owed, "deadline": SUPPORT, "due_at": due_at,
                                 "enhanced_rights": False, "measured_from": "crime_reported"}
    case = store.load_case(referred)
    assert case.support_settled_at is not None and case.support_referrals[0]["by"] == "coordinator:coordinator-1"


def test_the_support_clock_waits_for_every_harmed_person_and_an_erasure_stops_it(store, outbox, vault):
    body = referral_body(0, crime_reported_on=days_ago(14))
    body["participants"].append(dict(body["participants"][0], name="Second Harmed"))
    case_id, _ = refer(store, outbox, vault, body=body)
    first, _harmer, second = (p["party_id"] for p in store.load_case(case_id).participants)
    support_referral(store, case_id, {"participant_id": first, "outcome": "referred", "service": "victim_support"})
    assert store.load_case(case_id).support_settled_at is None   # the second is still owed one
    assert [e[1] for e in workflow.announce_deadlines(store, outbox) if e[2] == SUPPORT] == [case_id, case_id]
    workflow.erase_participant(store, case_id, second, COORDINATOR, outbox)
    case = store.load_case(case_id)
    assert case.support_settled_at is not None
    assert workflow.case_view(store, case_id, COORDINATOR, vault)["support_referral"]["state"] == "met_late"
    # the only harmed person erased before anything was recorded: stopped, and never announced
    alone, _ = refer(store, outbox, vault, body=referral_body(0, crime_reported_on=days_ago(14)))
    harmed = store.load_case(alone).participants[0]["party_id"]
    workflow.erase_participant(store, alone, harmed, COORDINATOR, outbox)
    assert [e for e in workflow.announce_deadlines(store, outbox) if e[1] == alone and e[2] == SUPPORT] == []
    assert workflow.case_view(store, alone, COORDINATOR, vault)["support_referral"]["state"] == "stopped"


def test_a_support_referral_that_cannot_be_recorded_is_refused_naming_why(store, outbox, vault):
    case_id, _ = refer(store, outbox, vault)
    harmed, harmer = (p["party_id"] for p in store.load_case(case_id).participants)
    bad = [({"participant_id": harmed, "outcome": "referred"}, "service"),          # referred where?
           ({"participant_id": harmed, "outcome": "maybe", "service": "x"}, "outcome"),
           ({"participant_id": harmed, "outcome": "referred", "service": "Victim Support"}, "service"),
           ({"participant_id": "someone", "outcome": "declined"}, "participant_id"),
           ({"outcome": "declined"}, "participant_id"),
           ({"participant_id": harmer, "outcome": "referred", "service": "victim_support"}, "participant_id")]
    for body, field in bad:
        with pytest.raises(BadRequest) as refused:
            support_referral(store, case_id, body)
        assert field in refused.value.details["fields"], (body, refused.value.details)
    with pytest.raises(NotFound):
        support_referral(store, str(uuid.uuid4()), {"participant_id": harmed, "outcome": "declined"})
    workflow.erase_participant(store, case_id, harmed, COORDINATOR, outbox)
    with pytest.raises(Conflict):
        support_referral(store, case_id, {"participant_id": harmed, "outcome": "declined"})
    other, _ = refer(store, outbox, vault)
    workflow.transition_case(store, other, {"to": "CLOSED", "reason": _a_closure_reason()}, COORDINATOR, outbox)
    with pytest.raises(Conflict):
        support_referral(store, other, {"participant_id": store.load_case(other).participants[0]["party_id"],
                                        "outcome": "declined"})
    assert store.load_case(case_id).support_referrals == [] and store.load_case(other).support_referrals == []
