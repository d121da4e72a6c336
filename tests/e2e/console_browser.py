"""The scaffolding of the console's browser tests: the services and the console as
processes, with an account of each role; headless Chromium (Debian's `chromium`) driven by
Selenium through Debian's `chromium-driver`; and small helpers to sign in, press and shoot.
"""
import os
import subprocess
import sys
import uuid
from contextlib import contextmanager
from urllib.parse import quote

import requests
from kombu import Connection
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.support.ui import WebDriverWait

from nameko.containers import ServiceContainer

from services.console import admin
from services.console.key_vault import KeyVault, new_key
from services.console.service import ConsoleProvider, ConsoleService
from services.console.store import ConsoleStore
from services.matching import facilitators
from services.matching.store import MatchingStore
from shared.config import settings_for
from shared.messaging import topology
from shared.messaging.permissions import OPERATOR_GRANT
from shared.storage import connect
from tests.conftest import MANAGEMENT, RABBIT_AUTH
from tests.factories import ROOT, days_ago
from tests.platform import FerretDB, Platform, stop_all
from tests.support import (disconnect_all, free_port, issue_key, provision_keys, rabbit_operator, smtp_server,
                           wait_until)

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SCREENSHOTS = os.path.join(ROOT, "var", "artifacts", "screenshots")
PASSWORD = {role: f"{role}-browser-test-password" for role in ("coordinator", "facilitator", "auditor", "operator")}
LEAD, CO = "fac-lead", "fac-co"
OPERATOR_REGION = "south-wales"



SERVICES = ("referrals", "matching", "notifications", "records")


