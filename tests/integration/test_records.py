"""The records service on the real broker and FerretDB: batched, exactly-once appends;
signed heads; proofs, feed and bundles through the API; verification of the stored log."""
import json
import os
import subprocess
import sys

import pymongo
import pytest
import requests

from services.records import bundle, checkpoints, merkle
from services.records.checkpoints import Signer
from services.records.service import RecordsService
from services.records.store import Ledger, group_leaves, pack_leaves
from shared.config import settings_for
from shared.events import new_event
from shared.messaging import topology
from tests.conftest import MANAGEMENT, MONGO_URI, RABBIT_AUTH
from tests.factories import ROOT, referral_received_data
from tests.integration.conftest import refused_start
from tests.platform import Platform
from tests.support import free_port, provision_keys, publish_event, wait_until

SIGNER = Signer.generate("amends.test/ledger")


def case_events(case_id):
    data = referral_received_data(case_id=case_id)
    received = new_event("referral.received", case_id, data, source="/amends/test/referrals",
                         region="test", correlationid=case_id)
    assessed = new_event("case.assessed", case_id, {
        "case_id": case_id, "assessment_id": "a-1", "decision": "suitable",
        "reasons": [{"code": "responsibility_accepted", "text": "ok"}], "risk_level": "low",
        "required_level": "intermediate", "co_facilitation": False, "process_types": ["shuttle"],
        "policy_version": "t"}, source="/amends/test/matching", region="test",
        correlationid=case_id, causationid=received["id"])
    return [received, assessed]


def records(run_services, **extra):
    return run_services(RecordsService, AMENDS_LEDGER_SIGNING_KEY=str(SIGNER), RECORDS_CHECKPOINT_INTERVAL="3600",
                        **extra)


_CLIENTS = {}


def ledger_of(config):
    """The test's records database, through a client of the test's own (not mongoengine's
    aliases, which the services in the same process use)."""
    client = _CLIENTS.get(config["MONGO_URI"]) or _CLIENTS.setdefault(config["MONGO_URI"],
                                                                       pymongo.MongoClient(config["MONGO_URI"]))
    return Ledger(client[settings_for("records", config).database])


def test_every_event_is_appended_once_and_served_in_order(run_services, amqp_uri):
    with records(run_services) as (url, config):
        keys = provision_keys(config)
        events = case_events("case-a") + case_events("case-b")
        for event in events:
            publish_event(amqp_uri, event)
        for _ in range(4):
            publish_event(amqp_uri, events[0])  # redelivered five times in all
        ledger = ledger_of(config)
        wait_until(lambda: ledger.head().size == 4)
        assert ledger.event_ids.count_documents({}) == 4
        assert sum(g["event_ids"].count(events[0]["id"]) for g in ledger.entries.find()) == 1
        assert ledger.audit(SIGNER.verifier)["entries"] == 4
        auth = {"Authorization": f"Bearer {keys['coordinator']}"}
        timeline = requests.get(f"{url}/v1/cases/case-a/timeline", headers=auth, timeout=10).json()
        assert [e["type"] for e in timeline["entries"]] == ["referral.received", "case.assessed"]
        assert timeline["entries"][0]["leaf_hash"] == merkle.leaf_hash(
            __import__("rfc8785").dumps(events[0])).hex()
        agency_key = provision_keys(config, agency="south-wales-police")["referrer"]
        assert requests.get(f"{url}/v1/cases/case-a/timeline",
                            headers={"Authorization": f"Bearer {agency_key}"}).status_code == 200
        # another agency's referrer: for them the case does not exist
        assert requests.get(f"{url}/v1/cases/case-a/timeline",
                            headers={"Authorization": f"Bearer {keys['referrer']}"}).status_code == 404
        assert requests.get(f"{url}/v1/cases/nope/timeline", headers=auth).status_code == 404
        assert requests.get(f"{url}/v1/ledger/verify", headers=auth).json() == {"valid": True, "entries": 4}


