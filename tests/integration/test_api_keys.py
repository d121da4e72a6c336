"""API keys belong to people, expire, and can be revoked and rotated; each issue and
revocation is announced for the ledger (real FerretDB and RabbitMQ)."""
import json
from datetime import datetime, timedelta, timezone

import pytest

from shared.config import settings_for
from shared.events import validate_event
from shared.messaging import topology
from shared.security import api_keys, keys as key_admin, provision
from shared.security.api_keys import KeyRefused
from tests.conftest import MONGO_URI
from tests.support import Tap, disconnect_all


@pytest.fixture
def admin(amqp_uri, db_prefix, monkeypatch):
    for name, value in (("AMQP_URI", amqp_uri), ("MONGO_URI", MONGO_URI), ("AMENDS_DB_PREFIX", db_prefix),
                        ("AMENDS_REGION", "test")):
        monkeypatch.setenv(name, value)
    topology.declare(amqp_uri)
    tap = Tap(amqp_uri, [("identity", "#")], name=f"keys-tap-{db_prefix}")
    yield key_admin.Keys(settings_for("identity")), tap
    tap.close()
    disconnect_all()


def test_a_key_belongs_to_one_person_and_covers_regions(admin):
    keys, _ = admin
    for role, subject, regions, national, fault in (
            ("facilitator", None, ["gwent"], False, "person"),
            ("coordinator", "coord-1", [], False, "region"),
            ("coordinator", "coord-1", ["gwent"], True, "auditor"),
            ("referrer", "ref-1", ["Gwent!"], False, "codes")):
        with pytest.raises(KeyRefused, match=fault):
            keys.issue(role, "gwent-police", subject, regions, national)
    key, record = keys.issue("coordinator", "gwent-rj", "coord-7", ["gwent", "south-wales"])
    principal = api_keys.lookup(key)
    assert (principal.subject, principal.role, principal.agency, principal.regions, principal.national) == (
        "coord-7", "coordinator", "gwent-rj", frozenset({"gwent", "south-wales"}), False)
    stored = api_keys.ApiKey._get_collection().find_one({"_id": record.pk})
    assert key not in json.dumps(stored, default=str) and stored["key_hash"] == api_keys.hash_key(key)


def test_issue_revoke_and_rotate_reach_the_bus_without_the_key(admin):
    keys, tap = admin
    key, record = keys.issue("facilitator", "rj-hub", "fac-9", ["gwent"], by="operator:test")
    new_key, new_record = keys.rotate(str(record.pk), by="operator:test")
    assert api_keys.lookup(key) is None and api_keys.lookup(new_key).subject == "fac-9"
    assert keys.revoke(str(new_record.pk), by="operator:test", reason="left_post")
    assert api_keys.lookup(new_key) is None
    assert not keys.revoke(str(new_record.pk), by="operator:test")  # once only
    assert keys.rotate(str(new_record.pk), by="operator:test") is None  # a revoked key is not rotated
    assert keys.relay() == 4
    seen = tap.drain()
    assert sorted((e["type"], e["data"]["key_id"], e["data"]["reason"] or "") for e in seen) == sorted([
        ("key.issued", str(record.pk), ""), ("key.issued", str(new_record.pk), "rotated"),
        ("key.revoked", str(record.pk), "rotated"), ("key.revoked", str(new_record.pk), "left_post")])
    assert all(e["data"]["subject"] == "fac-9" and e["data"]["by"] == "operator:test"
               and e["source"] == "/amends/test/identity" for e in seen)
    rotated_in = next(e for e in seen if e["type"] == "key.issued" and e["data"]["key_id"] == str(new_record.pk))
    assert rotated_in["data"]["related_key_id"] == str(record.pk)
    assert key not in json.dumps(seen) and new_key not in json.dumps(seen)
    assert keys.relay() == 0  # nothing is sent twice


