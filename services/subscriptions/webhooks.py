"""Webhook delivery, to the Standard Webhooks specification, signed by the `standardwebhooks`
package.

Each request carries `webhook-id` (the first event's id: the same for every retry of the same
positions), `webhook-timestamp` (the attempt's time) and `webhook-signature`, `v1,<base64
HMAC-SHA256 of "{id}.{timestamp}.{body}">` under each secret that signs now, separated by a
space while a rotation's old and new secrets overlap.

A 2xx settles the events, a 410 asks never to be sent anything again, anything else (or no
answer in time) is a failure to retry. The answer's body is never kept or logged, and at most
a few bytes of it are read: a receiver may send anything, for as long as it likes.
"""
import collections
import functools
import logging
import time
from datetime import datetime, timezone

import eventlet
import urllib3
from standardwebhooks import Webhook

from services.subscriptions import cloudevents, receivers
from services.subscriptions.outcome import Outcome

log = logging.getLogger(__name__)

USER_AGENT = "amends-subscriptions/1 (Standard Webhooks)"
# read at most this much of an answer: enough to keep a connection for reuse after a short
# body; a longer one costs its connection instead
MAX_READ = 4096
# receivers (scheme, host, port) whose keep-alive connections are kept; the least recently
# used beyond that is closed
MOST_POOLS = 512


def signature(secrets, msg_id, at, body):
    """The `webhook-signature` header: a `v1,` signature under each secret, space-separated."""
    return " ".join(Webhook(secret).sign(msg_id, at, body) for secret in secrets)


class WebhookChannel:
    """Sends a subscription's events to its URL, over keep-alive connections: a pool per
    receiver (a subscription has at most one request in flight, so it holds at most one
    connection at a time). The pools are looked up by the URL as given, which is parsed once:
    with many subscribers, going through urllib3's PoolManager (parsing the URL and building
    the pool's key on every request) was a sixth of the CPU a request costs.

    Every connection goes only to a public address (receivers.py); this machine's loopback
    too where `allow_loopback` (development)."""

    def __init__(self, timeout=10.0, clock=None, most_pools=MOST_POOLS, allow_loopback=False):
        self.timeout = float(timeout)
        self._http_pool, self._https_pool = receivers.pool_classes(allow_loopback)
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.most_pools = most_pools
        self._pools = collections.OrderedDict()   # (scheme, host, port) -> its connection pool

    def send(self, subscription, cloud_events):
        """Deliver `cloud_events` (one request) and say what became of it."""
        at = self.clock()
        content_type, body = cloudevents.body(cloud_events, subscription.max_batch)
        secrets = subscription.live_secrets(at)
        if not secrets:
            return Outcome(settled=False, error="no secret to sign with")
        msg_id = cloud_events[0]["id"]
        headers = {
            "content-type": content_type,
            "user-agent": USER_AGENT,
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signature(secrets, msg_id, at, body),
        }
        started = time.monotonic()
        try:
            # the whole attempt, connection to answer, within the timeout, however the receiver dawdles
            with eventlet.Timeout(self.timeout):
                status = self._post(subscription.url, body.encode("utf-8"), headers)
        except eventlet.Timeout:
            return Outcome(settled=False, error=f"no answer within {self.timeout:g}s",
                           seconds=time.monotonic() - started)
        except (urllib3.exceptions.HTTPError, OSError) as error:
            # our own words: the exception's text may quote what the receiver sent
            return Outcome(settled=False, error=_described(error), seconds=time.monotonic() - started)
        seconds = time.monotonic() - started
        if 200 <= status < 300:
            return Outcome(settled=True, status=status, seconds=seconds)
        if status == 410:
            return Outcome(settled=False, gone=True, status=status, seconds=seconds)
        return Outcome(settled=False, status=status, error=f"answered {status}", seconds=seconds)

    def _post(self, url, body, headers):
        receiver, path = _target(url)
        timeout = urllib3.Timeout(connect=self.timeout, read=self.timeout)
        response = self._pool(receiver).urlopen("POST", path, body=body, headers=headers, timeout=timeout,
                                                redirect=False, retries=False, preload_content=False)
        try:
            if len(response.read(MAX_READ + 1, decode_content=False)) > MAX_READ:
                response.close()  # more than we read: the connection cannot be reused
            return response.status
        finally:
            response.release_conn()

    def _pool(self, receiver):
        pool = self._pools.get(receiver)
        if pool is not None:
            self._pools.move_to_end(receiver)
            return pool
        scheme, host, port = receiver
        kind = self._https_pool if scheme == "https" else self._http_pool
        # https: urllib3 verifies the receiver's certificate and host name by default
        pool = self._pools[receiver] = kind(host, port, maxsize=2, block=False, retries=False)
        while len(self._pools) > self.most_pools:
            # a request still using it finishes; its connection is closed instead of kept
            self._pools.popitem(last=False)[1].close()
        return pool


@functools.lru_cache(maxsize=4096)
def _target(url):
    """((scheme, host, port), the path and query to request) of a webhook URL."""
    parsed = urllib3.util.parse_url(url)
    scheme = (parsed.scheme or "http").lower()
    port = parsed.port or (443 if scheme == "https" else 80)
    return (scheme, parsed.host, port), parsed.request_uri


def _described(error):
    kinds = {
        receivers.ReceiverRefused: "refused: the receiver's address is not a public one",
        urllib3.exceptions.NameResolutionError: "the receiver's name did not resolve",
        urllib3.exceptions.NewConnectionError: "could not connect",
        urllib3.exceptions.ConnectTimeoutError: "connection timed out",
        urllib3.exceptions.ReadTimeoutError: "no answer in time",
        urllib3.exceptions.SSLError: "TLS failed",
        urllib3.exceptions.ProtocolError: "the connection broke",
        urllib3.exceptions.LocationParseError: "the URL could not be parsed",
    }
    for kind, words in kinds.items():
        if isinstance(error, kind):
            return words
    return f"the request failed ({type(error).__name__})"
