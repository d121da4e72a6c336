"""The intervention and its sessions through the referrals HTTP API, on the real broker and
FerretDB: the safety gate, each 400 (fields named, nothing stored), who may attend, and
events that carry ids and codes only (no venue name or address, no personal data)."""
import json
from datetime import datetime, timedelta, timezone

from services.referrals import cases
from tests.factories import full_referral_body, referral_body
from tests.integration.test_referrals_api import api, hold, matching_event  # noqa: F401  (the fixture)
from tests.integration.test_referrals_casework import FACTORS
from tests.support import publish_event, wait_until

VENUE = {"kind": "prison", "name": "HMP Caerdydd visits hall", "address": "Knox Road, Cardiff CF24 0UG"}
PERSONAL = ("Gareth", "Tomos Rees", "Carys Rees", "Ieuan Ifans", "Nia Hughes", "gareth@shop.example",
            "ieuan@interpreters.example", "SWP/26/104981")
SESSION_EVENTS = ("session.scheduled", "session.changed", "session.cancelled", "session.held")


def in_preparation(api, body=None, process_types=("direct_conference", "shuttle", "letter_exchange")):
    """A case matching found suitable for `process_types`, held by the test facilitator and
    moved on to PREPARATION: through matching's events and the API."""
    case_id = api.refer(body or full_referral_body())
    publish_event(api.config["AMQP_URI"], matching_event("case.assessed", case_id,
                                                         process_types=list(process_types)))
    wait_until(lambda: api.store.load_case(case_id).assessment.get("process_types") == list(process_types))
    hold(api, case_id, facilitator_id="fac-test")
    wait_until(lambda: api.store.load_case(case_id).status == "ALLOCATED")
    assert api.call("POST", f"/v1/cases/{case_id}/transitions", "facilitator",
                    json={"to": "PREPARATION"}).status_code == 200
    return case_id


def decide_safety(api, case_id, decision, supervision=None, key="facilitator"):
    """The facilitator's safety decision through its endpoint, once the risk has been assessed
    with each party (the first time), and a supervisor's sign-off of it when asked for. (`key`:
    whose key the caseworker's calls go with; a coordinator's needs no facilitator on the case.)"""
    case = api.store.load_case(case_id)
    assessed = {record["participant_id"] for record in case.risk_assessments}
    for party in case.participants:
        if party["role"] in ("harmed", "harmer") and party["party_id"] not in assessed:
            answer = api.call("POST", f"/v1/cases/{case_id}/risk-assessments", key,
                              json={"participant_id": party["party_id"], "factors": FACTORS})
            assert answer.status_code == 201, answer.text
    decided = api.call("POST", f"/v1/cases/{case_id}/safety-decision", key,
                       json={"decision": decision, "reasons": ["test"]})
    assert decided.status_code == 200, decided.text
    if supervision:
        signed = api.call("POST", f"/v1/cases/{case_id}/supervision", json={"decision": supervision})
        assert signed.status_code == 200, signed.text


def people(api, case_id):
    found = {}
    for p in api.store.load_case(case_id).participants:
        found.setdefault(p["role"], p["party_id"])
    return found


def session(attendees, days=4, **changes):
    body = {"starts_at": (datetime.now(timezone.utc) + timedelta(days=days)).replace(microsecond=0).isoformat(),
            "duration_minutes": 90, "venue": dict(VENUE), "attendees": list(attendees)}
    body.update(changes)
    return body


def choose(api, case_id, process_type, key="facilitator"):
    return api.call("POST", f"/v1/cases/{case_id}/intervention", key, json={"process_type": process_type})


def test_the_gate_refuses_before_a_safety_decision_and_a_meeting_on_indirect_only(api):
    case_id = in_preparation(api)
    before = api.counts()
    early = choose(api, case_id, "shuttle")
    assert early.status_code == 409 and early.json()["reason"] == "safety_decision_missing", early.text
    decide_safety(api, case_id, "indirect_only")
    before = api.counts()
    meeting = choose(api, case_id, "direct_conference")
    assert meeting.status_code == 409 and meeting.json()["reason"] == "indirect_only", meeting.text
    unassessed = choose(api, case_id, "group_conference")
    assert unassessed.status_code == 409 and unassessed.json()["reason"] == "process_not_assessed"
    assert unassessed.json()["assessed"] == ["direct_conference", "shuttle", "letter_exchange"]
    bad = choose(api, case_id, "séance")
    assert bad.status_code == 400 and set(bad.json()["fields"]) == {"process_type"}
    assert api.counts() == before and api.store.load_case(case_id).status == "PREPARATION"
    # the referrer and the auditor may not; a facilitator who does not hold the case does not see it
    assert choose(api, case_id, "shuttle", "referrer").status_code == 403
    assert choose(api, case_id, "shuttle", "auditor").status_code == 403
    chosen = choose(api, case_id, "shuttle")
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["status"] == "INTERVENTION" and chosen.json()["intervention"]["process_type"] == "shuttle"
    published = wait_until(lambda: api.events("intervention.chosen"))
    assert published[0]["data"] == {"case_id": case_id, "process_type": "shuttle"}
    assert [e["data"]["to_status"] for e in api.events("case.status_changed")][-1] == "INTERVENTION"
    # a youth offender panel would be for this harmer under 18, but the assessment did not find it possible
    assert choose(api, case_id, "youth_panel").json()["reason"] == "process_not_assessed"


