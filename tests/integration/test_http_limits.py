"""HTTP limits and refusals on real running services (docs/security.md): body size,
slow clients, request budgets, one answer for every refused key, and a log line for
every refusal with the key's id, never the key."""
import json
from datetime import datetime, timedelta, timezone
import logging
import socket
import time

import pytest
import requests

from services.matching.service import MatchingService
from services.notifications.service import NotificationsService
from services.records.service import RecordsService
from services.referrals.service import ReferralsService
from shared import jsonlog
from shared.security import api_keys
from tests.factories import referral_body
from tests.integration.referrals_helpers import referrals_store
from tests.support import issue_key, provision_keys

MASTER_KEY = "ozUQn5XHgS9MoRmq3Ov6dAOVQa9vnm9Vkyb7pJ6Tyhk="
# one GET behind api(...) on each service
ROUTES = {ReferralsService: "/v1/cases", MatchingService: "/v1/facilitators",
          NotificationsService: "/v1/notifications?case=case-x", RecordsService: "/v1/ledger/head"}


@pytest.fixture(autouse=True)
def master_key(monkeypatch):
    monkeypatch.setenv("AMENDS_MASTER_KEY", MASTER_KEY)


def call(url, method, path, key=None, **kwargs):
    headers = kwargs.pop("headers", {})
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return requests.request(method, f"{url}{path}", headers=headers, timeout=10, **kwargs)


def address(url):
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def key_id(key):
    return str(api_keys.ApiKey.objects(key_hash=api_keys.hash_key(key)).first().pk)


def refusals(caplog):
    """The refusal log lines, as the services would write them."""
    formatter = jsonlog.JsonFormatter(service="test")
    return [json.loads(formatter.format(r)) for r in caplog.records if r.getMessage() == "request refused"]


def test_a_body_over_the_limit_is_refused_unread_and_one_within_it_is_taken(run_services):
    with run_services(ReferralsService, AMENDS_MAX_BODY_BYTES="4096") as (url, config):
        keys = provision_keys(config)
        body = json.dumps(referral_body(0)).encode()
        assert len(body) < 4096
        taken = call(url, "POST", "/v1/referrals", keys["referrer"], data=body,
                     headers={"Content-Type": "application/json"})
        assert taken.status_code == 201, taken.text
        # a body of no declared length (chunked) within the limit is taken too
        chunked = call(url, "POST", "/v1/referrals", keys["referrer"], data=iter([body[:100], body[100:]]),
                       headers={"Content-Type": "application/json"})
        assert chunked.status_code == 201, chunked.text

        padded = dict(referral_body(1), notes="x" * 5000)
        refused = call(url, "POST", "/v1/referrals", keys["referrer"], json=padded)
        assert refused.status_code == 413
        assert refused.json()["error"] == "payload_too_large" and "4096" in refused.json()["message"]
        too_long_chunked = call(url, "POST", "/v1/referrals", keys["referrer"],
                                data=iter([b"{" + b" " * 3000, b" " * 3000 + b"}"]),
                                headers={"Content-Type": "application/json"})
        assert too_long_chunked.status_code == 413
        with referrals_store(config) as store:
            assert store.counts()["cases"] == 2

        # declared too long and never sent: the answer comes at once, without waiting for the body
        with socket.create_connection(address(url), timeout=5) as raw:
            raw.sendall(b"POST /v1/referrals HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Authorization: Bearer " + keys["referrer"].encode() + b"\r\n"
                        b"Content-Length: 1073741824\r\n\r\n")
            started = time.monotonic()
            answer = _read_until_closed(raw)
            assert time.monotonic() - started < 4
        assert answer.startswith(b"HTTP/1.1 413")
        assert b"Connection: close" in answer  # closed rather than drained


def _read_until_closed(raw):
    received = b""
    while chunk := raw.recv(65536):
        received += chunk
    return received


