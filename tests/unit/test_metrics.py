"""The metrics' pure parts: route templates, the outbox and ledger readings, the exposition,
and /metrics on every service."""
import inspect
import os
import re
from datetime import datetime, timedelta, timezone

import pytest
import yaml
from nameko.web.handlers import HttpRequestHandler
from prometheus_client import REGISTRY, CollectorRegistry

from services.matching.service import MatchingService
from services.national.service import NationalService
from services.notifications.service import NotificationsService
from services.records.service import RecordsService
from services.referrals.service import ReferralsService
from services.statistics.service import StatisticsService
from shared import metrics
from shared.http_server import route_template
from tests.scrapes import Scrape, assert_no_ids, moved

SERVICES = (ReferralsService, MatchingService, NotificationsService, RecordsService, StatisticsService,
            NationalService)
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)


def test_a_route_is_named_by_its_template_never_its_ids():
    assert route_template("/v1/cases/<string:case_id>") == "/v1/cases/<case_id>"
    assert route_template("/v1/cases/<case_id>/sessions/<string:session_id>/cancel") == \
        "/v1/cases/<case_id>/sessions/<session_id>/cancel"
    assert route_template("/v1/surveys/<string:token>") == "/v1/surveys/<token>"
    assert route_template("/metrics") == "/metrics"


@pytest.mark.parametrize("service", SERVICES, ids=[s.name for s in SERVICES])
def test_every_service_answers_metrics_without_a_key(service):
    found = [(entrypoint.method, entrypoint.url, member)
             for _, member in inspect.getmembers(service, inspect.isfunction)
             for entrypoint in getattr(member, "nameko_entrypoints", ())
             if isinstance(entrypoint, HttpRequestHandler) and entrypoint.url == "/metrics"]
    assert [(method, url) for method, url, _ in found] == [("GET", "/metrics")]
    assert found[0][2].policy.scope == "public"


def exposed(registry):
    body, content_type = metrics.exposition(None, registry)
    assert content_type.startswith("text/plain")
    return Scrape(body.decode("utf-8"))


def test_the_outbox_backlog_is_what_the_relay_last_found_and_its_age_is_reckoned_at_the_scrape():
    registry = CollectorRegistry()
    now = {"at": NOW}
    backlog = metrics.OutboxBacklog(registry, clock=lambda: now["at"])
    assert not exposed(registry).has("amends_outbox_backlog_events")   # nothing until the relay has looked
    backlog.note("referrals", "cases", 3, NOW - timedelta(seconds=40))
    backlog.note("referrals", "contact_log", 0, None)
    scrape = exposed(registry)
    assert scrape.value("amends_outbox_backlog_events", service="referrals", collection="cases") == 3
    assert scrape.value("amends_outbox_oldest_event_age_seconds", service="referrals", collection="cases") == 40
    assert scrape.has("amends_outbox_oldest_event_age_seconds", service="referrals", collection="contact_log")
    assert scrape.value("amends_outbox_oldest_event_age_seconds", service="referrals", collection="contact_log") == 0
    now["at"] = NOW + timedelta(seconds=20)   # the relay has not emptied it: it ages between its ticks
    assert exposed(registry).value("amends_outbox_oldest_event_age_seconds", collection="cases") == 60
    backlog.note("referrals", "cases", 0, None)
    scrape = exposed(registry)
    assert scrape.value("amends_outbox_backlog_events", collection="cases") == 0
    assert scrape.value("amends_outbox_oldest_event_age_seconds", collection="cases") == 0


def test_a_reading_says_nothing_until_it_is_noted():
    registry = CollectorRegistry()
    size = metrics.Reading("amends_test_entries", "Entries.", registry)
    assert not exposed(registry).has("amends_test_entries")   # a standby that has written nothing
    size.note(0)
    assert exposed(registry).has("amends_test_entries")
    size.note(1234)
    assert exposed(registry).value("amends_test_entries") == 1234


def test_a_dead_letter_is_counted_by_a_known_reason_and_an_unknown_type_when_it_has_none():
    before = Scrape(metrics.exposition()[0].decode())
    metrics.dead_lettered("unit.queue", "malformed")
    metrics.dead_lettered("unit.queue", "failed", "referral.received")
    after = Scrape(metrics.exposition()[0].decode())
    assert moved(before, after, "amends_dead_letters_total", queue="unit.queue", type="unknown",
                 reason="malformed") == 1
    assert moved(before, after, "amends_dead_letters_total", queue="unit.queue", type="referral.received",
                 reason="failed") == 1
    with pytest.raises(ValueError):
        metrics.dead_lettered("unit.queue", "the handler said: Jane Doe")   # never a free text


