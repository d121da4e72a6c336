"""A webhook receiver on 127.0.0.1, for the demo (scripts/demo.py) and the subscriptions tests
and benchmark: a real HTTP server (eventlet's WSGI server, in the calling process) that checks every request with
`standardwebhooks.Webhook(secret).verify(...)` under each secret it knows when it arrives
(`verified_by`; a test may give the secrets after the subscription is made and check them all
again with `all_verify`), keeps what it was sent, and answers as the test tells it (a status
per request, or a hang).

    with Receiver(secrets=[secret]) as receiver:
        ... subscribe receiver.url ...
        receiver.wait_for(lambda r: len(r.unique_events()) >= 3)
"""
import json
import threading
import time
from dataclasses import dataclass

import eventlet
import eventlet.wsgi
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass
class Request:
    at: float                  # when it arrived (time.time())
    headers: dict
    body: str
    status: int                # what the receiver answered
    verified_by: tuple         # the secrets (of those known) that verify it
    events: list               # the CloudEvents it carried (a batch's, or the one)


class _Quiet:
    def write(self, *args):
        pass


class Receiver:
    def __init__(self, secrets=(), answers=(), default=204, path="/hook"):
        """`answers`: the status of each request in turn (then `default`); a status of None
        hangs the request until `release()`."""
        self.secrets = list(secrets)
        self.answers = list(answers)
        self.default = default
        self.path = path
        self.requests = []
        self._held = eventlet.event.Event()
        self._lock = threading.Lock()
        self._socket = None
        self._server = None

    # --- running -------------------------------------------------------------------

    def __enter__(self):
        self._socket = eventlet.listen(("127.0.0.1", 0))
        self._port = self._socket.getsockname()[1]   # kept: the url still says where it was once stopped
        self._server = eventlet.spawn(eventlet.wsgi.server, self._socket, self._app, log=_Quiet(),
                                      log_output=False, socket_timeout=30)
        return self

    def __exit__(self, *exc):
        self.release()
        self._server.kill()
        self._socket.close()

    @property
    def url(self):
        return f"http://127.0.0.1:{self._port}{self.path}"

    def release(self):
        """End every hanging request (they answer `default`), and hang no more."""
        if not self._held.ready():
            self._held.send()

    # --- what it was sent --------------------------------------------------------------

    def unique_events(self):
        """Every event received, once per id (a retry's copy dropped), in the order first seen."""
        seen, events = set(), []
        for request in list(self.requests):
            for event in request.events:
                if event["id"] not in seen:
                    seen.add(event["id"])
                    events.append(event)
        return events

    def all_verify(self, secret):
        """Whether every request so far verifies under `secret` (checked again now)."""
        return bool(self.requests) and all(verifies(secret, r) for r in list(self.requests))

    def wait_for(self, predicate, timeout=30):
        """The predicate's first true answer; AssertionError if there is none within `timeout`."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = predicate(self)
            if value:
                return value
            eventlet.sleep(0.05)
        raise AssertionError(f"condition not met within {timeout}s")

    # --- the WSGI app ------------------------------------------------------------------------

    def _app(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length).decode("utf-8")
        headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items()
                   if key.startswith("HTTP_")}
        headers["content-type"] = environ.get("CONTENT_TYPE", "")
        request = Request(time.time(), headers, body, None, (), [])
        verified_by = tuple(s for s in self.secrets if verifies(s, request))
        with self._lock:
            status = self.answers.pop(0) if self.answers else self.default
        if status is None:
            self._held.wait()
            status = self.default
        parsed = json.loads(body) if body else []
        self.requests.append(Request(time.time(), headers, body, status, verified_by,
                                     parsed if isinstance(parsed, list) else [parsed]))
        start_response(f"{status} Answer", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]


def verifies(secret, request):
    """Whether `request` (its body and headers) verifies under `secret`, checked now."""
    try:
        Webhook(secret).verify(request.body, request.headers)
        return True
    except WebhookVerificationError:
        return False
