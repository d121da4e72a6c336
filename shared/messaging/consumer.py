"""The `event_consumer` entrypoint: validated events in, no message ever acked away.

- A body that is not JSON, or an event that fails its schema, is dead-lettered at
  once with the reason: retrying cannot fix it.
- So is an event its sender may not send: the broker-validated `user_id` (or, after a
  retry hop, the publisher the consumer recorded itself) must be the service that
  produces its type and that its `source` names (shared.messaging.identity).
- An event this consumer has already handled (its inbox says so) is acked and skipped.
- A handler that raises is retried after each delay in AMENDS_RETRY_DELAYS, through
  per-delay holding queues, and dead-lettered with the error after the last one.
- An outage of the database or the broker is not the message's fault: the message is
  held back with the longest delay, as often as it takes, without using up its retries.
- A handler that raises `TooEarly` (the event depends on one not yet handled here) is
  held back the same way, up to HOLD_LIMIT times, then dead-lettered.
- Every retry and dead letter is confirmed by the broker before the original is
  acked, so a crash at any point leaves the message in one queue or the other.
- Each delivery is counted by its queue, event type and outcome, each handler timed, and
  each retry and dead letter counted (shared.metrics).
"""
import json
import logging
import time
import uuid
from contextlib import contextmanager
from functools import partial

from nameko.exceptions import ContainerBeingKilled
from nameko.extensions import Entrypoint
from nameko.messaging import QueueConsumer

from shared import metrics
from shared.config import settings_for
from shared.storage import connect
from shared.storage.indexes import ensure_indexes
from shared.events import InvalidEvent, validate_event
from shared.messaging import identity, topology
from shared.messaging.inbox import Inbox
from shared.messaging.publisher import publish_raw
from shared.outages import OUTAGES

log = logging.getLogger(__name__)

ATTEMPT_HEADER = "x-amends-attempt"
HELD_HEADER = "x-amends-held"
# Holds allowed for an event that came too early: with the default delays, half an hour.
HOLD_LIMIT = 60


class TooEarly(RuntimeError):
    """The event depends on another that this service has not handled yet (events can
    overtake each other across retries and restarts). Waiting is the cure, not a retry."""


class EventQueueConsumer(QueueConsumer):
    """nameko's QueueConsumer, handing over raw messages so that undecodable
    bodies reach our dead-letter path instead of killing the consumer thread."""

    def get_consumers(self, consumer_cls, channel):
        for provider in self._providers:
            consumer = consumer_cls(
                queues=[provider.queue],
                on_message=partial(self.handle_message, provider),
            )
            consumer.qos(prefetch_count=self.prefetch_count)
            self._consumers[provider] = consumer
        return self._consumers.values()

    def handle_message(self, provider, message):
        self.container.spawn_managed_thread(
            partial(provider.handle_message, message),
            identifier=f"{type(provider).__name__}.handle_message",
        )