def test_an_expired_key_and_one_naming_nobody_are_refused(admin):
    keys, _ = admin
    key, record = keys.issue("referrer", "gwent-police", "ref-3", ["gwent"], days=1)
    assert api_keys.lookup(key) is not None
    assert api_keys.lookup(key, now=datetime.now(timezone.utc) + timedelta(days=2)) is None
    collection = api_keys.ApiKey._get_collection()
    collection.update_one({"_id": record.pk}, {"$unset": {"subject": ""}})  # as keys issued before people
    assert api_keys.lookup(key) is None
    with pytest.raises(KeyRefused):
        keys.issue("referrer", "gwent-police", "ref-4", ["gwent"], days=400)


def test_the_command_line_issues_lists_and_revokes(admin, capsys):
    keys, tap = admin
    assert key_admin.main(["issue", "--role", "auditor", "--agency", "hmicfrs", "--subject", "aud-1",
                           "--national", "--by", "operator:cli"]) == 0
    printed = capsys.readouterr().out
    key = printed.strip().splitlines()[-1]
    key_id = printed.split()[2].rstrip(";")
    assert api_keys.lookup(key).national
    assert key_admin.main(["list", "--agency", "hmicfrs"]) == 0
    listed = capsys.readouterr().out
    assert key_id in listed and "aud-1" in listed and key not in listed
    assert key_admin.main(["revoke", key_id, "--reason", "compromised"]) == 0
    assert api_keys.lookup(key) is None
    assert key_admin.main(["revoke", key_id]) == 2
    assert key_admin.main(["issue", "--role", "referrer", "--agency", "x", "--subject", "r-1"]) == 2  # no region
    assert [e["type"] for e in tap.drain()] == ["key.issued", "key.revoked"]


def test_provisioning_adds_a_missing_role_s_key_and_keeps_the_others(admin, tmp_path):
    keys, tap = admin
    # a key file from before the operator role: its four keys work, and must go on working
    earlier = {role: keys.issue(role, "dev-police", subject, ["gwent"], role == "auditor")[0]
               for role, subject in (("referrer", "dev-referrer"), ("coordinator", "dev-coordinator"),
                                     ("facilitator", "fac-0001"), ("auditor", "dev-auditor"))}
    path = tmp_path / "dev-keys.json"
    path.write_text(json.dumps(earlier))
    assert provision.main(["--out", str(path), "--region", "gwent"]) == 0
    now = json.loads(path.read_text())
    assert set(now) == set(api_keys.ROLES) and {r: now[r] for r in earlier} == earlier
    operator = api_keys.lookup(now["operator"])
    assert (operator.role, operator.subject, operator.regions, operator.national) == (
        "operator", "dev-operator", frozenset({"gwent"}), False)
    assert all(api_keys.lookup(key).role == role for role, key in now.items())
    # run again, nothing changes; a facilitator key of someone else is replaced, and only it
    assert provision.main(["--out", str(path), "--region", "gwent"]) == 0
    assert json.loads(path.read_text()) == now
    assert provision.main(["--out", str(path), "--region", "gwent", "--facilitator", "fac-0002"]) == 0
    replaced = json.loads(path.read_text())
    assert replaced["facilitator"] != now["facilitator"] and api_keys.lookup(replaced["facilitator"]).subject == "fac-0002"
    assert {r: k for r, k in replaced.items() if r != "facilitator"} == {r: k for r, k in now.items() if r != "facilitator"}
    issued = [e for e in tap.drain() if e["type"] == "key.issued"]
    assert sorted(e["data"]["role"] for e in issued) == sorted(list(earlier) + ["operator", "facilitator"])


def test_an_operator_s_key_covers_regions_or_is_national(admin):
    keys, tap = admin
    regional, _ = keys.issue("operator", "ops", "op-1", ["gwent"])
    national, _ = keys.issue("operator", "ops", "op-2", [], True)
    assert (api_keys.lookup(regional).regions, api_keys.lookup(regional).national) == (frozenset({"gwent"}), False)
    assert api_keys.lookup(national).national
    with pytest.raises(KeyRefused, match="at least one region"):
        keys.issue("operator", "ops", "op-3", [])
    keys.relay()
    seen = tap.drain()
    assert sorted(e["data"]["role"] for e in seen) == ["operator", "operator"]
    for event in seen:   # as the ledger's consumer checks it
        validate_event(event)