def test_a_backlog_is_appended_in_batches_in_arrival_order(run_services, amqp_uri):
    events = [e for i in range(150) for e in case_events(f"case-{i}")]
    with records(run_services, RECORDS_BATCH_SIZE="100") as (url, config):
        for event in events:
            publish_event(amqp_uri, event)
        ledger = ledger_of(config)
        wait_until(lambda: ledger.head().size == 300, timeout=60)
        order = [i for g in sorted(ledger.entries.find(), key=lambda g: g["start"]) for i in g["event_ids"]]
        assert order == [e["id"] for e in events]
        assert ledger.audit(SIGNER.verifier)["entries"] == 300


def ledger_consumers(amqp_uri):
    """(active, waiting) consumer counts on the ledger queue, from the management API."""
    vhost = amqp_uri.rsplit("/", 1)[1]
    queue = requests.get(f"{MANAGEMENT}/api/queues/{vhost}/records.ledger", auth=RABBIT_AUTH, timeout=10).json()
    details = queue.get("consumer_details", [])
    return sum(1 for c in details if c["active"]), sum(1 for c in details if not c["active"])


def test_an_instance_starting_leaves_a_batch_in_progress_alone(run_services):
    """A records instance that starts (a standby, say) while the active writer is between
    claiming a batch and writing it must not withdraw the claims: recovery is the writer's,
    at its first batch."""
    events = [e for i in range(3) for e in case_events(f"case-{i}")]
    with records(run_services) as (url, config):
        ledger = ledger_of(config)
        ledger.append(events[:4])
        ledger._note_intent(ledger.head())  # the active writer, mid-batch
        ledger.event_ids.insert_many([{"_id": e["id"], "group": 4} for e in events[4:]])
        with records(run_services):
            assert ledger.event_ids.count_documents({"group": 4}) == 2
            assert ledger.tree.find_one({"_id": "head"})["intent"] == {"start": 4}


def test_a_second_instance_stands_by_and_takes_over_so_the_ledger_keeps_one_writer(amqp_uri, db_prefix,
                                                                                     tmp_path):
    """Two records processes on one ledger: the broker gives the ledger queue to one at a
    time; when the active one dies (kill -9), the other takes over where it stopped."""
    events = [e for i in range(60) for e in case_events(f"case-{i}")]
    env = {"RECORDS_BATCH_SIZE": "20", "AMENDS_LEDGER_SIGNING_KEY": str(SIGNER)}
    active = Platform(amqp_uri, MONGO_URI, db_prefix, free_port(), str(tmp_path / "a"), env)
    standby = Platform(amqp_uri, MONGO_URI, db_prefix, free_port(), str(tmp_path / "b"), env)
    ledger = ledger_of({"MONGO_URI": MONGO_URI, "AMENDS_DB_PREFIX": db_prefix})
    # as the bootstrap does: a service binds to the events exchanges, it may not declare them
    topology.declare(amqp_uri, (0.5, 1, 2))
    try:
        active.start("records")
        standby.start("records")
        wait_until(lambda: ledger_consumers(amqp_uri) == (1, 1))
        for event in events[:60]:
            publish_event(amqp_uri, event)
        wait_until(lambda: ledger.head().size == 60, timeout=60)
        active.kill9("records")
        wait_until(lambda: ledger_consumers(amqp_uri) == (1, 0))
        for event in events[60:]:
            publish_event(amqp_uri, event)
        wait_until(lambda: ledger.head().size == 120, timeout=60)
        order = [i for g in sorted(ledger.entries.find(), key=lambda g: g["start"]) for i in g["event_ids"]]
        assert order == [e["id"] for e in events]
        assert ledger.audit(SIGNER.verifier)["entries"] == 120
    finally:
        active.stop()
        standby.stop()


def three_cases_appended(amqp_uri, config, name):
    """(the six events of three cases, published and appended; the ledger; an auditor's auth header; the keys)"""
    keys = provision_keys(config)
    ledger = ledger_of(config)
    events = [e for i in range(3) for e in case_events(f"{name}-{i}")]
    for event in events:
        publish_event(amqp_uri, event)
    wait_until(lambda: ledger.head().size == 6)
    return events, ledger, {"Authorization": f"Bearer {keys['auditor']}"}, keys


