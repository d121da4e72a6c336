"""Offers through their life: accept, decline, expiry by the timer, release on closure,
the waitlist, and a coordinator's decision on a case under review."""
import requests
from nameko.timer import timer

from services.matching import facilitators
from services.matching.service import MatchingService
from services.matching.store import MatchingStore
from shared.events import new_event
from tests.factories import days_ago, referral_received_data
from tests.support import Tap, facilitator_key, provision_keys, publish_event, wait_until


class QuickSweepMatching(MatchingService):
    """The service with its sweep timer every half second, so offers expire in a test."""

    @timer(interval=0.5)
    def sweep(self):
        super().sweep()


def event(event_type, case_id, data):
    return new_event(event_type, case_id, data, source="/amends/test/referrals", region="test", correlationid=case_id)


def received(**changes):
    data = referral_received_data(**changes)
    return event("referral.received", data["case_id"], data)


def closed(case_id):
    return event("case.closed", case_id, {"case_id": case_id, "from_status": "INTERVENTION",
                                          "reason": "completed_direct"})


def register(store, fid, **changes):
    record = {"facilitator_id": fid, "level": "intermediate", "regions": ["south-wales"], "languages": ["en"],
              "capacity": 1, "trained_on": days_ago(550), "last_process_on": days_ago(60)}
    record.update(changes)
    facilitators.register(store, record)


def spare(store, facilitator_id):
    return facilitators.view(store, store.get_facilitator(facilitator_id))["spare"]


def auth(key):
    return {"Authorization": f"Bearer {key}"}


def wait_for(tap, event_type, count=1, timeout=20):
    return wait_until(lambda: [e for e in tap.drain() if e["type"] == event_type][count - 1:] and
                      [e for e in tap.seen if e["type"] == event_type], timeout=timeout)


def one_staffed_one_waiting(store, amqp_uri):
    """One facilitator with room for one case: case-1 is offered to them, case-2 (other
    participants) waits. Returns the tap on matching's events and the waitlisting."""
    register(store, "fac-only")
    tap = Tap(amqp_uri, [("matching", "#")])
    publish_event(amqp_uri, received(case_id="case-1"))
    wait_for(tap, "facilitator.assigned")
    publish_event(amqp_uri, received(case_id="case-2", participants=[
        {"participant_id": "p-3", "role": "harmed", "age_band": "35_49", "language": "en", "access_needs": []},
        {"participant_id": "p-4", "role": "harmer", "age_band": "18_24", "language": "en", "access_needs": []}]))
    return tap, wait_for(tap, "assignment.waitlisted")[0]["data"]


