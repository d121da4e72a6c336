"""The subscriptions API on the real broker and FerretDB: who may do what (an agency's own
subscriptions only; another's is 404), bad input refused naming the field with nothing stored,
and the events each change announces."""
import pytest
import requests

from services.records.service import RecordsService
from services.subscriptions.service import SubscriptionsService
from tests.platform import TEST_SUBSCRIPTIONS_KEY
from tests.support import Tap, issue_key, provision_keys, wait_until

BODY = {"kind": "webhook", "url": "https://police.example/amends", "event_types": ["case.*", "referral.received"]}


@pytest.fixture
def api(run_services, amqp_uri):
    extra = {"AMENDS_SUBSCRIPTIONS_KEY": TEST_SUBSCRIPTIONS_KEY, "SUBSCRIPTIONS_ALLOW_LOCAL_HTTP": "1",
             "SUBSCRIPTIONS_SECRET_OVERLAP": "3600"}
    with run_services(RecordsService), run_services(SubscriptionsService, **extra) as (url, config):
        keys = provision_keys(config)
        keys["gwent_coordinator"] = issue_key(config, "coordinator", "gwent-rj", "coord-g", regions=("gwent",))
        tap = Tap(amqp_uri, [("subscriptions", "#")], name="test-subscriptions-tap")
        try:
            yield url, keys, tap
        finally:
            tap.close()


def auth(keys, who):
    return {"Authorization": f"Bearer {keys[who]}"}


def test_an_agency_makes_reads_changes_and_deletes_its_own_subscriptions_and_no_one_else_s(api):
    url, keys, tap = api
    made = requests.post(f"{url}/v1/subscriptions", json=BODY, headers=auth(keys, "referrer"), timeout=10)
    assert made.status_code == 201, made.text
    sub_id, secret = made.json()["subscription_id"], made.json()["secret"]
    assert secret.startswith("whsec_") and made.headers["Location"] == f"/v1/subscriptions/{sub_id}"
    one = f"{url}/v1/subscriptions/{sub_id}"

    shown = requests.get(one, headers=auth(keys, "referrer"), timeout=10)
    assert shown.status_code == 200 and secret not in shown.text and secret[6:] not in shown.text
    assert shown.json()["agency"] == "test-police" and shown.json()["delivery"]["status"] == "active"
    listed = requests.get(f"{url}/v1/subscriptions", headers=auth(keys, "auditor"), timeout=10).json()["items"]
    assert [s["subscription_id"] for s in listed] == [sub_id]   # the agency's auditor sees it too
    assert requests.get(f"{url}/v1/subscriptions", headers=auth(keys, "other_agency_referrer"),
                        timeout=10).json()["items"] == []

    other = auth(keys, "other_agency_referrer")
    for method, path, body in [("GET", "", None), ("PATCH", "", {"max_batch": 2}), ("DELETE", "", None),
                               ("POST", "/rotate-secret", None), ("POST", "/replay", {"from_position": 0}),
                               ("GET", "/deliveries", None)]:
        answer = requests.request(method, one + path, json=body, headers=other, timeout=10)
        assert answer.status_code == 404, (method, path)
    assert requests.get(f"{url}/v1/subscriptions/sub-nonesuch", headers=auth(keys, "referrer")).status_code == 404
    assert requests.post(f"{url}/v1/subscriptions", json=BODY, headers=auth(keys, "coordinator")).status_code == 403
    assert requests.get(f"{url}/v1/subscriptions").status_code == 401

    changed = requests.patch(one, json={"event_types": ["case.closed"], "max_batch": 10},
                             headers=auth(keys, "referrer"), timeout=10)
    assert changed.status_code == 200 and changed.json()["event_types"] == ["case.closed"]
    assert changed.json()["max_batch"] == 10 and changed.json()["url"] == BODY["url"]

    rotated = requests.post(f"{one}/rotate-secret", headers=auth(keys, "referrer"), timeout=10)
    assert rotated.status_code == 200 and rotated.json()["secret"] not in (secret, None)
    assert requests.get(one, headers=auth(keys, "referrer"), timeout=10).json()["secrets_in_use"] == 2

    replay = requests.post(f"{one}/replay", json={"from_position": 0}, headers=auth(keys, "referrer"), timeout=10)
    assert replay.status_code == 202 and replay.json()["from_position"] == 0
    assert requests.get(one, headers=auth(keys, "referrer")).json()["replay"]["replay_id"] == replay.json()["replay_id"]
    log = requests.get(f"{one}/deliveries", headers=auth(keys, "referrer"), timeout=10)
    assert log.status_code == 200 and log.json() == {"items": [], "next_before": None}

    assert requests.delete(one, headers=auth(keys, "referrer"), timeout=10).status_code == 204
    assert requests.get(one, headers=auth(keys, "referrer"), timeout=10).status_code == 404
    assert requests.get(f"{url}/v1/subscriptions", headers=auth(keys, "referrer")).json()["items"] == []

    events = wait_until(lambda: (lambda seen: seen if len(seen) >= 2 else None)(
        [e for e in tap.drain() if e["type"].startswith("subscription.")]))
    assert [(e["type"], e["data"]) for e in events] == [
        ("subscription.created", {"subscription_id": sub_id, "agency": "test-police", "kind": "webhook"}),
        ("subscription.deleted", {"subscription_id": sub_id, "agency": "test-police", "kind": "webhook"})]
    assert BODY["url"] not in str(events) and secret not in str(events)