def test_every_bad_session_request_is_a_400_naming_its_fields_and_stores_nothing(api):
    case_id = in_preparation(api)
    decide_safety(api, case_id, "direct")
    who = people(api, case_id)
    path = f"/v1/cases/{case_id}/sessions"
    # no intervention yet
    none_yet = api.call("POST", path, json=session([who["harmed"]]))
    assert none_yet.status_code == 409 and none_yet.json()["reason"] == "intervention_missing"
    assert choose(api, case_id, "shuttle").status_code == 200
    before = api.counts()
    past = (datetime.now(timezone.utc) - timedelta(hours=2)).isoformat()
    bad = [
        ({}, {"starts_at", "duration_minutes", "venue", "attendees"}),
        (session([who["harmed"]], starts_at="2026-12-08T10:00:00"), {"starts_at"}),   # no offset
        (session([who["harmed"]], starts_at=past), {"starts_at"}),
        (session([who["harmed"]], duration_minutes=10), {"duration_minutes"}),
        (session([who["harmed"]], duration_minutes=481), {"duration_minutes"}),
        (session([who["harmed"]], duration_minutes="90"), {"duration_minutes"}),
        (session([who["harmed"]], venue={"kind": "remote", "name": "Video call", "address": "1 Road"}), {"venue"}),
        (session([who["harmed"]], venue={"kind": "pub", "name": "x" * 201}), {"venue"}),
        (session([who["harmed"]], venue={"kind": "community", "name": "Hall\r\nSet-Cookie: x"}), {"venue"}),
        (session([]), {"attendees"}),
        (session([who["harmed"], who["harmed"]]), {"attendees"}),
        (session(["Gareth"]), {"attendees"}),
        (session([who["harmed"], "p-" + "0" * 32]), {"attendees"}),   # not on this case
        (session([who["harmed"]], notes=""), {"notes"}),
        (session([who["harmed"]], colour="blue"), {"colour"}),
    ]
    for body, fields in bad:
        answer = api.call("POST", path, json=body)
        assert answer.status_code == 400, (body, answer.text)
        assert set(answer.json()["fields"]) == fields, (body, answer.json())
    venue = api.call("POST", path, json=session([who["harmed"]], venue={"kind": "remote", "name": "V",
                                                                        "address": "x"})).json()
    assert set(venue["fields"]["venue"]) == {"address"}
    assert api.counts() == before
    assert api.store.load_case(case_id).sessions == []
    made = api.call("POST", path, json=session([who["harmed"]]))
    assert made.status_code == 201, made.text
    sid = made.json()["session_id"]
    change = f"{path}/{sid}"
    before = api.counts()
    for method, url, body, fields in (
            ("PATCH", change, {}, {"_schema"}),
            ("PATCH", change, {"duration_minutes": 0}, {"duration_minutes"}),
            ("PATCH", change, {"attendees": ["nobody"]}, {"attendees"}),
            ("POST", f"{change}/cancel", {}, {"reason"}),
            ("POST", f"{change}/cancel", {"reason": "Because I Said So"}, {"reason"}),
            ("POST", f"{change}/held", {"attended": []}, {"attended"})):
        answer = api.call(method, url, json=body)
        assert answer.status_code == 400 and set(answer.json()["fields"]) == fields, (url, body, answer.text)
    assert api.call("PATCH", f"{path}/ses-{'0' * 32}", json={"duration_minutes": 60}).status_code == 404
    assert api.call("PATCH", f"{path}/not-a-session", json={"duration_minutes": 60}).status_code == 404
    held_early = api.call("POST", f"{change}/held", json={"attended": [who["harmed"]]})
    assert held_early.status_code == 409 and held_early.json()["reason"] == "session_not_started"
    assert api.counts() == before


