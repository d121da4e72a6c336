"""The national view's two ends on the real broker and database: a region's statistics
service de-identifies its events onto `national.outbound`, and the national service counts
what reaches `national.statistics`, each statistic once, from the region its link names."""
import base64
import json
import uuid

import pymongo
from kombu import Connection

from services.national.service import NationalService
from services.national.store import NationalStore
from services.statistics.service import StatisticsService
from shared import statistics_profile as profile
from shared.config import settings_for
from shared.events import new_event
from shared.messaging import national
from tests.conftest import MONGO_URI
from tests.factories import referral_received_data
from tests.integration.conftest import refused_start
from tests.support import publish_event, read_dead_letters, wait_until

KEY = base64.urlsafe_b64encode(b"s" * 32).decode()


def _referral(case_id, category="robbery"):
    data = referral_received_data(case_id=case_id, offence_category=category)
    return new_event("referral.received", case_id, data, source="/amends/test/referrals", region="test",
                     correlationid=case_id)


def _assessed(case_id, decision="suitable"):
    return new_event("case.assessed", case_id, {
        "case_id": case_id, "assessment_id": f"as-{case_id}", "decision": decision, "basis": "referral",
        "reasons": [{"code": "responsibility_accepted", "text": "ok"}], "risk_level": "low",
        "required_level": "intermediate", "co_facilitation": False, "process_types": ["shuttle"],
        "policy_version": "t"}, source="/amends/test/matching", region="test", correlationid=case_id)


def _closed(case_id, reason="completed_indirect"):
    return new_event("case.closed", case_id, {"case_id": case_id, "from_status": "INTERVENTION", "reason": reason},
                     source="/amends/test/referrals", region="test", correlationid=case_id)


def _outbound(amqp_uri, expected, timeout=20):
    """Read (routing key, statistic) pairs off the region's outbound queue until `expected` came."""
    got = []
    with Connection(amqp_uri) as connection:
        queue = national.outbound_queue().bind(connection.channel())

        def more():
            while (message := queue.get(no_ack=True)) is not None:
                got.append((message.delivery_info["routing_key"], json.loads(message.body)))
            return len(got) >= expected
        wait_until(more, timeout=timeout, interval=0.2)
    return got


def test_a_region_sends_each_case_event_as_a_statistic_with_no_id_of_the_case_or_its_people(run_services):
    with run_services(StatisticsService, AMENDS_STATISTICS_KEY=KEY) as (_, config):
        # an assessment that overtakes its referral waits for it
        early = _assessed("case-s1")
        publish_event(config["AMQP_URI"], early)
        events = [_referral("case-s1", "burglary"), _referral("case-s2", "theft"), _closed("case-s2")]
        for event in events:
            publish_event(config["AMQP_URI"], event)
        got = _outbound(config["AMQP_URI"], 4)
    by_type = sorted((s["event_type"], s["offence_category"], s["outcome_class"]) for _, s in got)
    assert by_type == [("case.assessed", "burglary", "suitable"), ("case.closed", "theft", "completed"),
                       ("referral.received", "burglary", None), ("referral.received", "theft", None)]
    ids = {"case-s1", "case-s2", "ref-1", "p-1", "p-2", "as-case-s1"} | {e["id"] for e in events + [early]}
    for key, statistic in got:
        assert key == f"test.{statistic['event_type']}"
        assert set(statistic) == set(profile.FIELDS)
        assert not ids & {str(v) for v in statistic.values()}
        assert statistic["region"] == "test"


def test_an_event_whose_referral_never_comes_is_held_not_sent(run_services):
    with run_services(StatisticsService, AMENDS_STATISTICS_KEY=KEY) as (_, config):
        publish_event(config["AMQP_URI"], _assessed("case-orphan"))
        publish_event(config["AMQP_URI"], _referral("case-other"))
        got = _outbound(config["AMQP_URI"], 1)
    assert [s["event_type"] for _, s in got] == ["referral.received"]


def test_the_statistics_service_does_not_start_without_its_key(service_config):
    refusal = refused_start(StatisticsService, service_config(AMENDS_STATISTICS_KEY=""), RuntimeError)
    assert "AMENDS_STATISTICS_KEY" in str(refusal)


def _statistic(region, event_type="referral.received", category="theft"):
    return {"statistic_id": uuid.uuid4().hex, "profile_version": profile.PROFILE_VERSION, "event_type": event_type,
            "region": region, "offence_category": category, "week": "2026-W49", "outcome_class": None}


def _send(amqp_uri, body, key):
    with Connection(amqp_uri) as connection:
        connection.Producer().publish(body if isinstance(body, str) else json.dumps(body),
                                      exchange=national.national_exchange(), routing_key=key,
                                      content_type="application/json", serializer=None)


def _national_store(config):
    return NationalStore(pymongo.MongoClient(MONGO_URI)[settings_for("national", config).database])


def test_the_national_service_counts_each_statistic_once_and_refuses_what_is_not_one(run_services, amqp_uri):
    national.declare(amqp_uri, national.national_entities())
    with run_services(NationalService, AMENDS_REGION="national") as (_, config):
        south = [_statistic("south") for _ in range(5)]
        north = [_statistic("north", "case.closed") for _ in range(3)]
        for statistic in south:
            _send(amqp_uri, statistic, national.routing_key("south", statistic["event_type"]))
        for statistic in north + north[:2]:  # two sent again, as a shovel may after a break
            _send(amqp_uri, statistic, national.routing_key("north", statistic["event_type"]))
        # a statistic claiming a region its link does not serve, one with a case id, and noise
        _send(amqp_uri, _statistic("north"), "south.referral.received")
        _send(amqp_uri, {**_statistic("south"), "case_id": "case-1"}, "south.referral.received")
        _send(amqp_uri, "not json", "south.referral.received")
        store = _national_store(config)
        wait_until(lambda: store.count("south") == 5 and store.count("north") == 3, timeout=20)
        letters = []
        wait_until(lambda: letters.extend(read_dead_letters(amqp_uri, "national")) or len(letters) >= 3, timeout=20)
    reasons = sorted(headers["x-amends-error"] for _, headers in letters)
    assert len(letters) == 3
    assert any("case_id" in r for r in reasons) and any("another region" in r for r in reasons)
    assert any("malformed" in r for r in reasons)
    assert store.counts(["referral.received", "case.closed"]) == {
        "north": {"referral.received": 0, "case.closed": 3, "all": 3},
        "south": {"referral.received": 5, "case.closed": 0, "all": 5}}