def test_decline_and_expiry_pass_the_offer_on_and_acceptance_is_announced(run_services, amqp_uri):
    with run_services(QuickSweepMatching, MATCHING_OFFER_TIMEOUT="2") as (url, config):
        store = MatchingStore.open(config)
        keys = provision_keys(config)
        # fac-a ranks first (home region), then fac-b (more room), then fac-c
        register(store, "fac-a")
        register(store, "fac-b", regions=["gwent", "south-wales"], capacity=3)
        register(store, "fac-c", regions=["gwent", "south-wales"])
        tap = Tap(amqp_uri, [("matching", "#")])
        publish_event(amqp_uri, received())
        own = {fid: facilitator_key(config, fid) for fid in ("fac-a", "fac-b", "fac-c")}
        first = wait_for(tap, "facilitator.assigned")[0]["data"]
        assert first["facilitator_id"] == "fac-a" and first["role"] == "lead"
        assert spare(store, "fac-a") == 0
        # another facilitator can neither answer fac-a's offer nor see the case
        taken = requests.post(f"{url}/v1/assignments/{first['assignment_id']}/accept",
                              headers=auth(own["fac-b"]), timeout=10)
        assert taken.status_code == 403 and taken.json()["error"] == "forbidden"
        assert requests.get(f"{url}/v1/cases/case-1/assignment", headers=auth(own["fac-b"]),
                            timeout=10).status_code == 404
        assert requests.get(f"{url}/v1/cases/case-1/assignment", headers=auth(own["fac-a"]),
                            timeout=10).status_code == 200
        declined = requests.post(f"{url}/v1/assignments/{first['assignment_id']}/decline",
                                 headers=auth(own["fac-a"]), timeout=10)
        assert declined.status_code == 200 and declined.json()["state"] == "declined"
        again = requests.post(f"{url}/v1/assignments/{first['assignment_id']}/decline",
                              headers=auth(own["fac-a"]), timeout=10)
        assert again.status_code == 200  # declining twice changes nothing
        second = wait_for(tap, "facilitator.assigned", 2)[1]["data"]
        assert second["facilitator_id"] == "fac-b"
        assert spare(store, "fac-a") == 1 and spare(store, "fac-b") == 2
        # fac-b lets the offer lapse: the timer passes it to fac-c
        third = wait_for(tap, "facilitator.assigned", 3, timeout=30)[2]["data"]
        assert third["facilitator_id"] == "fac-c"
        reasons = [(e["data"]["facilitator_id"], e["data"]["reason"]) for e in tap.seen
                   if e["type"] == "assignment.declined"]
        assert reasons == [("fac-a", "declined"), ("fac-b", "offer_expired")]
        assert spare(store, "fac-b") == 3
        accepted = requests.post(f"{url}/v1/assignments/{third['assignment_id']}/accept",
                                 headers=auth(own["fac-c"]), timeout=10)
        assert accepted.status_code == 200 and accepted.json()["state"] == "accepted"
        wait_for(tap, "assignment.accepted")
        late = requests.post(f"{url}/v1/assignments/{first['assignment_id']}/accept",
                             headers=auth(own["fac-a"]), timeout=10)
        assert late.status_code == 409 and late.json()["reason"] == "offer_declined"
        assert requests.post(f"{url}/v1/assignments/{third['assignment_id']}/decline",
                             headers=auth(keys["coordinator"]), timeout=10).status_code == 409
        assert requests.post(f"{url}/v1/assignments/no-such-offer/accept",
                             headers=auth(own["fac-c"]), timeout=10).status_code == 404
        assert requests.post(f"{url}/v1/assignments/{third['assignment_id']}/accept",
                             headers=auth(keys["referrer"]), timeout=10).status_code == 403
        view = requests.get(f"{url}/v1/cases/case-1/assignment", headers=auth(keys["coordinator"]), timeout=10).json()
        assert view["status"] == "accepted"
        assert [o["state"] for o in view["offers"]] == ["declined", "expired", "accepted"]
        assert sum(len(store.caseloads([f])[f]) for f in ("fac-a", "fac-b", "fac-c")) == 1
        tap.close()


def test_a_closed_case_releases_its_facilitator_to_the_case_waiting_longest(run_services, amqp_uri):
    with run_services(MatchingService) as (url, config):
        store = MatchingStore.open(config)
        tap, waitlisted = one_staffed_one_waiting(store, amqp_uri)
        assert waitlisted["case_id"] == "case-2" and waitlisted["reason"] == "no_eligible_facilitator"
        publish_event(amqp_uri, closed("case-1"))
        publish_event(amqp_uri, closed("case-1"))  # redelivered: no second release
        released = wait_for(tap, "facilitator.released")[0]["data"]
        assert (released["case_id"], released["facilitator_id"], released["reason"]) == \
            ("case-1", "fac-only", "case_closed")
        offered = wait_for(tap, "facilitator.assigned", 2)[1]["data"]
        assert (offered["case_id"], offered["facilitator_id"]) == ("case-2", "fac-only")
        wait_until(lambda: store.get_assignment("case-1").status == "closed")
        assert store.caseloads(["fac-only"]) == {"fac-only": ["case-2"]} and spare(store, "fac-only") == 0
        assert [e["type"] for e in tap.drain()].count("facilitator.released") == 1
        tap.close()


