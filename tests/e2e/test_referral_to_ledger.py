"""One referral through all four services, each a `nameko run` process of its own."""
import os
import signal
import subprocess
import sys

import pytest
import requests

from services.matching import facilitators
from shared.messaging import topology
from shared.storage import connect
from tests.factories import ROOT, referral_body
from tests.support import disconnect_all, free_port, mails, provision_keys, smtp_server, wait_until

SERVICES = {"referrals": "ReferralsService", "matching": "MatchingService",
            "notifications": "NotificationsService", "records": "RecordsService"}


@pytest.fixture
def platform(service_config, tmp_path):
    config = service_config()
    topology.declare(config["AMQP_URI"], (0.2, 0.4))
    mail_dir = str(tmp_path / "mail")
    ports = {name: free_port() for name in SERVICES}
    with smtp_server(mail_dir) as smtp_port:
        env = dict(os.environ, AMQP_URI=config["AMQP_URI"], MONGO_URI=config["MONGO_URI"],
                   AMENDS_DB_PREFIX=config["AMENDS_DB_PREFIX"], AMENDS_RETRY_DELAYS="0.5,1,2",
                   AMENDS_MASTER_KEY="ozUQn5XHgS9MoRmq3Ov6dAOVQa9vnm9Vkyb7pJ6Tyhk=", SMTP_PORT=str(smtp_port),
                   PYTHONPATH=ROOT, **{f"{n.upper()}_HTTP_ADDRESS": f"127.0.0.1:{p}" for n, p in ports.items()})
        nameko = os.path.join(os.path.dirname(sys.executable), "nameko")
        processes = [
            subprocess.Popen([nameko, "run", "--config", f"services/{name}/config.yaml", f"services.{name}.service:{cls}"],
                             cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for name, cls in SERVICES.items()
        ]
        try:
            for name, port in ports.items():
                wait_until(lambda: _healthy(port), timeout=60)
            yield config, ports, mail_dir
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            disconnect_all()


def _healthy(port):
    try:
        return requests.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_a_referral_travels_into_the_ledger(platform):
    config, ports, mail_dir = platform
    keys = provision_keys(config)
    from shared.config import settings_for
    connect("matching", settings_for("matching", config))
    facilitators.register({"facilitator_id": "fac-e2e", "level": "advanced", "regions": ["south-wales"],
                           "languages": ["en"], "capacity": 2, "last_active": "2026-11-01"})
    response = requests.post(f"http://127.0.0.1:{ports['referrals']}/v1/referrals", json=referral_body(0),
                             headers={"Authorization": f"Bearer {keys['referrer']}"}, timeout=10)
    assert response.status_code == 201
    case_id = response.json()["case_id"]
    auth = {"Authorization": f"Bearer {keys['coordinator']}"}

    def timeline():
        answer = requests.get(f"http://127.0.0.1:{ports['records']}/v1/cases/{case_id}/timeline",
                              headers=auth, timeout=5)
        entries = answer.json()["entries"] if answer.status_code == 200 else []
        # the four pipeline events, and the two status changes referrals makes on matching's events
        return entries if len(entries) >= 6 else None

    entries = wait_until(timeline, timeout=60)
    pipeline = [e for e in entries if e["type"] != "case.status_changed"]
    assert [e["type"] for e in pipeline] == [
        "referral.received", "case.assessed", "facilitator.assigned", "notification.sent"]
    assert [e["data"]["to_status"] for e in entries if e["type"] == "case.status_changed"] == [
        "CONTACTING", "ASSESSMENT"]
    assert pipeline[2]["data"]["facilitator_id"] == "fac-e2e"
    assert all(e["source"].startswith("/amends/") for e in entries)
    received = mails(mail_dir)
    assert len(received) == 1 and received[0]["To"] == "dafydd.morgan@police.example"
    verified = requests.get(f"http://127.0.0.1:{ports['records']}/v1/ledger/verify", headers=auth).json()
    assert verified == {"valid": True, "entries": len(entries)}
