"""nameko's `@rpc` entrypoint, made to survive a broker outage.

nameko sends an RPC reply from the worker's result handler; if the broker is down at
that moment the error escapes the worker and nameko kills the whole container, so one
broker restart would take every RPC-serving process down with it. Here a reply that
cannot be sent is logged and dropped instead: the request, never acked, is redelivered
by the broker once it is back, and the caller (which times out meanwhile) asks again.
RPC is used only for reads, so answering twice is harmless.
"""
import logging

from nameko.rpc import Rpc

from shared.outages import OUTAGES

log = logging.getLogger(__name__)


class ResilientRpc(Rpc):
    def handle_result(self, message, worker_ctx, result, exc_info):
        try:
            return super().handle_result(message, worker_ctx, result, exc_info)
        except OUTAGES + (ConnectionError, OSError) as exc:
            log.warning("an RPC reply for %s was lost to %s; the caller will ask again",
                        worker_ctx.entrypoint.method_name, type(exc).__name__)
            return result, exc_info


rpc = ResilientRpc.decorator