def test_deadline_events_count_as_due_or_missed_by_their_clock():
    before = Scrape(metrics.exposition()[0].decode())
    metrics.deadline_announced("case.deadline_due", "victim_told_about_rj")
    metrics.deadline_announced("case.deadline_missed", "support_referral")
    after = Scrape(metrics.exposition()[0].decode())
    assert moved(before, after, "amends_deadlines_due_total", deadline="victim_told_about_rj") == 1
    assert moved(before, after, "amends_deadlines_missed_total", deadline="support_referral") == 1
    assert moved(before, after, "amends_deadlines_missed_total", deadline="victim_told_about_rj") == 0
    with pytest.raises(KeyError):
        metrics.deadline_announced("case.transitioned", "victim_told_about_rj")


def test_an_answer_is_counted_by_status_and_timed_by_route():
    before = Scrape(metrics.exposition()[0].decode())
    metrics.answered("GET", "/v1/unit/<case_id>", 404, 0.003)
    metrics.answered("GET", "/v1/unit/<case_id>", 200, 0.2)
    after = Scrape(metrics.exposition()[0].decode())
    assert moved(before, after, "amends_http_requests_total", route="/v1/unit/<case_id>", status="404") == 1
    assert moved(before, after, "amends_http_requests_total", route="/v1/unit/<case_id>", status="200") == 1
    assert moved(before, after, "amends_http_request_duration_seconds_count", method="GET",
                 route="/v1/unit/<case_id>") == 2
    assert moved(before, after, "amends_http_request_duration_seconds_bucket", route="/v1/unit/<case_id>",
                 le="0.005") == 1


def test_openmetrics_is_served_to_a_scraper_that_asks_for_it():
    body, content_type = metrics.exposition("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.decode().rstrip().endswith("# EOF")


def test_the_id_check_finds_an_id_in_a_label():
    scrape = Scrape('amends_x_total{route="/v1/cases/<case_id>"} 1\n')
    assert_no_ids(scrape, ["case-7"])
    leaky = Scrape('amends_x_total{route="/v1/cases/3f2c1a9e-5b7d-4c11-9a0e-2b6f8d4e1c33"} 1\n')
    with pytest.raises(AssertionError):
        assert_no_ids(leaky, [])
    with pytest.raises(AssertionError):
        assert_no_ids(Scrape('amends_x_total{route="/v1/cases/case-7"} 1\n'), ["case-7"])


# -- docs/operations.md, kept in step with what the services expose --------------------------

OPERATIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                          "docs", "operations.md")


def exposed_names():
    """The names of our series as a scrape shows them (a counter's with its `_total`)."""
    return {family.name + ("_total" if family.type == "counter" else "")
            for family in REGISTRY.collect() if family.name.startswith("amends_")}


def operations_page():
    with open(OPERATIONS) as page:
        return page.read()


def test_the_operations_page_lists_every_metric_and_only_those():
    listed = set(re.findall(r"^\| `(amends_\w+)` \|", operations_page(), re.M))
    assert len(exposed_names()) >= 13
    assert listed == exposed_names()


def test_the_example_alert_rules_are_rules_over_metrics_that_exist():
    page = operations_page()
    block = page[page.index("## Example alert rules"):]
    rules = yaml.safe_load(block[block.index("```yaml") + len("```yaml"):block.index("```", block.index("```yaml") + 7)])
    rules = rules["groups"][0]["rules"]
    assert len(rules) >= 9
    named = set()
    for rule in rules:
        assert set(rule) >= {"alert", "expr"} and rule["alert"].startswith("Amends")
        named |= {re.sub(r"_(bucket|count|sum)$", "", name) for name in re.findall(r"amends_\w+", rule["expr"])}
    assert named <= exposed_names()
    # each kind of alert the operators asked for is among them
    for name in ("amends_dead_letters_total", "amends_outbox_oldest_event_age_seconds", "amends_deadlines_missed_total",
                 "amends_http_requests_total", "amends_ledger_append_duration_seconds"):
        assert name in named
    assert any("rabbitmq_detailed_queue_messages_ready" in rule["expr"] for rule in rules)
