"""Each service's OpenAPI 3 document is valid, and lists every HTTP route its service class
declares (read from the nameko entrypoints, so a new route left out of the document fails
here); the operational routes (/health, /metrics, the document) are listed too."""
import copy

import pytest
import schemathesis

from services.matching import openapi as matching_openapi
from services.matching.service import MatchingService
from services.notifications import openapi as notifications_openapi
from services.notifications.service import NotificationsService
from services.records import openapi as records_openapi
from services.records.service import RecordsService
from services.referrals import openapi as referrals_openapi
from services.referrals.service import ReferralsService
from services.reports import openapi as reports_openapi
from services.reports.service import ReportsService
from services.subscriptions import openapi as subscriptions_openapi
from services.subscriptions.service import SubscriptionsService
from shared.openapi import OPERATIONAL, declared_routes, documented_routes, shapes, undocumented

SERVICES = {
    "referrals": (ReferralsService, referrals_openapi.document),
    "matching": (MatchingService, matching_openapi.document),
    "notifications": (NotificationsService, notifications_openapi.document),
    "records": (RecordsService, records_openapi.document),
    "subscriptions": (SubscriptionsService, subscriptions_openapi.document),
    "reports": (ReportsService, reports_openapi.document),
}


def loaded(document):
    schema = schemathesis.openapi.from_dict(document)
    schema.validate()   # against the OpenAPI 3.0 meta-schema
    return schema


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_the_document_is_valid_openapi_3_and_every_operation_resolves(name):
    service, document = SERVICES[name]
    found = document()
    assert found["openapi"].startswith("3.")
    schema = loaded(found)
    operations = [result.ok() for result in schema.get_all_operations()]   # .ok() raises on an unresolvable one
    assert len(operations) == len(documented_routes(found)) > len(OPERATIONAL)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_route_the_service_declares_is_documented_and_nothing_else(name):
    service, document = SERVICES[name]
    declared = declared_routes(service)
    assert {path for _, path in declared} >= OPERATIONAL
    assert undocumented(service, document()) == set()
    assert shapes(documented_routes(document())) == shapes(declared)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_every_operation_says_who_may_call_it_and_how_it_fails(name):
    found = SERVICES[name][1]()
    for path, operations in found["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), (method, path)
            assert "security" in operation, (method, path)
            if operation["security"]:   # a key is needed: a missing or refused one is a 401
                assert {"401", "429"} <= set(operation["responses"]), (method, path)
            if "requestBody" in operation:
                assert {"400", "413"} <= set(operation["responses"]), (method, path)


def test_the_checks_would_catch_a_broken_or_incomplete_document():
    found = copy.deepcopy(matching_openapi.document())
    del found["paths"]["/v1/cases/{case_id}/decision"]
    assert undocumented(MatchingService, found) == {("POST", "/v1/cases/{case_id}/decision")}
    found["paths"]["/v1/facilitators"]["get"]["responses"] = "none"
    with pytest.raises(Exception):
        loaded(found)
