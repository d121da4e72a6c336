"""The access matrix against the four services running as processes: every case route of
every service, for callers in every relation to one case (own or other agency, own or
other region, offered or holding it or neither, regional or national), before and after
the facilitator accepts. Each cell asserts the status code, and that no personal data
appears where it must not.

The expectations are written out by hand below (not computed by the code under test):
- a role the route does not allow: 403;
- a case the caller may not see: 404, whatever the role;
- a case the caller may see but not act on: 403.

An operator's key is also walked through every route of every running service: only the
ledger's routes let it in.
"""
import re
from dataclasses import dataclass

import pytest
import requests

from services.matching import facilitators
from services.matching.store import MatchingStore
from services.records.checkpoints import Signer
from shared.messaging import topology
from tests.factories import days_ago, referral_body
from tests.platform import Platform
from tests.support import disconnect_all, issue_key, smtp_server, wait_until
from tests.unit.test_route_policies import ALL as ROUTES, OPERATOR_ROUTES

OWN, OTHER = "south-wales", "north-wales"
PERSONAL = ("Sian Jones", "Liam Evans", "SWP/26/104455", "dafydd.morgan@police.example")


@dataclass(frozen=True)
class Caller:
    name: str
    role: str
    agency: str = "test-police"
    regions: tuple = (OWN,)
    subject: str = None
    national: bool = False


CALLERS = (
    Caller("referrer of the same agency", "referrer"),
    Caller("referrer of another agency", "referrer", agency="other-police"),
    Caller("coordinator of the case region", "coordinator", agency="rj-hub"),
    Caller("coordinator of another region", "coordinator", agency="rj-hub", regions=(OTHER,)),
    Caller("the facilitator offered the case", "facilitator", agency="rj-hub", subject="fac-m1"),
    Caller("a facilitator with no part in it", "facilitator", agency="rj-hub", subject="fac-m2"),
    Caller("auditor of the case region", "auditor", agency="inspectorate"),
    Caller("auditor of another region", "auditor", agency="inspectorate", regions=(OTHER,)),
    Caller("national auditor", "auditor", agency="inspectorate", regions=(), national=True),
    # of the same agency as the referrer: the regions decide, never the agency
    Caller("operator of the case region", "operator", agency="test-police"),
    Caller("operator of another region", "operator", agency="test-police", regions=(OTHER,)),
)
# who may see the case at all, in both phases (the offered facilitator, while offered and once holding it)
SEES = {"referrer of the same agency", "coordinator of the case region", "the facilitator offered the case",
        "auditor of the case region", "national auditor", "operator of the case region"}


def acts(caller, phase):
    return caller.name == "coordinator of the case region" or (
        caller.name == "the facilitator offered the case" and phase == "held")


def personal(caller, phase):
    return acts(caller, phase)  # the same people: the coordinator, and the facilitator holding the case


@dataclass(frozen=True)
class Route:
    service: str
    method: str
    path: str
    roles: tuple
    kind: str          # see, act, listing, national
    ok: int            # the answer for a caller who passes the policy
    body: dict = None


def routes(case_id, assignment_id):
    everyone = ("referrer", "coordinator", "facilitator", "auditor")
    return [
        Route("referrals", "GET", f"/v1/cases/{case_id}", everyone, "see", 200),
        Route("referrals", "GET", "/v1/cases", everyone, "listing", 200),
        # a body that fails validation: past the policy, the answer is 400 and nothing changes
        Route("referrals", "POST", f"/v1/cases/{case_id}/transitions", ("coordinator", "facilitator"), "act", 400,
              {"to": "NOWHERE"}),
        Route("referrals", "POST", f"/v1/cases/{case_id}/consents", ("coordinator", "facilitator"), "act", 400, {}),
        Route("referrals", "POST", f"/v1/cases/{case_id}/support-referrals", ("coordinator", "facilitator"), "act",
              400, {}),
        Route("referrals", "GET", f"/v1/cases/{case_id}/access-log", ("coordinator", "auditor"), "see", 200),
        # the casework after allocation: each with a body that fails validation
        *[Route("referrals", "POST", f"/v1/cases/{case_id}/{path}", ("coordinator", "facilitator"), "act", 400, {})
          for path in ("preparation/contacts", "risk-assessments", "safety-decision", "items", "intervention",
                       "sessions", "agreement")],
        Route("referrals", "POST", f"/v1/cases/{case_id}/supervision", ("coordinator",), "act", 400, {}),
        Route("referrals", "POST", f"/v1/cases/{case_id}/items/item-{'0' * 32}/release",
              ("coordinator", "facilitator"), "act", 400, {}),
        Route("referrals", "GET", f"/v1/cases/{case_id}/items", ("coordinator", "facilitator"), "see", 200),
        Route("matching", "GET", f"/v1/cases/{case_id}/assessment", ("coordinator", "auditor"), "see", 200),
        Route("matching", "GET", f"/v1/cases/{case_id}/assignment", ("coordinator", "auditor", "facilitator"),
              "see", 200),
        # the case is not under review: past the policy, the answer is 409
        Route("matching", "POST", f"/v1/cases/{case_id}/decision", ("coordinator",), "act", 409,
              {"decision": "suitable", "reason_code": "checked", "reason": "matrix test"}),
        Route("records", "GET", f"/v1/cases/{case_id}/timeline", everyone, "see", 200),
        Route("records", "GET", f"/v1/cases/{case_id}/bundle", everyone + ("operator",), "see", 200),
        Route("records", "GET", "/v1/ledger/entries", ("auditor",), "national", 200),
        # the ledger's deployment-wide routes (after the bundle, which signs a head)
        *[Route("records", "GET", path, everyone + ("operator",), "deployment", 200)
          for path in ("/v1/ledger/head", "/v1/ledger/public-key", "/v1/ledger/proof/inclusion?seq=0",
                       "/v1/ledger/proof/consistency?first=1&second=1")],
        Route("records", "GET", "/v1/ledger/verify", ("auditor", "coordinator", "operator"), "deployment", 200),
        Route("records", "POST", "/v1/ledger/checkpoints", ("auditor", "coordinator"), "deployment", 201),
        Route("notifications", "GET", f"/v1/notifications?case={case_id}", ("coordinator", "auditor"), "see", 200),
        Route("matching", "POST", f"/v1/assignments/{assignment_id}/accept", ("facilitator", "coordinator"),
              "offer", 200),
        # the registry: fac-m1 works in the case region
        Route("matching", "GET", "/v1/facilitators/fac-m1", ("coordinator", "auditor"), "region", 200),
        Route("matching", "GET", "/v1/facilitators", ("coordinator", "auditor"), "listing", 200),
    ]


