"""One referral through all four services, each a `nameko run` process of its own."""
import pytest
import requests

from services.matching import facilitators
from shared.messaging import topology
from shared.storage import connect
from tests.factories import referral_body
from tests.platform import Platform
from tests.support import disconnect_all, mails, provision_keys, smtp_server, wait_until


@pytest.fixture
def platform(service_config, tmp_path):
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
        return entries if len(entries) >= 4 else None

    entries = wait_until(timeline, timeout=60)
    assert [e["type"] for e in entries] == [
        "referral.received", "case.assessed", "facilitator.assigned", "notification.sent"]
    assert entries[2]["data"]["facilitator_id"] == "fac-e2e"
    assert all(e["source"].startswith("/amends/") for e in entries)
    received = mails(mail_dir)
    assert len(received) == 1 and received[0]["To"] == "dafydd.morgan@police.example"
    verified = requests.get(f"http://127.0.0.1:{ports['records']}/v1/ledger/verify", headers=auth).json()
    assert verified == {"valid": True, "entries": 4}
