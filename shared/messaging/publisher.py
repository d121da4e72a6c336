"""Publishing to RabbitMQ: persistent, confirmed and mandatory.

A publish returns only once the broker has confirmed it, and raises when the broker
could not route it, so a caller that gets no exception knows the message is safe.
"""
import json

from nameko.amqp.publish import Publisher, UndeliverableMessage

from shared import metrics
from shared.messaging import topology
from shared.messaging.permissions import uri_user

__all__ = ["EventPublisher", "UndeliverableMessage", "publish_raw"]


def _publisher(amqp_uri):
    # `user_id`: the broker refuses a message whose user_id is not the connection's user,
    # so a consumer can trust it to name the sender (shared.messaging.permissions)
    return Publisher(amqp_uri, use_confirms=True, mandatory=True, delivery_mode=2, user_id=uri_user(amqp_uri))


class EventPublisher:
    """Sends validated CloudEvents to their producer's events exchange."""

    def __init__(self, amqp_uri, service):
        self._publisher = _publisher(amqp_uri)
        self._exchange = topology.events_exchange(service)

    def publish(self, event, patient=True):
        """`patient`: ride out a broker restart with kombu's retries. An outbox flush on a
        request's path is not patient: its events are safe in the document, and the
        relay timer, which is, sends them once the broker is back."""
        self._publisher.publish(
            json.dumps(event),
            exchange=self._exchange,
            routing_key=event["type"],
            content_type="application/json",
            content_encoding="utf-8",
            serializer=None,
            message_id=event["id"],
            correlation_id=event["correlationid"],
            retry=patient,
        )
        metrics.EVENTS_PUBLISHED.labels(event["type"]).inc()


def publish_raw(amqp_uri, body, *, exchange, routing_key, headers, declare=()):
    """Publish bytes as they are (a retry or a dead letter keeps the original body)."""
    _publisher(amqp_uri).publish(
        body,
        exchange=exchange,
        routing_key=routing_key,
        headers=headers,
        serializer=None,
        content_type="application/json",
        content_encoding="utf-8",
        declare=list(declare),
        retry=True,
    )