def test_signed_heads_and_proofs_verify_against_each_other(run_services, amqp_uri):
    with records(run_services) as (url, config):
        first_batch, ledger, auth, keys = three_cases_appended(amqp_uri, config, "case")
        verifier = checkpoints.Verifier.parse(requests.get(f"{url}/v1/ledger/public-key", headers=auth).text)
        assert verifier == SIGNER.verifier
        made = requests.post(f"{url}/v1/ledger/checkpoints", headers=auth)
        assert made.status_code == 201
        old = checkpoints.open_checkpoint(made.text, verifier)
        for event in case_events("case-late"):
            publish_event(amqp_uri, event)
        wait_until(lambda: ledger.head().size == 8)
        requests.post(f"{url}/v1/ledger/checkpoints", headers=auth).raise_for_status()
        head_text = requests.get(f"{url}/v1/ledger/head", headers=auth).text
        new = checkpoints.open_checkpoint(head_text, verifier)
        assert (old.size, new.size) == (6, 8)

        answer = requests.get(f"{url}/v1/ledger/proof/inclusion", headers=auth,
                              params={"event_id": first_batch[3]["id"], "tree_size": new.size}).json()
        assert answer["seq"] == 3
        merkle.verify_inclusion(bytes.fromhex(answer["leaf_hash"]), 3, new.size,
                                [bytes.fromhex(h) for h in answer["proof"]], new.root)
        consistency = requests.get(f"{url}/v1/ledger/proof/consistency", headers=auth,
                                   params={"first": old.size, "second": new.size}).json()
        merkle.verify_consistency(old.size, new.size, old.root, new.root,
                                  [bytes.fromhex(h) for h in consistency["proof"]])

        feed = requests.get(f"{url}/v1/ledger/entries", headers=auth, params={"after": 4, "limit": 2}).json()
        assert [i["seq"] for i in feed["items"]] == [5, 6]
        assert feed["items"][0]["event"] == first_batch[5]
        assert feed["items"][0]["leaf_hash"] == merkle.leaf_hash(__import__("rfc8785").dumps(first_batch[5])).hex()

        for path, params, named in [
            ("/v1/ledger/proof/inclusion", {"tree_size": 3}, "event_id"),
            ("/v1/ledger/proof/inclusion", {"event_id": first_batch[0]["id"], "tree_size": "x"}, "tree_size"),
            ("/v1/ledger/proof/inclusion", {"event_id": first_batch[3]["id"], "tree_size": 2}, "tree_size"),
            ("/v1/ledger/proof/inclusion", {"event_id": first_batch[0]["id"], "tree_size": 99}, "tree_size"),
            ("/v1/ledger/proof/consistency", {"first": 0, "second": 8}, "first"),
            ("/v1/ledger/proof/consistency", {"first": 5, "second": 4}, "second"),
            ("/v1/ledger/proof/consistency", {"first": 5}, "second"),
            ("/v1/ledger/entries", {"after": "-5"}, "after"),
            ("/v1/ledger/entries", {"limit": "1001"}, "limit"),
        ]:
            response = requests.get(url + path, headers=auth, params=params)
            assert response.status_code == 400, (path, params)
            assert response.json()["param"] == named
        unknown = requests.get(f"{url}/v1/ledger/proof/inclusion", headers=auth, params={"event_id": "nope"})
        assert unknown.status_code == 404
        referrer = {"Authorization": f"Bearer {keys['referrer']}"}
        assert requests.get(f"{url}/v1/ledger/entries", headers=referrer).status_code == 403
        assert requests.post(f"{url}/v1/ledger/checkpoints", headers=referrer).status_code == 403
        assert requests.get(f"{url}/v1/ledger/head").status_code == 401


