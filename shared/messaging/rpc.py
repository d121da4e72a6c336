"""nameko's `@rpc` entrypoint and `RpcProxy`, made to survive a broker outage and to
know who is calling.

nameko sends an RPC reply from the worker's result handler; if the broker is down at
that moment the error escapes the worker and nameko kills the whole container, so one
broker restart would take every RPC-serving process down with it. Here a reply that
cannot be sent is logged and dropped instead: the request, never acked, is redelivered
by the broker once it is back, and the caller (which times out meanwhile) asks again.
RPC is used only for reads, so answering twice is harmless.

Callers are known by the broker-validated `user_id` of the request (the proxy here
sets it to its own broker user; the broker refuses any other), never by an argument:
a call the table in shared.messaging.permissions does not allow is refused before any
worker runs, logged (caller and method only), and answered with CallerRefused.
"""
import logging
from contextlib import contextmanager

import eventlet
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.exceptions import UnknownService
from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc, RpcProxy, ServiceProxy

from shared.messaging import identity
from shared.messaging.permissions import identity_of, may_call, uri_user
from shared.outages import OUTAGES

log = logging.getLogger(__name__)

# The worker context key holding the caller's identity (a service name or "operator").
CALLER = "amends_caller"


class CallerRefused(Exception):
    """This caller may not call this method."""


class ResilientRpc(Rpc):
    def setup(self):
        super().setup()
        self.unchecked = identity.warn_if_unchecked(self.container.config, f"RPC {self.method_name}")

    def unpack_message_headers(self, message):
        # a caller's own say-so about who it is is dropped; only the broker's word counts
        context = super().unpack_message_headers(message)
        context[CALLER] = identity_of((message.properties or {}).get("user_id"))
        return context

    def handle_message(self, body, message):
        service = self.container.service_name
        caller = identity_of((message.properties or {}).get("user_id"))
        if not self.unchecked and not may_call(caller, service, self.method_name):
            log.warning("refused an RPC call to %s.%s from %s", service, self.method_name, caller or "an unknown caller")
            # raised to nameko's RpcConsumer, which answers the caller with the error and acks
            raise CallerRefused(f"{caller or 'an unknown caller'} may not call {service}.{self.method_name}")
        return super().handle_message(body, message)

    def handle_result(self, message, worker_ctx, result, exc_info):
        try:
            return super().handle_result(message, worker_ctx, result, exc_info)
        except OUTAGES + (ConnectionError, OSError) as exc:
            log.warning("an RPC reply for %s was lost to %s; the caller will ask again",
                        worker_ctx.entrypoint.method_name, type(exc).__name__)
            return result, exc_info


class IdentifiedRpcProxy(RpcProxy):
    """nameko's RpcProxy, its requests marked with the caller's own broker user."""

    def get_dependency(self, worker_ctx):
        options = dict(self.options, user_id=uri_user(self.container.config[AMQP_URI_CONFIG_KEY]))
        return ServiceProxy(worker_ctx, self.target_service, self.rpc_reply_listener, **options)


rpc = ResilientRpc.decorator


class Caller(DependencyProvider):
    """The calling service of the current RPC worker, as the broker vouched for it
    (None outside RPC, or when the caller is no service of ours)."""

    def get_dependency(self, worker_ctx):
        return worker_ctx.data.get(CALLER)


@contextmanager
def following_ledger(records, timeout, log):
    """`read_page(after, limit)` over records' `entries_after` RPC (an IdentifiedRpcProxy), each
    call bounded by `timeout` seconds, for a service that follows the ledger (subscriptions,
    reports). Records not answering in time, or not serving yet, is logged as a warning and the
    round ends: the caller's timer tries again, so neither is worth a traceback."""
    def read_page(after, limit):
        with eventlet.Timeout(timeout):
            return records.entries_after.call_async(after, limit).result()
    try:
        yield read_page
    except eventlet.Timeout:
        log.warning("records did not answer the feed in %gs; trying again", timeout)
    except UnknownService:   # records' RPC queue is not there yet
        log.warning("records is not serving its feed; trying again")
