"""What the end-to-end tests share: the four services as `nameko run` processes of their own."""
import pytest

from shared.messaging import topology
from tests.e2e.console_browser import chromium, console_stack
from tests.platform import Platform
from tests.support import disconnect_all, smtp_server


@pytest.fixture
def platform(service_config, tmp_path):
    """(config, each service's port, the directory the SMTP server writes mail to)."""
    config = service_config()
    topology.declare(config["AMQP_URI"], (0.2, 0.4))
    mail_dir = str(tmp_path / "mail")
    with smtp_server(mail_dir) as smtp_port:
        services = Platform(config["AMQP_URI"], config["MONGO_URI"], config["AMENDS_DB_PREFIX"], smtp_port,
                            str(tmp_path / "logs"))
        try:
            services.start()
            yield config, services.ports, mail_dir
        finally:
            services.stop()
            disconnect_all()


@pytest.fixture
def browser():
    """Headless Chromium, for the console's browser tests."""
    driver = chromium()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def stack(amqp_uri, tmp_path):
    """The console and the pipeline's four services as processes, with an account of each
    role (tests/e2e/console_browser.py); a test module needing other services overrides it."""
    with console_stack(amqp_uri, tmp_path) as started:
        yield started