def test_the_feed_over_rpc_is_the_feed_over_http_and_a_position_has_its_proof(run_services, amqp_uri):
    from nameko.standalone.rpc import ServiceRpcProxy
    with records(run_services) as (url, config):
        events, ledger, auth, _ = three_cases_appended(amqp_uri, config, "case-feed")
        with ServiceRpcProxy("records", config) as proxy:
            page = proxy.entries_after(1, 3)
            everything = proxy.entries_after(-1, 1000)
            beyond = proxy.entries_after(5, 10)
            with pytest.raises(Exception) as refused:
                proxy.entries_after(-2, 10)
            assert "after must be an integer" in str(refused.value)
        over_http = requests.get(f"{url}/v1/ledger/entries", headers=auth, params={"after": 1, "limit": 3}).json()
        assert page == {"items": over_http["items"], "tree_size": 6}
        assert [i["seq"] for i in page["items"]] == [2, 3, 4]
        assert [i["event"] for i in everything["items"]] == events
        assert beyond == {"items": [], "tree_size": 6}

        # a subscriber knows an entry's position: the proof by seq is the proof by event id
        by_seq = requests.get(f"{url}/v1/ledger/proof/inclusion", headers=auth, params={"seq": 4}).json()
        by_id = requests.get(f"{url}/v1/ledger/proof/inclusion", headers=auth,
                             params={"event_id": events[4]["id"]}).json()
        assert by_seq == by_id and by_seq["seq"] == 4 and by_seq["event_id"] == events[4]["id"]
        assert by_seq["leaf_hash"] == page["items"][2]["leaf_hash"]
        merkle.verify_inclusion(bytes.fromhex(by_seq["leaf_hash"]), 4, 6, [bytes.fromhex(h) for h in by_seq["proof"]],
                                bytes.fromhex(by_seq["root_hash"]))
        for params, status in [({"seq": 6}, 404), ({"seq": -1}, 400), ({"seq": "x"}, 400),
                               ({"seq": 4, "tree_size": 4}, 400)]:
            answer = requests.get(f"{url}/v1/ledger/proof/inclusion", headers=auth, params=params)
            assert answer.status_code == status, params
            assert answer.json()["param"] == ("tree_size" if "tree_size" in params else "seq")


def test_a_bundle_round_trip_through_the_offline_verifier(run_services, amqp_uri, tmp_path):
    with records(run_services) as (url, config):
        keys = provision_keys(config)
        for case in ("case-b1", "case-b2"):
            for event in case_events(case):
                publish_event(amqp_uri, event)
        ledger = ledger_of(config)
        wait_until(lambda: ledger.head().size == 4)
        answer = requests.get(f"{url}/v1/cases/case-b2/bundle",
                              headers={"Authorization": f"Bearer {keys['coordinator']}"})
        assert answer.status_code == 200
        document = answer.json()
        assert [e["seq"] for e in document["entries"]] == [2, 3]
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(document))
    ok = verify_command("--bundle", str(path), "--public-key", str(SIGNER.verifier))
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["entries"] == 2
    text = path.read_text()
    changed = text.replace('"decision": "suitable"', '"decision": "suitablf"')
    assert changed != text
    path.write_text(changed)
    bad = verify_command("--bundle", str(path), "--public-key", str(SIGNER.verifier))
    assert bad.returncode == 1 and "entry 3" in bad.stderr
    with pytest.raises(bundle.BundleError):
        bundle.verify(json.loads(changed), SIGNER.verifier)


def verify_command(*args, env=None):
    return subprocess.run([sys.executable, "-m", "services.records.verify", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, PYTHONPATH=ROOT, **(env or {})))


# -- tampering directly in the database ------------------------------------------------

