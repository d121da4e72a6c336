"""The intervention and its sessions: which process, who attends, when, where (pure rules)."""
from datetime import datetime, timedelta, timezone

import pytest

from services.referrals import interventions
from services.referrals.cases import Case
from services.referrals.interventions import Invalid, Refused

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
LATER = NOW + timedelta(days=7)
HARMED, HARMER, SUPPORTER, ADULT, INTERPRETER = (f"p-{c * 32}" for c in "abcde")


def person(party_id, role, age_band="25_34"):
    return {"party_id": party_id, "role": role, "attributes": {"age_band": age_band, "language": "en",
                                                                 "access_needs": []},
            "contact_safe": True, "sealed": "sealed-data"}


def case(status="INTERVENTION", process="direct_conference", decision="direct", flags=(), offence="burglary",
         people=None, sessions=(), consents=(), assessed=("direct_conference", "shuttle", "letter_exchange"),
         held_by=("fac-1",)):
    return Case(
        case_id="c-1", status=status, agency="a", region="r",
        attributes={"flags": list(flags), "offence_category": offence}, referrer={"party_id": "ref-1"},
        participants=people if people is not None else [person(HARMED, "harmed"), person(HARMER, "harmer"),
                                                         person(SUPPORTER, "supporter"),
                                                         person(INTERPRETER, "interpreter")],
        assessment={"decision": "suitable", "process_types": list(assessed)},
        safety={"decision": decision} if decision else {},
        intervention={"process_type": process} if process else {},
        sessions=list(sessions), consents=list(consents), held_by=list(held_by))


def body(attendees=(HARMED, HARMER), starts_at=LATER, **changes):
    data = {"starts_at": starts_at, "duration_minutes": 90, "venue": {"kind": "rj_service", "name": "Cardiff RJ hub",
                                                                      "address": "1 High Street, Cardiff"},
            "attendees": list(attendees)}
    data.update(changes)
    return data


def refused(call):
    with pytest.raises(Refused) as raised:
        call()
    return raised.value


# --- choosing the intervention ---------------------------------------------------

def test_a_process_is_chosen_only_if_assessed_possible_and_the_gate_allows_it():
    preparing = case(status="PREPARATION", process=None)
    assert interventions.choose(preparing, "shuttle") is True
    assert refused(lambda: interventions.choose(preparing, "group_conference")).reason == "process_not_assessed"
    assert refused(lambda: interventions.choose(case(status="PREPARATION", process=None, decision=None),
                                                "shuttle")).reason == "safety_decision_missing"
    indirect = case(status="PREPARATION", process=None, decision="indirect_only")
    assert refused(lambda: interventions.choose(indirect, "direct_conference")).reason == "indirect_only"
    assert interventions.choose(indirect, "letter_exchange") is True
    supervised = case(status="PREPARATION", process=None, flags=["domestic_abuse"])
    assert refused(lambda: interventions.choose(supervised, "shuttle")).reason == "supervision_signoff_missing"


@pytest.mark.parametrize("status", ["ALLOCATED", "ON_HOLD", "FOLLOW_UP", "CLOSED"])
def test_an_intervention_is_chosen_in_preparation_or_intervention_only(status):
    answer = refused(lambda: interventions.choose(case(status=status, process=None), "shuttle"))
    assert (answer.reason, answer.details) == ("wrong_status", {"status": status})


def test_choosing_the_same_again_changes_nothing_and_a_change_waits_for_its_sessions_to_be_cancelled():
    chosen = case(process="shuttle")
    assert interventions.choose(chosen, "shuttle") is False
    assert interventions.choose(chosen, "letter_exchange") is True
    arranged = case(process="shuttle", sessions=[{"session_id": "ses-1", "status": "scheduled"},
                                                  {"session_id": "ses-2", "status": "cancelled"}])
    answer = refused(lambda: interventions.choose(arranged, "letter_exchange"))
    assert (answer.reason, answer.details) == ("sessions_arranged", {"session_ids": ["ses-1"]})