def expected(route, caller, phase):
    if caller.role not in route.roles:
        return 403
    if route.kind in ("listing", "deployment"):
        return route.ok
    if route.kind == "region":
        return route.ok if caller.national or OWN in caller.regions else 404
    if route.kind == "national":
        return 200 if caller.national else 403
    if route.kind == "offer":
        if caller.role == "facilitator":
            return route.ok if caller.subject == "fac-m1" else 403  # someone else's offer
        return route.ok if caller.name == "coordinator of the case region" else 404
    if caller.name not in SEES:
        return 404
    if route.kind == "act" and not acts(caller, phase):
        return 403
    return route.ok


@pytest.fixture
def platform(service_config, tmp_path):
    config = service_config()
    topology.declare(config["AMQP_URI"], (0.2, 0.4))
    store = MatchingStore.open(config)
    for fid in ("fac-m1", "fac-m2"):  # fac-m2 works elsewhere: the case can only go to fac-m1
        facilitators.register(store, {"facilitator_id": fid, "level": "advanced", "languages": ["en"], "capacity": 3,
                               "regions": [OWN] if fid == "fac-m1" else [OTHER], "last_active": days_ago(30)})
    keys = {c.name: issue_key(config, c.role, c.agency, c.subject or f"person-{i}", regions=c.regions,
                              national=c.national) for i, c in enumerate(CALLERS)}
    with smtp_server(str(tmp_path / "mail")) as smtp_port:
        services = Platform(config["AMQP_URI"], config["MONGO_URI"], config["AMENDS_DB_PREFIX"], smtp_port,
                            str(tmp_path / "logs"), extra_env={
                                "AMENDS_LEDGER_SIGNING_KEY": str(Signer.generate("amends.test/ledger")),
                                "AMENDS_RATE_BURST": "1000"})
        try:
            services.start()
            yield services, keys
        finally:
            services.stop()
            disconnect_all()


def call(services, keys, caller_name, route):
    headers = {"Authorization": f"Bearer {keys[caller_name]}"} if caller_name else {}
    return requests.request(route.method, services.url(route.service) + route.path, json=route.body,
                            headers=headers, timeout=30)