@pytest.mark.parametrize("body,fields", [
    ({**BODY, "url": "http://police.example/amends"}, {"url"}),
    ({**BODY, "url": "https://u:p@police.example/amends"}, {"url"}),
    ({**BODY, "event_types": ["case.opened"]}, {"event_types"}),
    ({**BODY, "event_types": "case.*"}, {"event_types"}),
    ({**BODY, "max_batch": 500, "filter": {"regions": "gwent"}}, {"max_batch", "filter"}),
    ({**BODY, "start": {"position": 10 ** 9}}, {"start"}),
    ({**BODY, "secret": "whsec_mine"}, {"secret"}),
    ({"kind": "webhook", "event_types": ["case.*"]}, {"url"}),
])
def test_bad_input_is_refused_naming_each_field_and_nothing_is_stored(api, body, fields):
    url, keys, tap = api
    answer = requests.post(f"{url}/v1/subscriptions", json=body, headers=auth(keys, "referrer"), timeout=10)
    assert answer.status_code == 400, answer.text
    assert set(answer.json()["fields"]) == fields
    assert requests.get(f"{url}/v1/subscriptions", headers=auth(keys, "referrer")).json()["items"] == []
    assert tap.drain() == []


def test_a_request_that_is_no_json_object_and_the_amqp_kind_are_answered_plainly(api):
    url, keys, _ = api
    not_json = requests.post(f"{url}/v1/subscriptions", data="kind=webhook", headers={
        **auth(keys, "referrer"), "Content-Type": "application/x-www-form-urlencoded"}, timeout=10)
    assert not_json.status_code == 400
    amqp = requests.post(f"{url}/v1/subscriptions", json={"kind": "amqp", "event_types": ["case.*"]},
                         headers=auth(keys, "referrer"), timeout=10)
    # this deployment has no SUBSCRIPTIONS_BROKER_ADMIN_URL: it runs, and says what is missing
    assert amqp.status_code == 501 and "webhook" in amqp.json()["message"]
    assert "SUBSCRIPTIONS_BROKER_ADMIN_URL" in amqp.json()["message"]
    made = requests.post(f"{url}/v1/subscriptions", json=BODY, headers=auth(keys, "referrer"), timeout=10).json()
    one = f"{url}/v1/subscriptions/{made['subscription_id']}"
    for body, field in [({"from_position": -1}, "from_position"), ({"from_position": "0"}, "from_position"),
                        ({"from_position": 10 ** 9}, "from_position"), ({"from_position": 0, "x": 1}, "x")]:
        answer = requests.post(f"{one}/replay", json=body, headers=auth(keys, "referrer"), timeout=10)
        assert answer.status_code == 400 and field in answer.json()["fields"], body
    assert requests.get(one, headers=auth(keys, "referrer")).json()["replay"] is None
    for body, field in [({}, "_schema"), ({"kind": "amqp"}, "kind"), ({"url": "ftp://x.example"}, "url")]:
        answer = requests.patch(one, json=body, headers=auth(keys, "referrer"), timeout=10)
        assert answer.status_code == 400 and field in answer.json()["fields"], body
    for param in ("before=0", "limit=0", "limit=101", "before=x"):
        assert requests.get(f"{one}/deliveries?{param}", headers=auth(keys, "referrer")).status_code == 400


def test_sharing_agreements_are_set_by_coordinators_kept_in_versions_and_announced(api):
    url, keys, tap = api
    path = f"{url}/v1/agencies/yot-gwent/sharing"
    first = requests.put(path, json={"profile": "area_cases", "regions": ["gwent"], "agreement_reference": "DSA/1"},
                         headers=auth(keys, "coordinator"), timeout=10)
    assert first.status_code == 200, first.text
    assert first.json()["current"]["version"] == 1 and first.json()["current"]["set_by"] == "coordinator:dev-coordinator"
    second = requests.put(path, json={"profile": "statistics", "regions": ["gwent"], "agreement_reference": "DSA/2"},
                          headers=auth(keys, "gwent_coordinator"), timeout=10)
    assert second.status_code == 200 and [v["profile"] for v in second.json()["versions"]] == ["area_cases",
                                                                                                "statistics"]
    # refused: a coordinator not covering a region named, a referrer, bad input
    uncovered = requests.put(path, json={"profile": "area_cases", "regions": ["gwent", "south-wales"],
                                         "agreement_reference": "DSA/3"}, headers=auth(keys, "gwent_coordinator"))
    assert uncovered.status_code == 403 and "regions" in uncovered.json()["fields"]
    assert requests.put(path, json={"profile": "none", "agreement_reference": "DSA/4"},
                        headers=auth(keys, "referrer")).status_code == 403
    bad = requests.put(path, json={"profile": "everything", "agreement_reference": ""}, headers=auth(keys, "coordinator"))
    assert bad.status_code == 400 and {"profile", "agreement_reference"} <= set(bad.json()["fields"])
    # read: coordinators, and the agency's own keys; another agency's keys find nothing
    shown = requests.get(path, headers=auth(keys, "coordinator"), timeout=10).json()
    assert shown["current"]["version"] == 2 and len(shown["versions"]) == 2
    assert requests.get(path, headers=auth(keys, "referrer")).status_code == 404   # test-police's key
    own = requests.get(f"{url}/v1/agencies/test-police/sharing", headers=auth(keys, "referrer"))
    assert own.status_code == 200 and own.json() == {"agency": "test-police", "current": None, "versions": []}

    announced = wait_until(lambda: (lambda seen: seen if len(seen) >= 2 else None)(
        [e for e in tap.drain() if e["type"] == "sharing.agreement_set"]))
    assert [(e["data"]["version"], e["data"]["profile"], e["data"]["set_by"]) for e in announced] == [
        (1, "area_cases", "coordinator:dev-coordinator"), (2, "statistics", "coordinator:coord-g")]