def test_a_youth_panel_is_for_a_harmer_under_18():
    adults = case(status="PREPARATION", process=None, assessed=["youth_panel"])
    assert refused(lambda: interventions.choose(adults, "youth_panel")).reason == "youth_panel_needs_young_harmer"
    young = case(status="PREPARATION", process=None, assessed=["youth_panel"],
                 people=[person(HARMED, "harmed"), person(HARMER, "harmer", "under_18")])
    assert interventions.choose(young, "youth_panel") is True


# --- who attends -------------------------------------------------------------------

def test_a_conference_includes_both_parties():
    answer = refused(lambda: interventions.check_attendees(case(), "direct_conference", [HARMED, SUPPORTER]))
    assert (answer.reason, answer.details) == ("both_parties_required", {"missing_roles": ["harmer"]})
    interventions.check_attendees(case(), "group_conference", [HARMED, HARMER, SUPPORTER])


def test_a_shuttle_session_meets_exactly_one_party_with_those_who_help_them():
    interventions.check_attendees(case(), "shuttle", [HARMED, SUPPORTER, INTERPRETER])
    both = refused(lambda: interventions.check_attendees(case(), "shuttle", [HARMED, HARMER]))
    assert (both.reason, both.details) == ("one_party_only", {"party_ids": [HARMED, HARMER]})
    assert refused(lambda: interventions.check_attendees(case(), "letter_exchange", [SUPPORTER])).reason == \
        "one_party_only"


def test_a_youth_panel_session_includes_the_harmer():
    assert refused(lambda: interventions.check_attendees(case(), "youth_panel", [HARMED])).reason == "harmer_required"
    interventions.check_attendees(case(), "youth_panel", [HARMER])


def test_ids_not_on_the_case_are_a_bad_request_naming_them():
    with pytest.raises(Invalid) as raised:
        interventions.check_attendees(case(), "shuttle", [HARMED, "p-" + "f" * 32])
    assert "p-" + "f" * 32 in raised.value.fields["attendees"][0]


def test_nobody_withdrawn_or_erased_can_be_invited_and_each_is_named():
    people = [person(HARMED, "harmed"), person(HARMER, "harmer"), dict(person(SUPPORTER, "supporter"), sealed=None)]
    withdrawn = [{"participant_id": HARMER, "scope": "participation", "item": None, "with_role": None,
                  "granted": True},
                 {"participant_id": HARMER, "scope": "participation", "item": None, "with_role": None,
                  "granted": False}]
    answer = refused(lambda: interventions.check_attendees(case(people=people, consents=withdrawn),
                                                           "direct_conference", [HARMED, HARMER, SUPPORTER]))
    assert (answer.reason, answer.details) == ("attendee_unavailable", {"participant_ids": [HARMER, SUPPORTER]})
    # consent given again: they may be invited
    again = withdrawn + [dict(withdrawn[0])]
    interventions.check_attendees(case(people=people[:2], consents=again), "direct_conference", [HARMED, HARMER])


def test_a_party_under_18_attends_with_the_appropriate_adult_when_the_case_has_one():
    people = [person(HARMED, "harmed"), person(HARMER, "harmer", "under_18"), person(ADULT, "appropriate_adult")]
    answer = refused(lambda: interventions.check_attendees(case(people=people), "shuttle", [HARMER]))
    assert (answer.reason, answer.details) == ("appropriate_adult_required", {"participant_ids": [HARMER]})
    interventions.check_attendees(case(people=people), "shuttle", [HARMER, ADULT])
    interventions.check_attendees(case(people=people), "shuttle", [HARMED])   # the adult party needs none
    without = [p for p in people if p["role"] != "appropriate_adult"]
    interventions.check_attendees(case(people=without), "shuttle", [HARMER])  # the case has none


# --- scheduling ----------------------------------------------------------------------

