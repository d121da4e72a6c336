"""Every HTTP route of every service declares its one authorisation policy."""
import inspect

import pytest
from nameko.web.handlers import HttpRequestHandler

from services.matching.service import MatchingService
from services.notifications.service import NotificationsService
from services.records.service import RecordsService
from services.referrals.service import ReferralsService
from services.reports.service import ReportsService
from services.subscriptions.service import SubscriptionsService
from shared.security import api_keys
from shared.web import SCOPES

SERVICES = (ReferralsService, MatchingService, NotificationsService, RecordsService, SubscriptionsService,
            ReportsService)


def routes(service):
    """(method, url, handler) of every @http entrypoint of a service class."""
    found = []
    for name, member in inspect.getmembers(service, inspect.isfunction):
        for entrypoint in getattr(member, "nameko_entrypoints", ()):
            if isinstance(entrypoint, HttpRequestHandler) or entrypoint.__class__.__name__ == "HttpRequestHandler":
                found.append((entrypoint.method, entrypoint.url, member))
    return found


ALL = [(service.name, method, url, handler) for service in SERVICES for method, url, handler in routes(service)]


def test_the_enumeration_finds_every_service_s_routes():
    # a check that finds no routes would pass for ever: each service has routes, health among them
    assert {name for name, *_ in ALL} == {s.name for s in SERVICES}
    assert sum(1 for _, _, url, _ in ALL if url == "/health") == len(SERVICES)
    assert len(ALL) >= 28


@pytest.mark.parametrize("service,method,url,handler", ALL, ids=[f"{s} {m} {u}" for s, m, u, _ in ALL])
def test_every_route_declares_roles_and_a_scope(service, method, url, handler):
    policy = getattr(handler, "policy", None)
    assert policy is not None, f"{service} {method} {url} declares no policy (use @api(roles=..., scope=...))"
    assert policy.scope in SCOPES
    if policy.scope == "public":
        assert policy.roles is None
    else:
        assert policy.roles and set(policy.roles) <= set(api_keys.ROLES)
    if "<string:case_id>" in url:
        assert policy.scope in ("case", "case-act"), "a route naming a case must be judged by the case"


# The only routes an operator's key may call: records' ledger routes of deployment scope, and
# a case's bundle (of a case in the key's regions). Written out by hand, not read from the code.
OPERATOR_ROUTES = {
    ("records", "GET", "/v1/ledger/head"), ("records", "GET", "/v1/ledger/public-key"),
    ("records", "GET", "/v1/ledger/proof/inclusion"), ("records", "GET", "/v1/ledger/proof/consistency"),
    ("records", "GET", "/v1/ledger/verify"), ("records", "GET", "/v1/cases/<string:case_id>/bundle"),
}


def test_an_operator_s_key_reaches_the_ledger_s_routes_and_nothing_else():
    allowed = {(service, method, url) for service, method, url, handler in ALL
               if "operator" in (getattr(handler, "policy").roles or ())}
    assert allowed == OPERATOR_ROUTES
    for service, method, url, handler in ALL:
        if (service, method, url) in OPERATOR_ROUTES:
            assert handler.policy.scope == ("case" if "<string:case_id>" in url else "deployment"), url
