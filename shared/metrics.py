"""What a service process counts and times, for Prometheus to scrape from `GET /metrics`.

Every metric is defined here, named `amends_...`, in prometheus-client's default registry:
a process runs one service, and Prometheus's own `job` and `instance` labels say which.
(In a test that runs several services in one process they share the registry; the labels
below keep their series apart.) docs/operations.md lists each metric and its alerts.

Labels never carry personal data or ids: only a route's template (`/v1/cases/<case_id>`,
never the path a request gave), a status, an event type from the catalogue, a consumer's
queue, a store's collection, a deadline's name and an outcome, all from short closed sets.

The outbox backlog and the ledger's size are readings, not counts: the relay timer and the
ledger's writer note what they last saw (`OUTBOX.note`, `LEDGER_ENTRIES.note`), and a
scrape reports it; a scrape itself never touches the database, so it answers during an outage.
"""
from datetime import datetime, timezone

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

# -- HTTP (shared.http_server) -------------------------------------------------------

HTTP_REQUESTS = Counter(
    "amends_http_requests", "HTTP requests answered, by route template and status.",
    ["method", "route", "status"])
HTTP_SECONDS = Histogram(
    "amends_http_request_duration_seconds", "Time to answer an HTTP request, by route template.",
    ["method", "route"])

# -- events (shared.messaging) --------------------------------------------------------

# a delivery of a valid event: handled, skipped as already handled (duplicate), held back
# (an outage, or an event that came too early) or failed (then retried or dead-lettered)
CONSUMED_OUTCOMES = ("handled", "duplicate", "held", "failed")
EVENTS_CONSUMED = Counter(
    "amends_events_consumed", "Deliveries of valid events to a consumer, by type and outcome.",
    ["queue", "type", "outcome"])
HANDLER_SECONDS = Histogram(
    "amends_event_handler_duration_seconds", "Time a consumer's handler took over one event, by type.",
    ["queue", "type"])
RETRIES = Counter(
    "amends_event_retries", "Events sent to a holding queue to be tried again after their handler failed.",
    ["queue", "type"])
# why a message was dead-lettered: not JSON, not a valid event, sent by a service that may
# not send it, not for this ledger (records' admission), or its handler failed every retry
DEAD_LETTER_REASONS = ("malformed", "invalid", "refused", "not_admitted", "failed")
DEAD_LETTERS = Counter(
    "amends_dead_letters", "Messages moved to the service's dead-letter queue, by reason.",
    ["queue", "type", "reason"])
EVENTS_PUBLISHED = Counter(
    "amends_events_published", "Events the broker confirmed, by type.", ["type"])
# a message that is not a valid event has no type we may repeat: it could say anything
UNKNOWN_TYPE = "unknown"

# -- Victims' Code clocks (referrals) --------------------------------------------------

DEADLINES_DUE = Counter(
    "amends_deadlines_due", "Deadline clocks announced as due (case.deadline_due), by deadline.", ["deadline"])
DEADLINES_MISSED = Counter(
    "amends_deadlines_missed", "Deadline clocks announced as missed (case.deadline_missed), by deadline.",
    ["deadline"])

# -- the ledger (records) ------------------------------------------------------------------

LEDGER_APPEND_SECONDS = Histogram(
    "amends_ledger_append_duration_seconds", "Time to append one batch of events to the ledger.",
    buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, float("inf")))


class Reading(Collector):
    """A gauge whose value is the last one noted, with no sample until one is: the ledger's
    size is known to its writer, and a standby that has written nothing says nothing."""

    def __init__(self, name, documentation, registry=REGISTRY):
        self.name, self.documentation = name, documentation
        self.value = None
        registry.register(self)

    def note(self, value):
        self.value = value

    def collect(self):
        family = GaugeMetricFamily(self.name, self.documentation)
        if self.value is not None:
            family.add_metric([], self.value)
        yield family


LEDGER_ENTRIES = Reading("amends_ledger_entries", "Entries in the ledger (its tree size), as its writer last saw it.")


class OutboxBacklog(Collector):
    """The events waiting in a service's outboxes, as its relay timer last found them: how
    many, and how long the oldest has waited (reckoned at the scrape, so an outbox the relay
    cannot empty is seen to age between its ticks)."""

    def __init__(self, registry=REGISTRY, clock=None):
        self.seen = {}   # (service, collection): (events waiting, time of the oldest or None)
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        registry.register(self)

    def note(self, service, collection, count, oldest):
        """What the relay found waiting in one collection: `count` events, the oldest made at
        `oldest` (an aware datetime; None when none are waiting)."""
        self.seen[(service, collection)] = (count, oldest)

    def collect(self):
        backlog = GaugeMetricFamily("amends_outbox_backlog_events",
                                    "Events saved but not yet published, as the relay timer last found them.",
                                    labels=["service", "collection"])
        age = GaugeMetricFamily("amends_outbox_oldest_event_age_seconds",
                                "How long the oldest event waiting in an outbox has waited (0: none waiting).",
                                labels=["service", "collection"])
        now = self.clock()
        for (service, collection), (count, oldest) in sorted(self.seen.items()):
            backlog.add_metric([service, collection], count)
            age.add_metric([service, collection], max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
        yield backlog
        yield age


OUTBOX = OutboxBacklog()


# -- the shared code's calls ------------------------------------------------------------

def answered(method, route, status, seconds):
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_SECONDS.labels(method, route).observe(seconds)


def consumed(queue, event_type, outcome):
    EVENTS_CONSUMED.labels(queue, event_type, outcome).inc()


def dead_lettered(queue, reason, event_type=None):
    if reason not in DEAD_LETTER_REASONS:
        raise ValueError(f"not a dead-letter reason: {reason!r}")
    DEAD_LETTERS.labels(queue, event_type or UNKNOWN_TYPE, reason).inc()


_DEADLINE_COUNTERS = {"case.deadline_due": DEADLINES_DUE, "case.deadline_missed": DEADLINES_MISSED}


def deadline_announced(event_type, deadline):
    """Count a case.deadline_due or case.deadline_missed event of the clock `deadline`."""
    _DEADLINE_COUNTERS[event_type].labels(deadline).inc()


def exposition(accept_header=None, registry=REGISTRY):
    """(body, content type) of a scrape, in the format the scraper asked for (Prometheus
    text, or OpenMetrics)."""
    encode, content_type = choose_encoder(accept_header or "")
    return encode(registry), content_type