def test_a_session_needs_a_chosen_intervention_still_allowed_by_the_gate():
    assert refused(lambda: interventions.schedule(case(process=None), body(), "x", NOW)).reason == \
        "intervention_missing"
    assert refused(lambda: interventions.schedule(case(status="FOLLOW_UP"), body(), "x", NOW)).reason == \
        "wrong_status"
    # the safety decision moved on after the conference was chosen
    assert refused(lambda: interventions.schedule(case(decision="indirect_only"), body(), "x", NOW)).reason == \
        "indirect_only"
    assert refused(lambda: interventions.schedule(case(decision="stop"), body(), "x", NOW)).reason == "safety_stop"


def test_a_session_starts_in_the_future_within_a_year():
    for when in (NOW, NOW - timedelta(minutes=1), NOW + timedelta(days=400)):
        with pytest.raises(Invalid) as raised:
            interventions.schedule(case(), body(starts_at=when), "x", NOW)
        assert list(raised.value.fields) == ["starts_at"]


def test_a_scheduled_session_is_recorded_and_its_event_has_no_venue_name_or_address():
    session = interventions.schedule(case(), body(starts_at=LATER.replace(microsecond=123456)), "coordinator:c-1",
                                     NOW)
    assert interventions.SESSION_ID.match(session["session_id"])
    assert (session["status"], session["revision"], session["process_type"]) == ("scheduled", 1, "direct_conference")
    assert session["starts_at"] == LATER and session["venue"]["name"] == "Cardiff RJ hub"
    data = interventions.event_data(case(), session)
    assert data == {"case_id": "c-1", "session_id": session["session_id"], "revision": 1,
                    "process_type": "direct_conference", "starts_at": LATER.isoformat(), "duration_minutes": 90,
                    "venue_kind": "rj_service", "attendee_ids": [HARMED, HARMER], "facilitator_led": False,
                    "facilitator_ids": ["fac-1"]}
    assert "Cardiff" not in repr(data) and "High Street" not in repr(data)
    led = case(flags=["domestic_abuse"], process="shuttle")
    assert interventions.event_data(led, session)["facilitator_led"] is True


def test_a_case_has_a_bounded_number_of_sessions():
    full = case(sessions=[{"session_id": f"ses-{i}", "status": "held"} for i in range(interventions.MAX_SESSIONS)])
    assert refused(lambda: interventions.schedule(full, body(), "x", NOW)).reason == "too_many_sessions"


def test_a_remote_venue_has_no_address_and_text_is_one_clean_line():
    with pytest.raises(Invalid) as raised:
        interventions.load(interventions.SessionSchema, {
            "starts_at": LATER.isoformat(), "duration_minutes": 60, "attendees": [HARMED],
            "venue": {"kind": "remote", "name": "Video call", "address": "somewhere"}})
    assert raised.value.fields == {"venue": {"address": [raised.value.fields["venue"]["address"][0]]}}
    with pytest.raises(Invalid) as raised:
        interventions.load(interventions.SessionSchema, {
            "starts_at": "2026-12-08T10:00:00", "duration_minutes": 14, "attendees": [HARMED, HARMED],
            "venue": {"kind": "castle", "name": "A\nB"}})
    assert set(raised.value.fields) == {"starts_at", "duration_minutes", "attendees", "venue"}
    assert set(raised.value.fields["venue"]) == {"kind", "name"}


# --- changing, cancelling, holding ----------------------------------------------------

def scheduled(**changes):
    session = interventions.schedule(case(), body(attendees=(HARMED, HARMER, SUPPORTER)), "x", NOW)
    session.update(changes)
    return session


def test_a_change_of_time_venue_or_attendees_is_a_new_revision_naming_who_was_taken_off():
    session = scheduled()
    changed, told, removed = interventions.change(case(), session, {"attendees": [HARMED, HARMER],
                                                                    "starts_at": LATER + timedelta(hours=2)}, NOW)
    assert told and removed == [SUPPORTER]
    assert (changed["status"], changed["revision"], changed["removed_ids"]) == ("changed", 2, [SUPPORTER])
    assert changed["starts_at"] == LATER + timedelta(hours=2)
    back, told, removed = interventions.change(case(), changed, {"attendees": [HARMED, HARMER, SUPPORTER]}, NOW)
    assert told and removed == [] and back["removed_ids"] == [] and back["revision"] == 3


