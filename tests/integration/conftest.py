from contextlib import contextmanager

import eventlet
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


def refused_start(cls, config, expected):
    """Start `cls` expecting it to refuse (raise `expected`), and leave nothing behind.

    nameko sets a service's extensions up side by side in green threads: when one refuses,
    the others may still finish after the refusal has reached the caller (an Authenticator
    connecting the identity store, say), so they are given a moment to, and then every
    connection made is dropped; else the next test would find them registered."""
    container = ServiceContainer(cls, config)
    try:
        with pytest.raises(expected) as refusal:
            container.start()
    finally:
        container.kill()
        eventlet.sleep(0.5)
        disconnect_all()
    return refusal.value