def test_a_slow_client_is_cut_off_after_the_socket_timeout(run_services):
    with run_services(ReferralsService, AMENDS_HTTP_SOCKET_TIMEOUT="1") as (url, config):
        keys = provision_keys(config)
        # half a request line and headers, then nothing
        with socket.create_connection(address(url), timeout=10) as raw:
            raw.sendall(b"GET /v1/cases HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            assert raw.recv(1024) == b""  # closed, with no answer
            waited = time.monotonic() - started
        assert 0.8 < waited < 5
        # a body that stops short of its length: the request is refused, then the connection closed
        with socket.create_connection(address(url), timeout=10) as raw:
            raw.sendall(b"POST /v1/referrals HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Authorization: Bearer " + keys["referrer"].encode() + b"\r\n"
                        b"Content-Length: 500\r\n\r\n{\"referral\": ")
            started = time.monotonic()
            answer = _read_until_closed(raw)
            waited = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 400") and b"did not arrive in full" in answer
        assert b"Connection: close" in answer  # not kept open to wait for the rest a second time
        assert 0.8 < waited < 5
        with referrals_store(config) as store:
            assert store.counts()["cases"] == 0
        # an ordinary client is not affected
        assert call(url, "GET", "/v1/cases", keys["coordinator"]).status_code == 200


def test_a_key_over_its_budget_is_told_when_to_come_back(run_services):
    with run_services(ReferralsService, AMENDS_RATE_LIMIT="2", AMENDS_RATE_BURST="3") as (url, config):
        keys = provision_keys(config)
        answers = [call(url, "GET", "/v1/cases", keys["coordinator"]) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        retry_after = int(answers[-1].headers["Retry-After"])
        assert 1 <= retry_after <= 30  # two a minute: a token every 30 s
        assert answers[-1].json()["error"] == "too_many_requests"
        # the budget is the key's own
        assert call(url, "GET", "/v1/cases", keys["auditor"]).status_code == 200


def test_every_refused_key_gets_the_same_answer(run_services, db_prefix):
    with run_services(ReferralsService) as (url, config):
        keys = provision_keys(config)
        revoked = issue_key(config, "coordinator", "test-police", "coord-revoked")
        expired = issue_key(config, "coordinator", "test-police", "coord-expired")
        assert call(url, "GET", "/v1/cases", revoked).status_code == 200
        assert call(url, "GET", "/v1/cases", expired).status_code == 200
        api_keys.ApiKey.objects(key_hash=api_keys.hash_key(revoked)).update(
            set__revoked_at=datetime.now(timezone.utc))
        api_keys.ApiKey.objects(key_hash=api_keys.hash_key(expired)).update(
            set__expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
        presented = {
            "revoked": f"Bearer {revoked}",
            "expired": f"Bearer {expired}",
            "unknown": "Bearer amk_" + "A" * 43,
            "malformed": "Bearer not-a-key",
            "too long": "Bearer amk_" + "A" * 300,
            "empty": "Bearer ",
            "other scheme": f"Basic {keys['coordinator']}",
        }
        answers = {name: call(url, "GET", "/v1/cases", headers={"Authorization": header})
                   for name, header in presented.items()}
        assert {a.status_code for a in answers.values()} == {401}
        assert len({a.text for a in answers.values()}) == 1, {n: a.text for n, a in answers.items()}
        assert answers["revoked"].json() == {"error": "unauthorized", "message": "the API key was not accepted"}
        assert answers["revoked"].headers["WWW-Authenticate"] == 'Bearer realm="amends"'
        missing = call(url, "GET", "/v1/cases")
        assert missing.status_code == 401 and "Authorization: Bearer" in missing.json()["message"]


def test_an_address_that_keeps_presenting_bad_keys_is_slowed_down(run_services):
    with run_services(ReferralsService, AMENDS_AUTH_FAILURE_LIMIT="1", AMENDS_AUTH_FAILURE_BURST="3") as (url, config):
        keys = provision_keys(config)
        guesses = [call(url, "GET", "/v1/cases", f"amk_guess{n}").status_code for n in range(4)]
        assert guesses == [401, 401, 401, 429]
        # even a right guess is not confirmed while the address is blocked
        blocked = call(url, "GET", "/v1/cases", keys["coordinator"])
        assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) >= 1


def test_refusals_are_logged_with_the_route_status_and_key_id_never_the_key(run_services, caplog):
    caplog.set_level(logging.INFO)
    with run_services(ReferralsService, AMENDS_MAX_BODY_BYTES="1000", AMENDS_RATE_LIMIT="1",
                      AMENDS_RATE_BURST="3") as (url, config):
        keys = provision_keys(config)
        referrer = keys["referrer"]
        assert call(url, "GET", "/v1/cases/case-123/access-log", referrer).status_code == 403
        assert call(url, "POST", "/v1/referrals", referrer, json={"notes": "Sian Jones " * 200}).status_code == 413
        assert call(url, "GET", "/v1/cases/case-123", "amk_wrong-key").status_code == 401
        assert call(url, "GET", "/v1/cases", referrer).status_code == 200
        assert call(url, "GET", "/v1/cases?agency=test-police", referrer).status_code == 429
        lines = refusals(caplog)
        text = "\n".join(json.dumps(line) for line in lines)
        mine = key_id(referrer)
        assert [(line["status"], line["route"], line["key_id"]) for line in lines] == [
            (403, "GET /v1/cases/<case_id>/access-log", mine),
            (413, "POST /v1/referrals", mine),
            (401, "GET /v1/cases/<case_id>", None),
            (429, "GET /v1/cases", mine),
        ]
        for secret in (referrer, "amk_wrong-key", "Sian", "case-123", "test-police"):
            assert secret not in text
        assert all(line["level"] in ("INFO", "WARNING") for line in lines)


@pytest.mark.parametrize("service", list(ROUTES), ids=lambda cls: cls.name)
def test_every_service_has_the_limits(run_services, service):
    with run_services(service, AMENDS_MAX_BODY_BYTES="100", AMENDS_HTTP_SOCKET_TIMEOUT="1",
                      AMENDS_RATE_LIMIT="1", AMENDS_RATE_BURST="1") as (url, config):
        keys = provision_keys(config)
        path = ROUTES[service]
        refused = call(url, "GET", path, keys["auditor"], data=b"x" * 101)
        assert refused.status_code == 413, refused.text
        assert call(url, "GET", path, keys["auditor"]).status_code == 429  # the 413 spent the burst
        assert call(url, "GET", path, "amk_unknown").json()["message"] == "the API key was not accepted"
        with socket.create_connection(address(url), timeout=10) as raw:
            raw.sendall(b"GET /health HTTP/1.1\r\n")
            started = time.monotonic()
            assert raw.recv(1024) == b""
            assert time.monotonic() - started < 5
