"""`GET /metrics` of running services, on the real broker and FerretDB: each thing a service
does moves the counter or histogram that says so, and no label ever names a case, a person
or an event."""
import copy
import uuid
from datetime import timedelta

import eventlet
import pymongo
import pytest
from nameko.testing.services import entrypoint_hook

from services.records.service import RecordsService
from shared import metrics
from shared.events import new_event
from shared.health import HealthEndpoint
from shared.messaging import topology
from shared.messaging.consumer import event_consumer
from shared.messaging.outbox import Relay, pending_fields
from shared.messaging.publisher import EventPublisher, UndeliverableMessage
from tests.conftest import MONGO_URI
from tests.factories import days_ago, referral_body, referral_received_data
from tests.integration.test_outbox import bound_queue, declare_exchange
from tests.integration.test_records import SIGNER, case_events, ledger_of
from tests.integration.test_referrals_api import running_referrals
from tests.scrapes import Scrape, assert_no_ids, moved
from tests.support import provision_keys, publish_event, wait_until


def personal_values(body):
    """What a referral body says about people: none of it may reach a label."""
    values = [body["crime_reference"], body["referrer"]["officer_name"], *body["referrer"]["contact"].values()]
    for participant in body["participants"]:
        values += [participant["name"], *participant["contact"].values()]
    return [v for v in values if isinstance(v, str) and len(v) > 3]


def ids_of(event):
    """The ids an event carries: its own, its case's and its participants'."""
    data = event["data"]
    return [event["id"], event["subject"], data.get("referrer_id")] + [
        p["participant_id"] for p in data.get("participants", [])]


@pytest.fixture
def api(service_config, amqp_uri, monkeypatch):
    with running_referrals(service_config, amqp_uri, monkeypatch) as running:
        yield running


def test_a_referral_is_counted_by_its_route_template_and_its_event_by_type(api):
    before = Scrape.of(api.url)
    body = referral_body(0, crime_reference=f"SWP/26/{uuid.uuid4().hex[:8]}")
    case_id = api.refer(body)
    assert api.call("GET", f"/v1/cases/{case_id}").status_code == 200
    assert api.call("GET", "/v1/cases/no-such-case-here").status_code == 404
    received = wait_until(lambda: api.events("referral.received"))
    after = wait_until(lambda: (lambda s: s if moved(before, s, "amends_events_published_total",
                                                     type="referral.received") >= 1 else None)(Scrape.of(api.url)))

    assert moved(before, after, "amends_http_requests_total", method="POST", route="/v1/referrals",
                 status="201") == 1
    assert moved(before, after, "amends_http_request_duration_seconds_count", method="POST",
                 route="/v1/referrals") == 1
    assert moved(before, after, "amends_http_requests_total", method="GET", route="/v1/cases/<case_id>",
                 status="200") == 1
    assert moved(before, after, "amends_http_requests_total", method="GET", route="/v1/cases/<case_id>",
                 status="404") == 1
    assert moved(before, after, "amends_events_published_total", type="referral.received") == 1
    assert_no_ids(after, [case_id, "no-such-case-here", *ids_of(received[0]), *personal_values(body)])


def test_the_outbox_backlog_is_reported_once_the_relay_has_looked(api):
    api.refer()
    # the relay timer (AMENDS_OUTBOX_INTERVAL) notes each outbox collection of the service
    scrape = wait_until(lambda: (lambda s: s if s.has("amends_outbox_backlog_events", service="referrals",
                                                      collection="cases") else None)(Scrape.of(api.url)))
    # the request's own flush sent the referral's events: nothing is left waiting
    assert scrape.value("amends_outbox_backlog_events", service="referrals", collection="cases") == 0
    assert scrape.value("amends_outbox_oldest_event_age_seconds", service="referrals", collection="cases") == 0