class EventConsumer(Entrypoint):
    queue_consumer = EventQueueConsumer()

    def __init__(self, consumer, **kwargs):
        self.consumer = consumer
        super().__init__(**kwargs)

    def setup(self):
        service = self.container.service_name
        self.settings = settings_for(service, self.container.config)
        self.queue = self.consumer_queue(service)
        self.unchecked = identity.warn_if_unchecked(self.container.config, self.queue.name)
        self._db = connect(service, self.settings)
        self.queue_consumer.register_provider(self)

    def start(self):
        ensure_indexes(self._db, Inbox.indexes, self.settings.ferretdb_postgresql_url)

    def stop(self):
        self.queue_consumer.unregister_provider(self)

    def consumer_queue(self, service):
        return topology.consumer_queue(service, self.consumer, declare_exchanges=False)

    def context_of(self, event, message):
        """What the worker and its log lines know of the event."""
        return {
            "correlationid": event["correlationid"],
            "causationid": event["id"],
            "event_type": event["type"],
            # which delivery of this message this is (1 the first time); retries count, holds do not
            "attempt": self._attempt(message),
        }

    def validated(self, message):
        """The message's event, or None once it has been dead-lettered as unfit."""
        try:
            event = validate_event(json.loads(message.body))
            if not self.unchecked:
                identity.check_event(event, self._publisher(message))
        except (ValueError, UnicodeDecodeError) as exc:
            if isinstance(exc, identity.NotTheirs):
                reason, kind = f"refused: {exc}", "refused"
            elif isinstance(exc, InvalidEvent):
                reason, kind = str(exc), "invalid"
            else:
                reason, kind = "malformed JSON body", "malformed"
            with self._broker_may_be_gone(message):
                self._dead_letter(message, reason, attempt=self._attempt(message), kind=kind)
            return None
        return event

    def _publisher(self, message):
        return identity.publisher_of(message.properties, message.headers, self.container.service_name)

    def _forward_headers(self, message):
        """The headers a retry or dead letter carries on: the sender we believe in, never
        one a message claimed for itself."""
        headers = dict(message.headers or {})
        headers.pop(identity.PUBLISHER_HEADER, None)
        publisher = self._publisher(message)
        if publisher:
            headers[identity.PUBLISHER_HEADER] = publisher
        return headers

    def handle_message(self, message):
        event = self.validated(message)
        if event is None:
            return
        try:
            if self.inbox().handled(event["id"]):
                log.info("skipped %s %s: already handled by %s", event["type"], event["id"], self.queue.name)
                self.queue_consumer.ack_message(message)
                metrics.consumed(self.queue.name, event["type"], "duplicate")
                return
        except Exception as exc:  # noqa: BLE001
            # the database could not say (an outage, or a server stopping mid-request: FerretDB
            # answers "context canceled"); an error escaping here would kill the container
            with self._broker_may_be_gone(message):
                self._hold_back(message, exc)
                metrics.consumed(self.queue.name, event["type"], "held")
            return
        context = self.context_of(event, message)
        try:
            self.container.spawn_worker(
                self, (event,), {},
                context_data=context,
                handle_result=partial(self._timed_result, time.perf_counter(), message, event),
            )
        except ContainerBeingKilled:
            self.queue_consumer.requeue_message(message)

    def inbox(self):
        return Inbox(self._db, self.queue.name)

    def _timed_result(self, started, message, event, worker_ctx, result=None, exc_info=None):
        metrics.HANDLER_SECONDS.labels(self.queue.name, event["type"]).observe(time.perf_counter() - started)
        return self._handle_result(message, event, worker_ctx, result, exc_info)

    def _handle_result(self, message, event, worker_ctx, result=None, exc_info=None):
        with self._broker_may_be_gone(message):
            self._settle(message, event, exc_info)
        return result, exc_info

    def _settle(self, message, event, exc_info):
        """Ack a handled message, or move it on: held back, retried or dead-lettered."""
        if exc_info is None:
            try:
                self.inbox().record(event)
            except Exception as exc:  # noqa: BLE001
                # handled, but unrecorded: a redelivery is harmless (handlers are idempotent by
                # their own keys), while an error escaping here would kill the whole container
                log.warning("inbox record deferred for %s: %s", event["id"], type(exc).__name__)
            self.queue_consumer.ack_message(message)
            metrics.consumed(self.queue.name, event["type"], "handled")
            return
        if isinstance(exc_info[1], OUTAGES):
            self._hold_back(message, exc_info[1])
            metrics.consumed(self.queue.name, event["type"], "held")
            return
        held = int((message.headers or {}).get(HELD_HEADER, 0))
        if isinstance(exc_info[1], TooEarly) and held < HOLD_LIMIT:
            self._hold_back(message, exc_info[1], held=held + 1)
            metrics.consumed(self.queue.name, event["type"], "held")
            return
        attempt = self._attempt(message)
        error = f"{exc_info[0].__name__}: {safe_error_text(exc_info[1])}"
        if attempt <= len(self.settings.retry_delays):
            self._retry(message, attempt)
            metrics.RETRIES.labels(self.queue.name, event["type"]).inc()
        else:
            self._dead_letter(message, error, attempt, event_type=event["type"])
        metrics.consumed(self.queue.name, event["type"], "failed")

    @contextmanager
    def _broker_may_be_gone(self, message):
        """A hold, retry or dead letter is published before the original is acked; if the
        broker is away longer than the publisher's own retries, the error must not escape:
        nameko would kill the whole container for it. The message, never acked, goes back
        to its queue (or, its channel gone with the broker, the broker redelivers it)."""
        try:
            yield
        except OUTAGES + (OSError,) as exc:
            log.warning("%s: a message from %s goes back to its queue", type(exc).__name__, self.queue.name)
            try:
                self.queue_consumer.requeue_message(message)
            except Exception:  # noqa: BLE001  the channel went with the broker
                pass

    def _hold_back(self, message, exc, held=None):
        """Wait out an outage or an early arrival: the longest delay, the attempt count untouched."""
        log.warning("%s: holding a message from %s back", type(exc).__name__, self.queue.name)
        delay = max(self.settings.retry_delays) if self.settings.retry_delays else 5.0
        self._delay(message, delay, self._attempt(message), {HELD_HEADER: held} if held else {})

    @staticmethod
    def _attempt(message):
        return int((message.headers or {}).get(ATTEMPT_HEADER, 1))

    def _retry(self, message, attempt):
        self._delay(message, self.settings.retry_delays[attempt - 1], attempt + 1)

    def _delay(self, message, delay, next_attempt, extra_headers=None):
        holding = topology.retry_queue(self.queue.name, delay)
        headers = self._forward_headers(message)
        headers.update(extra_headers or {})
        headers[ATTEMPT_HEADER] = next_attempt
        headers.setdefault("x-amends-original-exchange", message.delivery_info.get("exchange", ""))
        headers.setdefault("x-amends-original-routing-key", message.delivery_info.get("routing_key", ""))
        publish_raw(
            self.settings.amqp_uri, message.body,
            exchange="", routing_key=holding.name, headers=headers, declare=[holding],
        )
        self.queue_consumer.ack_message(message)

    def _dead_letter(self, message, reason, attempt, kind="failed", event_type=None):
        """Move a message to the service's dead-letter queue, with `reason` attached; counted
        by `kind` (one of metrics.DEAD_LETTER_REASONS) and `event_type` (None: a message not
        known to be a valid event)."""
        headers = self._forward_headers(message)
        headers.update({
            "x-amends-dead-letter-id": uuid.uuid4().hex[:12],
            "x-amends-error": reason[:1000],
            "x-amends-queue": self.queue.name,
            "x-amends-attempts": attempt,
        })
        headers.setdefault("x-amends-original-exchange", message.delivery_info.get("exchange", ""))
        headers.setdefault("x-amends-original-routing-key", message.delivery_info.get("routing_key", ""))
        service = self.container.service_name
        publish_raw(
            self.settings.amqp_uri, message.body,
            exchange=topology.dead_letter_exchange(service), routing_key=self.queue.name,
            headers=headers, declare=[topology.dead_letter_queue(service)],
        )
        log.warning("dead-lettered a message from %s: %s", self.queue.name, reason[:300])
        self.queue_consumer.ack_message(message)
        metrics.dead_lettered(self.queue.name, kind, event_type)


def safe_error_text(exc):
    """An exception's text when it is ours to vouch for; else only its type.

    Driver errors can quote the data they choked on (a duplicate key quotes the key),
    and that data may be personal, so their text never leaves the process.
    """
    module = type(exc).__module__ or ""
    if module.startswith(("shared.", "services.")) or isinstance(exc, (InvalidEvent,)):
        return str(exc)[:500]
    return "(details withheld)"


event_consumer = EventConsumer.decorator