def test_a_coordinator_decides_a_case_under_review_and_it_is_co_worked(run_services, amqp_uri):
    with run_services(MatchingService) as (url, config):
        store = MatchingStore.open(config)
        keys = provision_keys(config)
        tap = Tap(amqp_uri, [("matching", "#")])
        publish_event(amqp_uri, received(offence_category="sexual_offence"))
        wait_for(tap, "case.needs_review")
        assessed = [e for e in tap.seen if e["type"] == "case.assessed"][0]["data"]
        assert assessed["decision"] == "needs_review" and assessed["required_endorsements"] == ["sexual_violence"]
        assert store.get_assignment("case-1") is None
        register(store, "fac-lead", level="advanced", endorsements=["sexual_violence"], capacity=2)
        register(store, "fac-co", level="foundation", endorsements=["sexual_violence"], capacity=2)
        register(store, "fac-plain", level="advanced", capacity=2)  # no endorsement: never offered
        url_decision = f"{url}/v1/cases/case-1/decision"
        bad = requests.post(url_decision, json={"decision": "maybe"}, headers=auth(keys["coordinator"]), timeout=10)
        assert bad.status_code == 400 and set(bad.json()["fields"]) == {"decision", "reason_code", "reason"}
        assert requests.post(url_decision, json={"decision": "suitable", "reason_code": "x", "reason": "y"},
                             headers=auth(keys["facilitator"]), timeout=10).status_code == 403
        body = {"decision": "suitable", "reason_code": "specialist_risk_assessment_done",
                "reason": "Specialist risk assessment completed with both parties; supervision arranged."}
        decided = requests.post(url_decision, json=body, headers=auth(keys["coordinator"]), timeout=10)
        assert decided.status_code == 201, decided.text
        assert decided.json()["decision"] == "suitable" and decided.json()["reviewed"] is True
        assert requests.post(url_decision, json=body, headers=auth(keys["coordinator"]),
                             timeout=10).json()["reason"] == "already_decided"
        offers = wait_for(tap, "facilitator.assigned", 2)
        assert sorted((e["data"]["role"], e["data"]["facilitator_id"]) for e in offers) == [
            ("co_facilitator", "fac-co"), ("lead", "fac-lead")]
        second = [e for e in tap.seen if e["type"] == "case.assessed"][1]["data"]
        assert second["decision"] == "suitable" and second["reasons"][-1]["code"] == "coordinator_approved"
        assert "supervision arranged" not in str(tap.seen)  # the coordinator's words stay in matching
        assert spare(store, "fac-plain") == 2
        tap.close()


def test_a_partys_withdrawn_consent_pauses_the_case_and_consent_given_again_reassesses_it(run_services, amqp_uri):
    with run_services(MatchingService) as (url, config):
        store = MatchingStore.open(config)
        tap, _ = one_staffed_one_waiting(store, amqp_uri)

        def consent(scope, participant="p-2", role="harmer", granted=False):
            return event("consent.recorded" if granted else "consent.withdrawn", "case-1", {
                "case_id": "case-1", "participant_id": participant, "participant_role": role, "scope": scope,
                "item": None, "with_role": None, "granted": granted})
        publish_event(amqp_uri, consent("share_outcome_with_court"))  # not consent to take part: no change
        publish_event(amqp_uri, consent("participation", "p-3", "supporter"))  # not a party: no change
        withdrawn = consent("participation")
        publish_event(amqp_uri, withdrawn)
        publish_event(amqp_uri, withdrawn)  # redelivered: no second effect
        released = wait_for(tap, "facilitator.released")[0]["data"]
        assert (released["case_id"], released["facilitator_id"], released["reason"]) == \
            ("case-1", "fac-only", "consent_withdrawn")
        reassessed = [e["data"] for e in tap.seen if e["type"] == "case.assessed"][-1]
        assert reassessed["case_id"] == "case-1" and reassessed["decision"] == "unsuitable"
        assert reassessed["basis"] == "consent"
        assert "consent_withdrawn" in [r["code"] for r in reassessed["reasons"]]
        offered = wait_for(tap, "facilitator.assigned", 2)[1]["data"]
        assert (offered["case_id"], offered["facilitator_id"]) == ("case-2", "fac-only")
        wait_until(lambda: store.get_assignment("case-1").closed_reason == "participation_withdrawn")
        events = tap.drain()
        assert [e["type"] for e in events].count("facilitator.released") == 1
        assert [e["data"]["case_id"] for e in events if e["type"] == "case.assessed"].count("case-1") == 2

        # the harmer consents again: assessed afresh, suitable, and staffed again (the one
        # facilitator is busy with case-2 now, so it waits for capacity)
        publish_event(amqp_uri, consent("participation", granted=True))
        again = wait_until(lambda: [e["data"] for e in tap.drain() if e["type"] == "case.assessed"
                                    and e["data"]["case_id"] == "case-1" and e["data"]["decision"] == "suitable"
                                    and e["data"]["basis"] == "consent"] or None, timeout=20)
        assert len(again) == 1
        wait_until(lambda: store.get_assignment("case-1").status == "waitlisted")
        assert store.latest_assessment("case-1").withdrawn_by == []
        tap.close()


