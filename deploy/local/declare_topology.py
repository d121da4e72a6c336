"""Declare every exchange, queue and binding before any service or producer starts."""
import eventlet

eventlet.monkey_patch()

import sys  # noqa: E402

from amqp.exceptions import PreconditionFailed  # noqa: E402

from shared.config import settings_for  # noqa: E402
from shared.messaging import topology  # noqa: E402

if __name__ == "__main__":
    settings = settings_for("deploy")
    try:
        topology.declare(settings.amqp_uri, settings.retry_delays)
    except PreconditionFailed as error:
        # RabbitMQ never changes an existing queue's arguments: say which, and what to do
        sys.exit(f"the broker holds a queue declared with other arguments than this release's: {error.reply_text}\n"
                 "Drain it (stop its publishers, let its consumer empty it), delete it, and declare again; "
                 "see docs/ledger.md (records.ledger gained x-single-active-consumer).")
    print(f"declared {len(topology.all_entities(settings.retry_delays))} exchanges and queues")
