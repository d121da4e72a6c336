"""Failures of the platform's own infrastructure, which waiting cures.

A consumer holds a message back through them instead of spending its retries, and
the HTTP APIs answer 503 with Retry-After, so a client knows to try again.
"""
import kombu.exceptions
from amqp.exceptions import ConnectionError as AMQPConnectionError
from pymongo.errors import ConnectionFailure

OUTAGES = (ConnectionFailure, kombu.exceptions.OperationalError, AMQPConnectionError)