def test_deadline_clocks_due_and_missed_are_counted_by_deadline(api):
    # reported a fortnight ago, and the person harmed not contacted: both clocks have run out
    body = referral_body(0, crime_reported_on=days_ago(14), crime_reference=f"SWP/26/{uuid.uuid4().hex[:8]}")
    body["participants"][0]["contact_safe"] = False
    before = Scrape.of(api.url)
    case_id = api.refer(body)
    with entrypoint_hook(api.container, "check_deadlines") as tick:
        tick()
    with entrypoint_hook(api.container, "check_deadlines") as tick:
        tick()   # owes nothing more: no second count
    after = Scrape.of(api.url)
    for deadline in ("victim_told_about_rj", "support_referral"):
        assert moved(before, after, "amends_deadlines_due_total", deadline=deadline) == 1
        assert moved(before, after, "amends_deadlines_missed_total", deadline=deadline) == 1
    assert moved(before, after, "amends_events_published_total", type="case.deadline_missed") == 2
    assert_no_ids(after, [case_id, *personal_values(body)])


# -- the consumer, through a probe service built on it ------------------------------------

calls = []


class ProbeService(HealthEndpoint):
    """A service of the shared consumer alone; the case named `case-fails` always fails."""
    name = "probe"

    @event_consumer("probe")
    def on_event(self, event):
        if event["subject"] == "case-fails":
            raise RuntimeError("the handler failed")
        calls.append(event["id"])


@pytest.fixture
def probe_topology(monkeypatch):
    monkeypatch.setitem(topology.CONSUMERS, ("probe", "probe"), [("referrals", "referral.received")])
    monkeypatch.setattr(topology, "SERVICES", topology.SERVICES + ("probe",))
    calls.clear()


def received(case_id):
    data = referral_received_data(case_id=case_id)
    return new_event("referral.received", case_id, data, source="/amends/test/referrals",
                     region="test", correlationid=case_id)


def test_events_consumed_timed_retried_and_dead_lettered_by_type(run_services, amqp_uri, probe_topology):
    labels = {"queue": "probe.probe", "type": "referral.received"}
    with run_services(ProbeService) as (url, config):
        before = Scrape.of(url)
        good, bad = received(f"case-{uuid.uuid4().hex[:8]}"), received("case-fails")
        publish_event(amqp_uri, good)
        # handled and recorded in the inbox (it is counted once both are done)
        wait_until(lambda: moved(before, Scrape.of(url), "amends_events_consumed_total", outcome="handled",
                                 **labels) == 1)
        publish_event(amqp_uri, good)   # redelivered: skipped by the inbox
        publish_event(amqp_uri, bad)    # fails, is retried twice (AMENDS_RETRY_DELAYS), then dead-lettered
        publish_event(amqp_uri, None, body=b"{not json")

        def settled():
            scrape = Scrape.of(url)
            done = moved(before, scrape, "amends_dead_letters_total", queue="probe.probe", reason="failed") == 1 \
                and moved(before, scrape, "amends_dead_letters_total", queue="probe.probe", reason="malformed") == 1 \
                and moved(before, scrape, "amends_events_consumed_total", outcome="duplicate", **labels) == 1
            return scrape if done else None

        after = wait_until(settled, timeout=30)

    assert calls == [good["id"]]
    assert moved(before, after, "amends_events_consumed_total", outcome="handled", **labels) == 1
    assert moved(before, after, "amends_events_consumed_total", outcome="failed", **labels) == 3
    assert moved(before, after, "amends_event_retries_total", **labels) == 2
    # a handler is timed each time it runs: once for the good event, three times for the bad
    assert moved(before, after, "amends_event_handler_duration_seconds_count", **labels) == 4
    assert moved(before, after, "amends_dead_letters_total", queue="probe.probe", type="referral.received",
                 reason="failed") == 1
    # a message that is no event has no type to tell
    assert moved(before, after, "amends_dead_letters_total", queue="probe.probe", type="unknown",
                 reason="malformed") == 1
    assert_no_ids(after, ids_of(good) + ids_of(bad))


# -- the ledger ---------------------------------------------------------------------------

