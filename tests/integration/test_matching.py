import json

from services.matching import facilitators
from services.matching.service import MatchingService
from services.matching.store import MatchingStore
from shared.events import new_event
from tests.factories import days_ago, referral_received_data
from tests.support import Tap, publish_event, read_dead_letters, wait_until


def received(**changes):
    data = referral_received_data(**changes)
    return new_event("referral.received", data["case_id"], data, source="/amends/test/referrals",
                     region="test", correlationid=data["case_id"])


def seed(store, capacity=1):
    facilitators.register(store, {"facilitator_id": "fac-1", "level": "intermediate", "regions": ["south-wales"],
                           "languages": ["en"], "capacity": capacity, "last_active": days_ago(60)})


def test_a_referral_is_assessed_and_a_facilitator_booked_once(run_services, amqp_uri):
    with run_services(MatchingService) as (url, config):
        store = MatchingStore.open(config)
        seed(store, capacity=1)
        tap = Tap(amqp_uri, [("matching", "#")])
        event = received()
        publish_event(amqp_uri, event)
        publish_event(amqp_uri, event)  # a redelivery: must have no second effect
        events = wait_until(lambda: len(tap.drain()) >= 2 and tap.seen)
        wait_until(lambda: store.count_assessments() == 1)
        assert [e["type"] for e in events][:2] == ["case.assessed", "facilitator.assigned"]
        assessed, assigned = events[0], events[1]
        assert assessed["data"]["decision"] == "suitable"
        assert assessed["causationid"] == event["id"] and assessed["correlationid"] == event["correlationid"]
        assert assigned["data"]["facilitator_id"] == "fac-1"
        assert store.caseloads(["fac-1"]) == {"fac-1": ["case-1"]}
        assert facilitators.view(store, store.get_facilitator("fac-1"))["spare"] == 0
        # a second case finds nobody with room, and says so
        publish_event(amqp_uri, received(case_id="case-2"))
        wait_until(lambda: "assignment.waitlisted" in [e["type"] for e in tap.drain()])
        assert store.count_assessments() == 2
        tap.close()


def test_poison_messages_are_dead_lettered_with_the_reason(run_services, amqp_uri):
    with run_services(MatchingService) as (url, config):
        store = MatchingStore.open(config)
        publish_event(amqp_uri, received(), body=b"{this is not json")
        bad = received()
        bad["data"]["cjs_stage"] = "whenever"
        publish_event(amqp_uri, bad)
        letters = []
        wait_until(lambda: letters.extend(read_dead_letters(amqp_uri, "matching"))
                   or len(letters) >= 2)
        reasons = sorted(headers["x-amends-error"] for _, headers in letters)
        assert reasons[0].startswith("invalid event: data.cjs_stage")
        assert reasons[1] == "malformed JSON body"
        for body, headers in letters:
            assert headers["x-amends-original-exchange"] == "referrals.events"
            assert headers["x-amends-original-routing-key"] == "referral.received"
            assert headers["x-amends-queue"] == "matching.assess"
        assert store.count_assessments() == 0


def test_a_handler_that_keeps_failing_is_retried_then_dead_lettered(run_services, amqp_uri, monkeypatch):
    calls = []

    def broken(event, *args, **kwargs):
        calls.append(event["id"])
        raise RuntimeError("simulated failure")

    monkeypatch.setattr("services.matching.workflow.handle_referral_received", broken)
    with run_services(MatchingService):
        event = received()
        publish_event(amqp_uri, event)
        letters = wait_until(lambda: read_dead_letters(amqp_uri, "matching") or None, timeout=30)
        body, headers = letters[0]
        assert json.loads(body)["id"] == event["id"]
        assert headers["x-amends-error"] == "RuntimeError: (details withheld)"
        assert headers["x-amends-attempts"] == 3
        assert calls == [event["id"]] * 3  # the first try and two retries (AMENDS_RETRY_DELAYS=0.2,0.4)


def test_local_switches_set_for_the_deployment_apply_and_are_logged(run_services, amqp_uri, caplog):
    caplog.set_level("INFO", logger="services.matching.service")
    with run_services(MatchingService, MATCHING_LOCAL_SWITCHES="court_cases_after_sentence_only=true"):
        tap = Tap(amqp_uri, [("matching", "#")])
        publish_event(amqp_uri, received(cjs_stage="pre_sentence"))
        assessed = wait_until(lambda: [e for e in tap.drain() if e["type"] == "case.assessed"])[0]["data"]
        tap.close()
    assert assessed["decision"] == "needs_review"
    assert "court_case_awaiting_sentence" in [r["code"] for r in assessed["reasons"]]
    started = [m for m in caplog.messages if m.startswith("suitability policy ")]
    assert "court_cases_after_sentence_only=true" in started[0]
    assert started[0].endswith("(set for this deployment: court_cases_after_sentence_only)")


def test_domestic_abuse_is_refused_unless_the_deployment_allows_it(run_services, service_config, amqp_uri):
    """The harmed person asks and a specialist is there: under the shipped policy the case is
    refused (no local policy allows it); only a deployment that turned the switch on sends
    it to a coordinator's review."""
    store = MatchingStore.open(service_config())
    facilitators.register(store, {"facilitator_id": "fac-da", "level": "advanced", "regions": ["south-wales"],
                                  "languages": ["en"], "capacity": 2, "endorsements": ["domestic_abuse"],
                                  "last_active": days_ago(60)})
    tap = Tap(amqp_uri, [("matching", "case.assessed")])
    for switches, case_id in (("", "case-shipped"), ("domestic_abuse_rj_allowed=true", "case-allowed")):
        with run_services(MatchingService, MATCHING_LOCAL_SWITCHES=switches):
            publish_event(amqp_uri, received(case_id=case_id, flags=["domestic_abuse"], initiated_by="harmed"))
            wait_until(lambda: case_id in [e["subject"] for e in tap.drain()])
    decided = {e["subject"]: e["data"] for e in tap.seen}
    tap.close()
    shipped, allowed = decided["case-shipped"], decided["case-allowed"]
    assert shipped["decision"] == "unsuitable" and shipped["policy_version"] == "suitability-v2"
    assert "domestic_abuse_not_allowed_locally" in [r["code"] for r in shipped["reasons"]]
    assert allowed["decision"] == "needs_review" and allowed["required_endorsements"] == ["domestic_abuse"]
    assert "domestic_abuse_not_allowed_locally" not in [r["code"] for r in allowed["reasons"]]