def test_every_caller_against_every_case_route(platform):
    services, keys = platform
    answer = requests.post(services.url("referrals") + "/v1/referrals", json=referral_body(0),
                           headers={"Authorization": f"Bearer {keys[CALLERS[0].name]}"}, timeout=30)
    assert answer.status_code == 201, answer.text
    case_id = answer.json()["case_id"]
    coordinator = {"Authorization": f"Bearer {keys['coordinator of the case region']}"}

    def offer():
        found = requests.get(services.url("matching") + f"/v1/cases/{case_id}/assignment", headers=coordinator,
                             timeout=10)
        offers = found.json().get("offers", []) if found.status_code == 200 else []
        return next((o["assignment_id"] for o in offers if o["facilitator_id"] == "fac-m1"), None)

    assignment_id = wait_until(offer, timeout=60, interval=0.5)
    settled = {"offered": "facilitator.assigned", "held": "assignment.accepted"}
    cells = 0
    for phase in ("offered", "held"):
        if phase == "held":
            accepted = requests.post(services.url("matching") + f"/v1/assignments/{assignment_id}/accept",
                                     headers={"Authorization": f"Bearer {keys['the facilitator offered the case']}"},
                                     timeout=30)
            assert accepted.status_code == 200, accepted.text
        _wait_until_every_service_knows(services, coordinator, case_id, settled[phase])
        for route in routes(case_id, assignment_id):
            assert call(services, keys, None, route).status_code == 401, route
            for caller in CALLERS:
                got = call(services, keys, caller.name, route)
                want = expected(route, caller, phase)
                assert got.status_code == want, (phase, route.method, route.path, caller.name, got.text[:200])
                if route.kind == "listing" and route.service == "referrals" and want == 200:
                    listed = {c["case_id"] for c in got.json()["items"]}
                    assert (case_id in listed) == (caller.name in SEES), (phase, caller.name, "listing")
                if route.kind == "listing" and route.service == "matching" and want == 200:
                    listed = {f["facilitator_id"] for f in got.json()["facilitators"]}
                    assert ("fac-m1" in listed) == (caller.national or OWN in caller.regions), caller.name
                    assert ("fac-m2" in listed) == (caller.national or OTHER in caller.regions), caller.name
                shows = route.path == f"/v1/cases/{case_id}" and personal(caller, phase)
                if shows:
                    assert all(v in got.text for v in ("Sian Jones", "Liam Evans", "SWP/26/104455")), caller.name
                else:
                    assert not [v for v in PERSONAL if v in got.text], (phase, route.path, caller.name)
                cells += 1
    assert cells == 2 * len(routes(case_id, assignment_id)) * len(CALLERS)
    _an_operator_walks_every_route(services, keys["operator of the case region"], case_id)
    _erasure(services, keys, case_id)


# the queries that make an operator's allowed routes answer 200
QUERIES = {"/v1/ledger/proof/inclusion": "?seq=0", "/v1/ledger/proof/consistency": "?first=1&second=1"}


def _an_operator_walks_every_route(services, key, case_id):
    """Every route of every running service that needs a key, called with the key of an
    operator who covers the case's region: only the ledger's routes answer (the case named
    where a route names one, made-up ids elsewhere: the role is refused before any lookup)."""
    walked = set()
    for service, method, url, handler in ROUTES:
        if handler.policy.scope == "public" or service not in services.ports:
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: case_id if m.group(1) == "case_id" else "x-1", url)
        got = requests.request(method, services.url(service) + path + QUERIES.get(url, ""), json={},
                               headers={"Authorization": f"Bearer {key}"}, timeout=30)
        allowed = (service, method, url) in OPERATOR_ROUTES
        assert got.status_code == (200 if allowed else 403), (method, url, got.text[:200])
        assert not [v for v in PERSONAL if v in got.text], (method, url)
        walked.add((service, method, url))
    assert OPERATOR_ROUTES <= walked
    assert {s for s, *_ in walked} >= {"referrals", "matching", "notifications", "records", "subscriptions", "reports"}


def _wait_until_every_service_knows(services, coordinator, case_id, event_type):
    """Referrals, records and notifications follow matching's events: wait until each
    has this one (read from their own stores, not through the routes under test)."""
    import pymongo
    db_prefix = services.env["AMENDS_DB_PREFIX"]
    client = pymongo.MongoClient(services.env["MONGO_URI"])
    field = "held_by" if event_type == "assignment.accepted" else "offered_to"
    try:
        wait_until(lambda: "fac-m1" in (client[f"{db_prefix}_referrals"].cases.find_one(
            {"_id": case_id}, {field: 1}) or {}).get(field, []), timeout=60, interval=0.5)
        wait_until(lambda: event_type in _timeline(services, coordinator, case_id), timeout=60, interval=0.5)
        from services.notifications.store import NotificationsStore
        notifications = NotificationsStore(client[f"{db_prefix}_notifications"])
        wait_until(lambda: notifications.case(case_id), timeout=60, interval=0.5)
    finally:
        client.close()


def _timeline(services, coordinator, case_id):
    answer = requests.get(services.url("records") + f"/v1/cases/{case_id}/timeline", headers=coordinator,
                          timeout=10)
    return {e["type"] for e in answer.json()["entries"]} if answer.status_code == 200 else set()


def _erasure(services, keys, case_id):
    """Erasure is irreversible, so it goes last: everyone who may not erase first, then the coordinator."""
    view = requests.get(services.url("referrals") + f"/v1/cases/{case_id}", timeout=10,
                        headers={"Authorization": f"Bearer {keys['coordinator of the case region']}"}).json()
    harmer = next(p["participant_id"] for p in view["participants"] if p["role"] == "harmer")
    route = Route("referrals", "POST", f"/v1/cases/{case_id}/participants/{harmer}/erasure", ("coordinator",),
                  "act", 200)
    for caller in sorted(CALLERS, key=lambda c: c.name == "coordinator of the case region"):
        assert call(services, keys, caller.name, route).status_code == expected(route, caller, "held"), caller.name