def built_ledger(config, size=600):
    """A ledger of `size` entries (over two full tiles) with a signed head, written through
    the same append path the service uses."""
    ledger = ledger_of(config)
    ledger.recover()
    events = [e for i in range(size // 2) for e in case_events(f"case-{i}")]
    for start in range(0, size, 250):
        ledger.append(events[start:start + 250])
    ledger.make_checkpoint(SIGNER)
    return ledger


def group_of(ledger, seq):
    """The stored group holding entry `seq`, its leaves, and the entry's index in it."""
    group = max((g for g in ledger.entries.find() if g["start"] <= seq), key=lambda g: g["start"])
    return group, group_leaves(group), seq - group["start"]


def rewrite(ledger, group, leaves, **arrays):
    ledger.entries.update_one({"_id": group["_id"]}, {"$set": dict(arrays, leaves=pack_leaves(leaves))})


def change_a_field(ledger):
    group, leaves, index = group_of(ledger, 300)
    event = json.loads(leaves[index])
    event["data"]["decision"] = "unsuitable"
    leaves[index] = json.dumps(event, separators=(",", ":"))
    rewrite(ledger, group, leaves)
    return 300, "does not match the leaf hash"


def delete_an_entry(ledger):
    group, leaves, index = group_of(ledger, 77)
    del leaves[index]
    rewrite(ledger, group, leaves, event_ids=group["event_ids"][:index] + group["event_ids"][index + 1:])
    return 77, "does not match the leaf hash"


def swap_two_entries(ledger):
    group, leaves, a = group_of(ledger, 10)
    b = a + 10
    leaves[a], leaves[b] = leaves[b], leaves[a]
    ids = list(group["event_ids"])
    ids[a], ids[b] = ids[b], ids[a]
    rewrite(ledger, group, leaves, event_ids=ids)
    return 10, "does not match the leaf hash"


def delete_a_whole_group(ledger):
    group, _, _ = group_of(ledger, 300)
    ledger.entries.delete_one({"_id": group["_id"]})
    return group["start"], "missing"


def insert_a_forged_entry(ledger):
    forged = case_events("case-forged")[0]
    from services.records.store import group_document
    from services.records.ledger import leaf_bytes
    ledger.entries.insert_one(group_document(600, [(forged, leaf_bytes(forged).decode())]))
    return 600, "not in the tree"


def rewrite_entry_tiles_and_head(ledger):
    """The thorough forger: changes an entry and recomputes every stored hash to match.
    Only the signed head is out of reach."""
    change_a_field(ledger)
    leaves = [leaf for g in sorted(ledger.entries.find(), key=lambda g: g["start"]) for leaf in group_leaves(g)]
    from services.records import tiles
    head, full = tiles.extend(tiles.TreeHead(), [merkle.leaf_hash(leaf.encode()) for leaf in leaves])
    from bson import Binary
    for (level, index), data in full:
        ledger.tiles.update_one({"_id": f"{level}/{index}"}, {"$set": {"hashes": Binary(data)}})
    ledger.tree.update_one({"_id": "head"}, {"$set": {"rows": [Binary(b"".join(r)) for r in head.rows]}})
    return 0, "no longer match the head signed at size 600"


@pytest.mark.parametrize("tamper", [change_a_field, delete_an_entry, swap_two_entries, delete_a_whole_group,
                                    insert_a_forged_entry, rewrite_entry_tiles_and_head])
def test_tampering_in_the_database_is_found_and_named(service_config, tamper):
    config = service_config()
    ledger = built_ledger(config)
    env = {"MONGO_URI": config["MONGO_URI"], "AMENDS_DB_PREFIX": config["AMENDS_DB_PREFIX"]}
    clean = verify_command("--all", "--public-key", str(SIGNER.verifier), env=env)
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout)["entries"] == 600
    seq, problem = tamper(ledger)
    broken = verify_command("--all", "--public-key", str(SIGNER.verifier), env=env)
    assert broken.returncode == 1
    assert f"entry {seq}:" in broken.stderr and problem in broken.stderr, broken.stderr
    assert json.loads(broken.stdout)["first_bad_seq"] == seq


def a_group_beyond_the_head(config, events, behind):
    """A ledger holding events[:4], and a batch of `behind` (claims and entries) written at
    position 4 by a writer that stopped before moving the head."""
    from services.records.store import group_document
    from services.records.ledger import leaf_bytes
    ledger = ledger_of(config)
    ledger.recover()
    ledger.append(events[:4])
    ledger._note_intent(ledger.head())
    ledger.event_ids.insert_many([{"_id": e["id"], "group": 4} for e in behind])
    ledger.entries.insert_one(group_document(4, [(e, leaf_bytes(e).decode()) for e in behind]))
    return ledger


def test_a_crash_between_writing_entries_and_moving_the_head_loses_nothing(service_config):
    config = service_config()
    events = [e for i in range(5) for e in case_events(f"case-{i}")]
    ledger = a_group_beyond_the_head(config, events, events[4:8])  # the process died there
    assert ledger.head().size == 4
    restarted = ledger_of(config)
    assert restarted.recover().size == 8
    assert restarted.append(events[4:]) == 2  # the four redelivered are skipped, two are new
    assert restarted.audit()["entries"] == 10


def test_a_crash_between_claiming_and_writing_loses_nothing(service_config):
    config = service_config()
    ledger = ledger_of(config)
    ledger.recover()
    events = [e for i in range(5) for e in case_events(f"case-{i}")]
    ledger.append(events[:4])
    ledger._note_intent(ledger.head())
    ledger.event_ids.insert_many([{"_id": e["id"], "group": 4} for e in events[4:8]])
    restarted = ledger_of(config)
    assert restarted.recover().size == 4  # the claims are withdrawn
    assert restarted.append(events[4:]) == 6  # so the redelivered four go in, with two new
    assert restarted.audit()["entries"] == 10
    assert restarted.event_ids.count_documents({}) == 10


def test_a_redelivery_in_the_middle_of_a_large_batch_leaves_no_hole(service_config):
    config = service_config()
    ledger = ledger_of(config)
    ledger.recover()
    events = [e for i in range(200) for e in case_events(f"case-{i}")]
    ledger.append(events[150:152] + events[333:334])
    # redeliveries scattered through the batch, across FerretDB's 100-document transactions
    assert ledger.append(events) == 397
    assert ledger.audit()["entries"] == 400
    assert ledger.event_ids.count_documents({}) == 400


def test_an_event_with_no_canonical_form_is_dead_lettered_and_its_batch_goes_in(run_services, amqp_uri):
    from tests.support import read_dead_letters
    good = case_events("case-d")
    poison = new_event("notification.failed", "case-d", {
        "case_id": "case-d", "notification_id": "n-1", "recipient_role": "harmed", "recipient_id": "p-1",
        "channel": "email", "template": "t", "reason": "smtp_error", "attempts": 2 ** 60},
        source="/amends/test/notifications", region="test", correlationid="case-d")
    with records(run_services) as (url, config):
        for event in (good[0], poison, good[1]):
            publish_event(amqp_uri, event)
        ledger = ledger_of(config)
        wait_until(lambda: ledger.head().size == 2)
        letters = wait_until(lambda: read_dead_letters(amqp_uri, "records"))
        assert json.loads(letters[0][0])["id"] == poison["id"]
        assert "not admitted" in letters[0][1]["x-amends-error"]
        assert ledger.audit()["entries"] == 2


def test_a_lost_reply_while_moving_the_head_then_a_new_batch_loses_nothing(service_config, monkeypatch):
    """The fault suite's FerretDB outage: the head's move was applied but its reply was
    lost, the batch is redelivered, and new events arrive meanwhile."""
    from pymongo.errors import AutoReconnect
    config = service_config()
    ledger = ledger_of(config)
    ledger.recover()
    events = [e for i in range(6) for e in case_events(f"case-{i}")]
    ledger.append(events[:4])
    real_move = ledger._move_head

    def move_then_lose_the_reply(old, new):
        real_move(old, new)
        raise AutoReconnect("connection closed")

    monkeypatch.setattr(ledger, "_move_head", move_then_lose_the_reply)
    with pytest.raises(AutoReconnect):
        ledger.append(events[4:8])
    monkeypatch.setattr(ledger, "_move_head", real_move)
    assert ledger.append(events[8:10]) == 2  # new events, in the same process
    assert ledger.append(events[4:8] + events[10:]) == 2  # the redelivery adds nothing
    assert ledger.audit()["entries"] == 12
    assert ledger.event_ids.count_documents({}) == 12


def test_claims_of_a_batch_that_lost_its_position_are_withdrawn(service_config):
    """A batch that claimed its events at a position another group already holds (its
    group insert refused) must not keep those claims, or their redelivery is skipped."""
    from services.records.store import PositionTaken
    events = [e for i in range(5) for e in case_events(f"case-{i}")]
    ledger = a_group_beyond_the_head(service_config(), events, events[4:6])
    ledger._head = ledger.head()  # this writer has not looked: it still believes the head is 4
    with pytest.raises(PositionTaken):
        ledger.append(events[6:8])  # its claims point at group 4, which does not hold them
    assert ledger.append(events[6:]) == 4  # recovered first: the claims withdrawn, all four go in
    assert ledger.audit()["entries"] == 10
    assert ledger.event_ids.count_documents({}) == 10


def test_verification_while_appends_are_in_flight_reports_nothing_missing(service_config):
    """Verification reads up to the head as it found it: batches appended meanwhile (by a
    second writer-side connection, as the service's batch consumer would) are never
    reported missing, and each run covers at least what the one before it did."""
    import eventlet
    config = service_config()
    ledger = built_ledger(config, size=300)
    writer = ledger_of(config)
    writer.recover()
    more = [e for i in range(300) for e in case_events(f"late-{i}")]

    def append_in_batches():
        for start in range(0, len(more), 20):
            writer.append(more[start:start + 20])
            eventlet.sleep(0)

    appending = eventlet.spawn(append_in_batches)
    reader = ledger_of(config)
    covered = []
    while not appending.dead:
        covered.append(reader.audit(SIGNER.verifier)["entries"])
    appending.wait()
    covered.append(reader.audit(SIGNER.verifier)["entries"])
    assert covered == sorted(covered) and covered[0] >= 300
    assert covered[-1] == 300 + len(more)
    assert len(covered) > 2, "the appends finished before a second verification: nothing was in flight"


def test_a_full_batch_of_a_thousand_cases_is_one_group(service_config):
    """A batch as large as the consumer takes (1,000 events of 1,000 cases) is stored as one
    group: on FerretDB on PostgreSQL no btree index over the whole `case_ids` array (whose
    key would pass PostgreSQL's limit) stands in its way, and the feed and a timeline find
    entries in it by their GIN twins."""
    from tests.support import ferretdb_postgresql_url
    config = service_config()
    ledger = ledger_of(config)
    ledger.ensure_indexes(ferretdb_postgresql_url())
    ledger.recover()
    events = [case_events(f"case-{i:04d}-{'x' * 30}")[0] for i in range(1000)]
    assert ledger.append(events) == 1000
    groups = list(ledger.entries.find({}, {"start": 1, "end": 1}))
    assert [(g["start"], g["end"]) for g in groups] == [(0, 1000)]
    assert [e["seq"] for e in ledger.entries_after(498, 3, below=1000)] == [499, 500, 501]
    assert [e["seq"] for e in ledger.case_entries(events[777]["subject"])] == [777]


def test_an_event_of_another_region_is_dead_lettered_with_the_reason_and_its_own_go_in(run_services, amqp_uri):
    """A region's ledger holds its own events only (services/records/residency.py)."""
    from tests.support import read_dead_letters
    own = case_events("case-r")
    foreign = new_event("referral.received", "case-x", referral_received_data(case_id="case-x", region="gwent"),
                        source="/amends/gwent/referrals", region="gwent", correlationid="case-x")
    with records(run_services) as (url, config):
        assert config["AMENDS_REGION"] == "test" and SIGNER.name == "amends.test/ledger"
        for event in (own[0], foreign, own[1]):
            publish_event(amqp_uri, event)
        ledger = ledger_of(config)
        wait_until(lambda: ledger.head().size == 2)
        letters = wait_until(lambda: read_dead_letters(amqp_uri, "records"))
        assert [json.loads(body)["id"] for body, _ in letters] == [foreign["id"]]
        reason = letters[0][1]["x-amends-error"]
        assert reason.startswith("not admitted: region 'gwent' is not this ledger's ('test')"), reason
        assert ledger.entry_by_event(foreign["id"]) is None
        assert [i for g in ledger.entries.find() for i in g["event_ids"]] == [e["id"] for e in own]
        assert ledger.audit(SIGNER.verifier)["entries"] == 2
        # and its checkpoints name the region's ledger
        keys = provision_keys(config)
        signed = requests.post(f"{url}/v1/ledger/checkpoints", headers={"Authorization": f"Bearer {keys['auditor']}"})
        assert signed.status_code == 201 and signed.text.startswith("amends.test/ledger\n2\n")


def test_records_does_not_start_with_another_regions_signing_key(service_config):
    from shared.config import StartRefused
    refusal = refused_start(RecordsService, service_config(
        AMENDS_LEDGER_SIGNING_KEY=str(Signer.generate("amends.gwent/ledger"))), StartRefused)
    assert "amends.gwent/ledger" in str(refusal)
