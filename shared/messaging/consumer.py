"""The `event_consumer` entrypoint: validated events in, no message ever acked away.

- A body that is not JSON, or an event that fails its schema, is dead-lettered at
  once with the reason: retrying cannot fix it.
- A handler that raises is retried after each delay in AMQP_RETRY_DELAYS, through
  per-delay holding queues, and dead-lettered with the error after the last one.
- Every retry and dead letter is confirmed by the broker before the original is
  acked, so a crash at any point leaves the message in one queue or the other.
"""
import json
import logging
from functools import partial

from nameko.exceptions import ContainerBeingKilled
from nameko.extensions import Entrypoint
from nameko.messaging import QueueConsumer

from shared.config import settings_for
from shared.events import InvalidEvent, validate_event
from shared.messaging import topology
from shared.messaging.publisher import publish_raw

log = logging.getLogger(__name__)

ATTEMPT_HEADER = "x-amends-attempt"


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
        self.queue = topology.consumer_queue(service, self.consumer)
        self.queue_consumer.register_provider(self)

    def stop(self):
        self.queue_consumer.unregister_provider(self)

    def handle_message(self, message):
        try:
            event = validate_event(json.loads(message.body))
        except (ValueError, UnicodeDecodeError) as exc:
            reason = str(exc) if isinstance(exc, InvalidEvent) else "malformed JSON body"
            self._dead_letter(message, reason, attempt=self._attempt(message))
            return
        context = {
            "correlationid": event["correlationid"],
            "causationid": event["id"],
            "event_type": event["type"],
        }
        try:
            self.container.spawn_worker(
                self, (event,), {},
                context_data=context,
                handle_result=partial(self._handle_result, message),
            )
        except ContainerBeingKilled:
            self.queue_consumer.requeue_message(message)

    def _handle_result(self, message, worker_ctx, result=None, exc_info=None):
        if exc_info is None:
            self.queue_consumer.ack_message(message)
            return result, exc_info
        attempt = self._attempt(message)
        error = f"{exc_info[0].__name__}: {safe_error_text(exc_info[1])}"
        if attempt <= len(self.settings.retry_delays):
            self._retry(message, attempt)
        else:
            self._dead_letter(message, error, attempt)
        return result, exc_info

    @staticmethod
    def _attempt(message):
        return int((message.headers or {}).get(ATTEMPT_HEADER, 1))

    def _retry(self, message, attempt):
        holding = topology.retry_queue(self.queue.name, self.settings.retry_delays[attempt - 1])
        headers = dict(message.headers or {})
        headers[ATTEMPT_HEADER] = attempt + 1
        headers.setdefault("x-amends-original-exchange", message.delivery_info.get("exchange", ""))
        headers.setdefault("x-amends-original-routing-key", message.delivery_info.get("routing_key", ""))
        publish_raw(
            self.settings.amqp_uri, message.body,
            exchange="", routing_key=holding.name, headers=headers, declare=[holding],
        )
        self.queue_consumer.ack_message(message)

    def _dead_letter(self, message, reason, attempt):
        headers = dict(message.headers or {})
        headers.update({
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
