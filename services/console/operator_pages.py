"""The operators' pages: each service's health, the queues, and each service's dead letters
(list, inspect, replay, discard), with the console's own operator credentials (pipeline.py)."""
import logging

import requests

from services.console.pipeline import service_health
from services.console.web import PageError, Redirect
from shared.messaging import topology

log = logging.getLogger(__name__)


def _operations(visit):
    operations = visit.console.operations
    if not operations.configured:
        raise PageError(503, "error.operator_unconfigured")
    return operations


def pipeline(visit):
    operations = _operations(visit)
    health = service_health(visit.console.urls, get=(visit.console.api_session or requests).get)
    try:
        queues = operations.queues()
    except Exception as error:   # the broker's management API is down or refuses us: say so, show the rest
        log.warning("queue depths unavailable: %s", type(error).__name__)
        queues = None
    return visit.render("operator.html", health=health, queues=queues)


def _service(service):
    if service not in topology.SERVICES:
        raise PageError(404, "error.not_found")
    return service


def dead_letters(visit, service):
    operations = _operations(visit)
    letters = operations.dead_letters(_service(service))
    return visit.render("dead_letters.html", service=service, letters=letters, services=topology.SERVICES,
                        done=visit.args.get("done"))


def dead_letter(visit, service, letter_id):
    operations = _operations(visit)
    letter = next((found for found in operations.dead_letters(_service(service)) if found["id"] == letter_id), None)
    if letter is None:
        raise PageError(404, "error.letter_gone")
    return visit.render("dead_letter.html", service=service, letter=letter)


def act_on_letter(visit, service, letter_id, action):
    operations = _operations(visit)
    try:
        done = operations.act(_service(service), action, letter_id)
    except SystemExit:   # deadletters refuses a letter that names no queue to go back to
        raise PageError(409, "error.letter_no_queue")
    if done is None:
        raise PageError(404, "error.letter_gone")
    log.warning("operator %s dead letter", action, extra={"fields": {"service": service, "letter": letter_id}})
    raise Redirect(f"/operator/dead-letters/{service}?done={action}")