def test_who_may_attend_follows_the_process_consent_erasure_and_age(api):
    case_id = in_preparation(api)   # the harmer is under 18 and the case has an appropriate adult
    decide_safety(api, case_id, "direct")
    who = people(api, case_id)
    path = f"/v1/cases/{case_id}/sessions"
    assert choose(api, case_id, "direct_conference").status_code == 200
    before = api.counts()
    one_side = api.call("POST", path, json=session([who["harmed"], who["supporter"]]))
    assert one_side.status_code == 409 and one_side.json()["reason"] == "both_parties_required"
    assert one_side.json()["missing_roles"] == ["harmer"]
    no_adult = api.call("POST", path, json=session([who["harmed"], who["harmer"]]))
    assert no_adult.status_code == 409 and no_adult.json()["reason"] == "appropriate_adult_required"
    assert no_adult.json()["participant_ids"] == [who["harmer"]]
    assert api.counts() == before
    # the supporter withdraws and the interpreter is erased: neither can be invited, and both are named
    assert api.call("POST", f"/v1/cases/{case_id}/consents", json={
        "participant_id": who["supporter"], "scope": "participation", "granted": False}).status_code == 201
    assert api.call("POST", f"/v1/cases/{case_id}/participants/{who['interpreter']}/erasure").status_code == 200
    before = api.counts()
    gone = api.call("POST", path, json=session([who["harmed"], who["harmer"], who["appropriate_adult"],
                                                who["supporter"], who["interpreter"]]))
    assert gone.status_code == 409 and gone.json()["reason"] == "attendee_unavailable"
    assert gone.json()["participant_ids"] == [who["supporter"], who["interpreter"]]
    assert api.counts() == before
    ok = api.call("POST", path, json=session([who["harmed"], who["harmer"], who["appropriate_adult"]]))
    assert ok.status_code == 201, ok.text
    # a shuttle instead: the conference must be cancelled first, then one party at a time
    switch = choose(api, case_id, "shuttle")
    assert switch.status_code == 409 and switch.json()["session_ids"] == [ok.json()["session_id"]]
    assert api.call("POST", f"{path}/{ok.json()['session_id']}/cancel", json={"reason": "process_changed"}
                    ).status_code == 200
    assert choose(api, case_id, "shuttle").status_code == 200
    both = api.call("POST", path, json=session([who["harmed"], who["harmer"], who["appropriate_adult"]]))
    assert both.status_code == 409 and both.json()["reason"] == "one_party_only"
    assert api.call("POST", path, json=session([who["harmer"], who["appropriate_adult"]])).status_code == 201