def test_ledger_appends_are_timed_its_size_reported_and_unfit_messages_dead_lettered(run_services, amqp_uri):
    with run_services(RecordsService, AMENDS_LEDGER_SIGNING_KEY=str(SIGNER),
                      RECORDS_CHECKPOINT_INTERVAL="3600") as (url, config):
        provision_keys(config)
        before = Scrape.of(url)
        case_id = f"case-{uuid.uuid4().hex[:8]}"
        events = case_events(case_id)
        for event in events:
            publish_event(amqp_uri, event)
        ledger = ledger_of(config)
        wait_until(lambda: ledger.head().size == 2)
        foreign = copy.deepcopy(events[0])
        foreign.update(id=str(uuid.uuid4()), region="elsewhere")
        publish_event(amqp_uri, foreign)                                 # another region's: not admitted
        publish_event(amqp_uri, dict(events[0], specversion="0.3"))    # fails the envelope's schema
        publish_event(amqp_uri, None, body=b"\xff not even text")      # not JSON

        def settled():
            scrape = Scrape.of(url)
            reasons = [moved(before, scrape, "amends_dead_letters_total", queue="records.ledger", reason=reason)
                       for reason in ("not_admitted", "invalid", "malformed")]
            return scrape if reasons == [1, 1, 1] else None

        after = wait_until(settled, timeout=30)

    assert after.value("amends_ledger_entries") == 2
    assert moved(before, after, "amends_ledger_append_duration_seconds_count") >= 1
    assert moved(before, after, "amends_ledger_append_duration_seconds_sum") > 0
    for kind in ("referral.received", "case.assessed"):
        assert moved(before, after, "amends_events_consumed_total", queue="records.ledger", type=kind,
                     outcome="handled") == 1
    assert moved(before, after, "amends_dead_letters_total", queue="records.ledger", type="referral.received",
                 reason="not_admitted") == 1
    assert moved(before, after, "amends_dead_letters_total", queue="records.ledger", type="unknown",
                 reason="invalid") == 1
    assert_no_ids(after, [case_id, foreign["id"], *(i for e in events for i in ids_of(e))])


# -- the outbox relay ---------------------------------------------------------------------

@pytest.fixture
def collection(db_prefix):
    client = pymongo.MongoClient(MONGO_URI)
    yield client[f"{db_prefix}_metricstest"]["cases"]
    client.close()


def outbox_gauges():
    scrape = Scrape(metrics.exposition()[0].decode())
    return (scrape.value("amends_outbox_backlog_events", service="metricstest", collection="cases"),
            scrape.value("amends_outbox_oldest_event_age_seconds", service="metricstest", collection="cases"))


def test_an_outbox_the_relay_cannot_empty_keeps_its_backlog_and_ages(amqp_uri, collection):
    declare_exchange(amqp_uri)   # and no queue bound to it: nothing can be routed
    stuck = received("case-stuck")
    stuck["time"] = (metrics.OUTBOX.clock() - timedelta(seconds=120)).isoformat().replace("+00:00", "Z")
    fresh = received("case-fresh")
    collection.insert_many([{"_id": "case-stuck", **pending_fields([stuck])},
                            {"_id": "case-fresh", **pending_fields([fresh])}])
    relay = Relay(EventPublisher(amqp_uri, "referrals"), [collection], service="metricstest")
    with pytest.raises(UndeliverableMessage):
        relay.relay_pending(older_than_seconds=60)
    backlog, age = outbox_gauges()
    assert backlog == 2 and age >= 120
    eventlet.sleep(1)
    assert outbox_gauges()[1] >= age + 1   # reckoned at each scrape: it grows while nothing is sent

    bound_queue(amqp_uri)   # now the events have somewhere to go
    assert relay.relay_pending(older_than_seconds=60) == 1
    assert outbox_gauges()[0] == 1   # the fresh one waits out the grace: its own flush may be under way
    assert relay.relay_pending(older_than_seconds=0) == 1
    assert outbox_gauges() == (0, 0)