def test_a_conflict_declared_after_acceptance_releases_the_facilitator_and_re_offers(run_services, amqp_uri):
    with run_services(MatchingService) as (url, config):
        store = MatchingStore.open(config)
        keys = provision_keys(config)
        register(store, "fac-a")
        register(store, "fac-b", regions=["gwent", "south-wales"])  # ranks second (not home region)
        tap = Tap(amqp_uri, [("matching", "#")])
        publish_event(amqp_uri, received(case_id="case-1"))
        first = wait_for(tap, "facilitator.assigned")[0]["data"]
        assert first["facilitator_id"] == "fac-a"
        assert requests.post(f"{url}/v1/assignments/{first['assignment_id']}/accept",
                             headers=auth(keys["coordinator"]), timeout=10).status_code == 200
        # a capacity change alone leaves the case where it is
        assert requests.patch(f"{url}/v1/facilitators/fac-a", json={"capacity": 2},
                              headers=auth(keys["coordinator"]), timeout=10).status_code == 200
        # fac-a turns out to know the harmer: they come off the case and fac-b is offered it
        changed = requests.patch(f"{url}/v1/facilitators/fac-a",
                                 json={"conflicts": [{"kind": "participant", "ref": "p-2"}]},
                                 headers=auth(keys["coordinator"]), timeout=10)
        assert changed.status_code == 200, changed.text
        released = wait_for(tap, "facilitator.released")[0]["data"]
        assert (released["facilitator_id"], released["reason"]) == ("fac-a", "no_longer_eligible")
        offered = wait_for(tap, "facilitator.assigned", 2)[1]["data"]
        assert (offered["case_id"], offered["facilitator_id"]) == ("case-1", "fac-b")
        assert store.caseloads(["fac-a", "fac-b"]) == {"fac-a": [], "fac-b": ["case-1"]}
        view = requests.get(f"{url}/v1/cases/case-1/assignment", headers=auth(keys["coordinator"]), timeout=10).json()
        assert [(o["facilitator_id"], o["state"]) for o in view["offers"]] == [("fac-a", "released"),
                                                                               ("fac-b", "offered")]
        assert [e["type"] for e in tap.drain()].count("facilitator.released") == 1
        tap.close()


def test_an_erased_participant_s_history_with_facilitators_is_forgotten(run_services, amqp_uri):
    with run_services(MatchingService) as (url, config):
        store = MatchingStore.open(config)
        keys = provision_keys(config)
        register(store, "fac-a", capacity=2)
        tap = Tap(amqp_uri, [("matching", "#")])
        publish_event(amqp_uri, received(case_id="case-1"))
        offer = wait_for(tap, "facilitator.assigned")[0]["data"]
        assert requests.post(f"{url}/v1/assignments/{offer['assignment_id']}/accept",
                             headers=auth(keys["coordinator"]), timeout=10).status_code == 200
        wait_until(lambda: store.facilitators_seen(["p-1"]) == {"fac-a"})
        assert store.facilitators_seen(["p-2"]) == {"fac-a"}
        erased = event("participant.erased", "case-1", {"case_id": "case-1", "participant_id": "p-1"})
        publish_event(amqp_uri, erased)
        publish_event(amqp_uri, erased)  # redelivered: no error, nothing more to forget
        wait_until(lambda: not store.facilitators_seen(["p-1"]))
        assert store.facilitators_seen(["p-2"]) == {"fac-a"}  # the other party's history stays
        tap.close()
