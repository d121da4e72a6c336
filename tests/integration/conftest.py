from contextlib import contextmanager

import pytest
from nameko.containers import ServiceContainer

from shared.messaging import topology
from tests.support import disconnect_all, free_port


@pytest.fixture
def run_services(service_config):
    """Start service classes in this process, on the test's vhost and databases."""
    containers = []

    @contextmanager
    def run(*classes, **extra):
        port = free_port()
        config = service_config(WEB_SERVER_ADDRESS=f"127.0.0.1:{port}", **extra)
        topology.declare(config["AMQP_URI"], (0.2, 0.4))
        started = []
        for cls in classes:
            container = ServiceContainer(cls, config)
            container.start()
            started.append(container)
            containers.append(container)
        try:
            yield f"http://127.0.0.1:{port}", config
        finally:
            for container in started:
                container.stop()

    run.containers = containers  # for a test that drives entrypoints itself
    yield run
    for container in containers:
        container.kill() if container.started else None
    disconnect_all()
