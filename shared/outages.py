"""Failures of the platform's own infrastructure, which waiting cures.

A consumer holds a message back through them instead of spending its retries, and
the HTTP APIs answer 503 with Retry-After, so a client knows to try again.
"""
import time

import kombu.exceptions
from amqp.exceptions import ConnectionError as AMQPConnectionError
from pymongo.errors import ConnectionFailure

OUTAGES = (ConnectionFailure, kombu.exceptions.OperationalError, AMQPConnectionError)


def through_outage(write, patience, pause=0.5, limit=5.0):
    """Run `write` until it succeeds, waiting out an outage for up to `patience` seconds
    (then the outage is raised). For a write that records something already done
    outside (an email accepted by the mail server), where giving up would have it done
    again."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return write()
        except OUTAGES:
            if time.monotonic() + pause > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, limit)