def test_notes_alone_or_the_same_values_tell_nobody():
    session = scheduled()
    same, told, _ = interventions.change(case(), session, {"duration_minutes": 90}, NOW)
    assert same is None and not told
    noted, told, _ = interventions.change(case(), session, {"notes": "x"}, NOW, notes="sealed-notes")
    assert not told and noted["notes"] == "sealed-notes" and noted["revision"] == 1


def test_a_change_is_checked_as_a_new_invitation():
    session = scheduled()
    assert refused(lambda: interventions.change(case(), session, {"attendees": [HARMED]}, NOW)).reason == \
        "both_parties_required"
    with pytest.raises(Invalid):
        interventions.change(case(), session, {"starts_at": NOW - timedelta(hours=1)}, NOW)
    assert refused(lambda: interventions.change(case(), session, {"duration_minutes": 60},
                                                LATER + timedelta(minutes=1))).reason == "session_started"
    cancelled = interventions.cancel(session, "venue_unavailable", "x", NOW)
    assert refused(lambda: interventions.change(case(), cancelled, {"duration_minutes": 60}, NOW)).reason == \
        "session_cancelled"


def test_cancelling_and_holding_are_final_and_a_session_is_held_only_once_started():
    session = scheduled()
    cancelled = interventions.cancel(session, "venue_unavailable", "x", NOW)
    assert (cancelled["status"], cancelled["revision"], cancelled["cancelled"]["reason"]) == (
        "cancelled", 2, "venue_unavailable")
    assert refused(lambda: interventions.cancel(cancelled, "again", "x", NOW)).reason == "session_cancelled"
    assert refused(lambda: interventions.held(session, [HARMED], "x", NOW)).reason == "session_not_started"
    with pytest.raises(Invalid) as raised:
        interventions.held(session, [HARMED, ADULT], "x", LATER)
    assert ADULT in raised.value.fields["attended"][0]
    done = interventions.held(session, [HARMED, HARMER], "x", LATER)
    assert (done["status"], done["held"]["attended_ids"]) == ("held", [HARMED, HARMER])
    assert refused(lambda: interventions.held(done, [HARMED], "x", LATER)).reason == "session_held"


# --- what an invitation may release --------------------------------------------------

def test_an_invitation_releases_the_venue_to_attendees_only_and_nothing_in_facilitator_led_cases():
    session = scheduled()
    moved, _, _ = interventions.change(case(), session, {"attendees": [HARMED, HARMER]}, NOW)
    on = case(sessions=[moved])
    refusal, released = interventions.invitation(on, HARMED, moved["session_id"])
    assert refusal is None and released["venue"] == {"kind": "rj_service", "name": "Cardiff RJ hub",
                                                     "address": "1 High Street, Cardiff"}
    assert (released["revision"], released["status"], released["attending"]) == (2, "changed", True)
    refusal, released = interventions.invitation(on, SUPPORTER, moved["session_id"])
    assert refusal is None and released["attending"] is False and "venue" not in released
    assert interventions.invitation(on, INTERPRETER, moved["session_id"]) == ("not_invited", None)
    assert interventions.invitation(on, HARMED, "ses-" + "0" * 32) == ("unknown_session", None)
    assert interventions.invitation(on, HARMED, None) == ("unknown_session", None)
    led = case(flags=["sexual_offence"], sessions=[moved])
    assert interventions.invitation(led, HARMED, moved["session_id"]) == ("facilitator_led", None)


def test_the_view_shows_the_venue_and_notes_only_to_those_who_may_see_personal_data():
    session = scheduled()
    hidden = interventions.session_view(session)
    assert hidden["venue"] == {"kind": "rj_service"} and "notes" not in hidden
    shown = interventions.session_view(session, operational=True, notes="Bring the letter.")
    assert shown["venue"]["address"] == "1 High Street, Cardiff" and shown["notes"] == "Bring the letter."
