"""Declare every exchange, queue and binding before any service or producer starts."""
import eventlet

eventlet.monkey_patch()

from shared.config import settings_for  # noqa: E402
from shared.messaging import topology  # noqa: E402

if __name__ == "__main__":
    settings = settings_for("deploy")
    topology.declare(settings.amqp_uri, settings.retry_delays)
    print(f"declared {len(topology.all_entities(settings.retry_delays))} exchanges and queues")