@contextmanager
def console_stack(amqp_uri, tmp_path, services=SERVICES, api_session=None):
    """`services` and the console as processes, on the shared broker and a FerretDB of the
    test's own; the accounts of each role; yields (the console's URL, the API keys, each
    started service's URL by name). With `api_session` (a requests.Session) the console runs
    in this process instead, making its calls to the services through that session."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    ferret = FerretDB(str(tmp_path))
    ferret.start()
    config = {"AMQP_URI": amqp_uri, "MONGO_URI": ferret.uri, "AMENDS_DB_PREFIX": prefix, "AMENDS_REGION": "test",
              "AMENDS_FERRETDB_POSTGRESQL_URL": ferret.postgresql_url}
    topology.declare(amqp_uri, (0.2, 0.4))
    keys = provision_keys(config, facilitator=LEAD)
    store = MatchingStore.open(config)
    for facilitator_id, level in ((LEAD, "advanced"), (CO, "intermediate")):
        facilitators.register(store, {"facilitator_id": facilitator_id, "level": level, "regions": ["south-wales"],
                                      "languages": ["en"], "capacity": 3, "endorsements": ["sexual_violence"],
                                      "last_active": days_ago(20)})
    console_key = new_key()
    accounts = ConsoleStore(connect("console", settings_for("console", config)))
    accounts.ensure_indexes(ferret.postgresql_url)
    vault = KeyVault(console_key)
    admin.add(accounts, vault, "cora", "coordinator", api_key=keys["coordinator"], password=PASSWORD["coordinator"])
    admin.add(accounts, vault, "fred", "facilitator", LEAD, keys["facilitator"], PASSWORD["facilitator"])
    admin.add(accounts, vault, "aud", "auditor", api_key=keys["auditor"], password=PASSWORD["auditor"])
    # the operator's key covers south-wales only: a case elsewhere is not theirs
    admin.add(accounts, vault, "olu", "operator", password=PASSWORD["operator"],
              api_key=issue_key(config, "operator", "test-ops", "op-south", regions=(OPERATOR_REGION,)))
    # a coordinator of another region: the case is not theirs to see
    admin.add(accounts, vault, "nia", "coordinator", password=PASSWORD["coordinator"],
              api_key=issue_key(config, "coordinator", "rj-hub", "coord-north", regions=("north-wales",)))
    with smtp_server(str(tmp_path / "mail")) as smtp_port:
        platform = Platform(amqp_uri, ferret.uri, prefix, smtp_port, str(tmp_path / "logs"))
        console_port = free_port()
        # the operator pages as the operators' own broker user, given the test's vhost as the
        # bootstrap gives it the region's: dead letters and queue depths, nothing else
        operator = rabbit_operator()
        assert operator, "no AMENDS_BUS_OPERATOR_PASSWORD: deploy/local/bootstrap.sh infra makes amends-operator"
        user, password = operator
        vhost = Connection(amqp_uri).virtual_host
        grant = OPERATOR_GRANT
        requests.put(f"{MANAGEMENT}/api/permissions/{quote(vhost, safe='')}/{user}", auth=RABBIT_AUTH, timeout=10,
                     json={"configure": grant.configure, "write": grant.write, "read": grant.read}).raise_for_status()
        operator_uri = amqp_uri.replace(amqp_uri.split("://", 1)[1].split("@", 1)[0],
                                        f"{quote(user, safe='')}:{quote(password, safe='')}", 1)
        host = MANAGEMENT.split("://", 1)[1]
        console = None
        try:
            platform.start(*services)
            env = {**platform.env, "AMENDS_CONSOLE_KEY": console_key, "CONSOLE_DEVELOPMENT": "1",
                   "AMENDS_FERRETDB_POSTGRESQL_URL": ferret.postgresql_url,
                   "CONSOLE_HTTP_ADDRESS": f"127.0.0.1:{console_port}", "CONSOLE_OPERATOR_AMQP_URI": operator_uri,
                   "CONSOLE_MANAGEMENT_URL": f"http://{quote(user, safe='')}:{quote(password, safe='')}@{host}"}
            if api_session is not None:
                console = _console_here(env, api_session)
            else:
                console = subprocess.Popen(
                    [os.path.join(os.path.dirname(sys.executable), "nameko"), "run", "--config",
                     "services/console/config.yaml", "services.console.service:ConsoleService"], cwd=ROOT, env=env,
                    stdout=open(tmp_path / "logs" / "console.log", "ab"), stderr=subprocess.STDOUT)
            url = f"http://127.0.0.1:{console_port}"
            wait_until(lambda: _healthy(url), timeout=60, interval=0.5)
            yield url, keys, {name: platform.url(name) for name in services}
        finally:
            if isinstance(console, ServiceContainer):
                console.stop()
            else:
                stop_all([p for p in (console,) if p is not None])
            platform.stop()
            disconnect_all()
            ferret.remove()


def _console_here(env, api_session):
    """The console as a nameko container in this process, configured as its config.yaml
    would be from `env`, its calls to the services going through `api_session`."""
    config = {**env, "WEB_SERVER_ADDRESS": env["CONSOLE_HTTP_ADDRESS"]}
    container = ServiceContainer(ConsoleService, config)
    container.start()
    provider = next(extension for extension in container.extensions if isinstance(extension, ConsoleProvider))
    provider.console.api_session = api_session
    return container


def _healthy(url):
    try:
        return requests.get(f"{url}/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def chromium():
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(path)]
    assert not missing, (f"{', '.join(missing)} missing: the browser tests need Debian's chromium and chromium-driver "
                         "(deploy/local/bootstrap.sh infra installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,1100", "--lang=en-GB"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(10)   # a submitted form loads its answer before the next look
    return driver


def shoot(driver, screen):
    os.makedirs(SCREENSHOTS, exist_ok=True)
    driver.save_screenshot(os.path.join(SCREENSHOTS, f"{screen}.png"))


def sign_in(driver, url, username, role):
    driver.delete_all_cookies()
    driver.get(f"{url}/sign-in")
    driver.find_element(By.ID, "username").send_keys(username)
    driver.find_element(By.ID, "password").send_keys(PASSWORD[role])
    press(driver, By.CSS_SELECTOR, "form[action='/sign-in'] button")
    assert driver.find_element(By.CSS_SELECTOR, ".sign-out span").text.startswith(f"Signed in as {username}")


def press(driver, by, selector):
    """Click, and wait for the page the click loads (a form's answer, a link's page)."""
    driver.execute_script("window.amendsOldPage = true;")
    driver.find_element(by, selector).click()
    WebDriverWait(driver, 30, ignored_exceptions=(WebDriverException,)).until(lambda d: d.execute_script(
        "return window.amendsOldPage === undefined && document.readyState === 'complete';"))


def peek_dead_letters(amqp_uri, service):
    """The headers of a service's dead letters, left in their queue (unacked, then returned)."""
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        queue = topology.dead_letter_queue(service).bind(channel)
        found = []
        while (message := queue.get(no_ack=False)) is not None:
            found.append(dict(message.headers or {}))
        channel.close()
    return found


def text(driver):
    return driver.find_element(By.TAG_NAME, "main").text


def session_cookies(driver):
    return {c["name"]: c["value"] for c in driver.get_cookies()}