def test_sessions_travel_as_ids_and_codes_and_the_venue_stays_with_those_who_may_see_it(api):
    case_id = in_preparation(api)
    decide_safety(api, case_id, "direct")
    who = people(api, case_id)
    path = f"/v1/cases/{case_id}/sessions"
    assert choose(api, case_id, "group_conference").status_code == 409   # not assessed
    assert choose(api, case_id, "direct_conference").status_code == 200
    attendees = [who["harmed"], who["harmer"], who["appropriate_adult"], who["supporter"]]
    made = api.call("POST", path, "facilitator", json=session(attendees, notes="Gareth prefers the morning."))
    assert made.status_code == 201, made.text
    sid = made.json()["session_id"]
    assert made.json()["venue"] == VENUE and made.json()["notes"] == "Gareth prefers the morning."
    moved = (datetime.now(timezone.utc) + timedelta(days=6)).replace(microsecond=0)
    changed = api.call("PATCH", f"{path}/{sid}", json={"starts_at": moved.isoformat(),
                                                       "attendees": attendees[:3]})
    assert changed.status_code == 200 and changed.json()["revision"] == 2 and changed.json()["status"] == "changed"
    second = api.call("POST", path, json=session(attendees[:3], days=2)).json()["session_id"]
    assert api.call("POST", f"{path}/{sid}/cancel", json={"reason": "harmed_unwell"}).status_code == 200
    # the second session took place (its start moved into the past, through the store, to record it)
    case = api.store.load_case(case_id)
    earlier = [dict(s, starts_at=s["starts_at"] - timedelta(days=3)) if s["session_id"] == second else s
               for s in case.sessions]
    assert api.store.record_change(case, cases.next_change(case, {"sessions": earlier}, [], "test:time")) is not None
    held = api.call("POST", f"{path}/{second}/held", json={"attended": attendees[:2]})
    assert held.status_code == 200 and held.json()["held"]["attended_ids"] == attendees[:2]

    published = wait_until(lambda: (lambda e: e if len(e) == 5 else None)(api.events(*SESSION_EVENTS)))
    assert [e["type"] for e in published] == ["session.scheduled", "session.changed", "session.scheduled",
                                              "session.cancelled", "session.held"]
    first, change = published[0]["data"], published[1]["data"]
    assert first == {"case_id": case_id, "session_id": sid, "revision": 1, "process_type": "direct_conference",
                     "starts_at": first["starts_at"], "duration_minutes": 90, "venue_kind": "prison",
                     "attendee_ids": attendees, "facilitator_led": False, "facilitator_ids": ["fac-test"]}
    assert change["removed_attendee_ids"] == [who["supporter"]] and change["starts_at"] == moved.isoformat()
    assert published[3]["data"]["reason"] == "harmed_unwell" and published[3]["data"]["revision"] == 3
    assert published[4]["data"]["attended_ids"] == attendees[:2]
    bus = json.dumps(api.events())
    for value in (VENUE["name"], VENUE["address"], "Knox Road", "prefers the morning") + PERSONAL:
        assert value not in bus, value
    # the venue and the notes are kept in referrals; the notes sealed
    stored = api.store.load_case(case_id).sessions[0]
    assert stored["venue"] == VENUE and "morning" not in str(stored["notes"])
    # the coordinator and the holding facilitator see the venue and the notes; referrer and auditor do not
    for role in ("coordinator", "facilitator"):
        shown = api.call("GET", f"/v1/cases/{case_id}", role).json()
        assert shown["sessions"][0]["venue"] == VENUE and shown["sessions"][0]["notes"] == "Gareth prefers the morning."
        assert shown["intervention"]["process_type"] == "direct_conference"
    for role in ("referrer", "auditor"):
        text = api.call("GET", f"/v1/cases/{case_id}", role).text
        assert "Knox Road" not in text and "HMP Caerdydd" not in text and "morning" not in text, role
        assert json.loads(text)["sessions"][0]["venue"] == {"kind": "prison"}


def test_get_contact_releases_the_session_to_whoever_is_invited_and_logs_it(api):
    body = referral_body(0)
    body["participants"].append({"role": "interpreter", "name": "Ieuan Ifans", "age_band": "35_49", "language": "cy",
                                 "contact": {"email": "ieuan@interpreters.example"}})
    case_id = in_preparation(api, body)
    decide_safety(api, case_id, "indirect_only")
    who = people(api, case_id)
    assert choose(api, case_id, "shuttle").status_code == 200
    sid = api.call("POST", f"/v1/cases/{case_id}/sessions", json=session([who["harmer"], who["interpreter"]]),
                   ).json()["session_id"]
    answer = api.rpc("get_contact", who["interpreter"], "session_invitation", "notifications", sid)
    assert answer["granted"] and answer["details"]["email"] == "ieuan@interpreters.example"
    assert answer["details"]["session"]["venue"] == VENUE and answer["details"]["session"]["attending"] is True
    assert api.rpc("get_contact", who["harmed"], "session_invitation", "notifications", sid)["reason"] == \
        "not_invited"
    assert api.rpc("get_contact", who["harmer"], "session_invitation", "notifications")["reason"] == \
        "unknown_session"
    log = [a for a in api.store.access_log(case_id) if a.purpose == "session_invitation"]
    assert [(a.party_id, a.reason) for a in log] == [(who["interpreter"], "granted"), (who["harmed"], "not_invited"),
                                                     (who["harmer"], "unknown_session")]
    assert "session" in log[0].fields_released


def test_in_a_domestic_abuse_case_supervision_comes_first_and_nothing_is_released(api):
    case_id = in_preparation(api, referral_body(2), process_types=("shuttle",))   # domestic abuse
    decide_safety(api, case_id, "indirect_only")
    assert choose(api, case_id, "shuttle").json()["reason"] == "supervision_signoff_missing"
    decide_safety(api, case_id, "indirect_only", supervision="approved")
    assert choose(api, case_id, "shuttle").status_code == 200
    who = people(api, case_id)
    sid = api.call("POST", f"/v1/cases/{case_id}/sessions", json=session([who["harmed"]])).json()["session_id"]
    scheduled = wait_until(lambda: api.events("session.scheduled"))
    assert scheduled[0]["data"]["facilitator_led"] is True
    assert api.rpc("get_contact", who["harmed"], "session_invitation", "notifications", sid)["reason"] == \
        "facilitator_led"
