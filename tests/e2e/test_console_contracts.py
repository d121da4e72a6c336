"""Every call the console makes goes through the called service's contract.

The services run as processes; the console runs in this process with a recording
requests.Session (tests/contracts.py) under its calls. Each role signs in and every page
reachable from its start page by links is opened once (a crawl, so a page added to the
navigation later is driven too), plus the case list's filters, a coordinator's decision
and a facilitator's acceptance. Then every recorded exchange must be an operation of the
called service's /v1/openapi.json, with declared and valid query parameters and body, and
an answer matching the operation's response schema.
"""
import dataclasses
import html
import re
from collections import Counter
from datetime import date, timedelta

import pytest
import requests

from services.console import sessions
from tests.contracts import Contracts, RecordingSession
from tests.e2e.console_browser import LEAD, PASSWORD, console_stack
from tests.factories import days_ago, referral_body
from tests.support import wait_until

# pages a crawl does not follow: they change what the browser holds, or are not pages
NOT_PAGES = ("/static/", "/language", "/sign-out", "/sign-in")
MOST_PAGES = 60   # per role: more than the console has, few enough to stop a runaway crawl


@pytest.fixture
def stack(amqp_uri, tmp_path):
    recorder = RecordingSession()
    services = ("referrals", "matching", "notifications", "records", "reports")
    with console_stack(amqp_uri, tmp_path, services=services, api_session=recorder) as (url, keys, apis):
        yield url, keys, apis, recorder


class Person:
    """A signed-in person's browser, without the browser: a requests.Session with their cookies."""

    def __init__(self, url, username, role):
        self.url = url
        self.http = requests.Session()
        form = self.http.get(f"{url}/sign-in", timeout=30)
        signed_in = self.http.post(f"{url}/sign-in", timeout=30, data={
            "username": username, "password": PASSWORD[role], sessions.CSRF_FIELD: _token(form.text), "next": ""})
        assert signed_in.status_code == 200 and sessions.COOKIE in self.http.cookies, signed_in.status_code
        self.start = signed_in.url

    def get(self, path):
        return self.http.get(f"{self.url}{path}", timeout=60)

    def post_form(self, page, action, **fields):
        """Submit the form of `page` (a path) whose action is `action`, with its CSRF token."""
        token = _token(self.get(page).text)
        return self.http.post(f"{self.url}{action}", data={sessions.CSRF_FIELD: token, **fields}, timeout=60)

    def crawl(self):
        """Open every page reachable by links from the start page, once; path -> status."""
        seen, queue = {}, [self.start.removeprefix(self.url)]
        while queue and len(seen) < MOST_PAGES:
            path = queue.pop(0)
            if path in seen:
                continue
            answer = self.get(path)
            seen[path] = answer.status_code
            for link in re.findall(r'href="(/[^"]*)"', answer.text):
                link = html.unescape(link)
                if not link.startswith(NOT_PAGES) and link not in seen:
                    queue.append(link)
        return seen


def _token(page):
    found = re.search(rf'name="{sessions.CSRF_FIELD}" value="([^"]+)"', page)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def test_every_call_the_console_makes_keeps_the_called_services_contract(stack):
    url, keys, apis, recorder = stack
    referrals, matching = apis["referrals"], apis["matching"]
    coordinator_key = {"Authorization": f"Bearer {keys['coordinator']}"}
    # reported a fortnight ago: its Victims' Code clocks are overdue
    body = referral_body(0, flags=["sexual_offence"], crime_reported_on=days_ago(14))
    referred = requests.post(f"{referrals}/v1/referrals", json=body,
                             headers={"Authorization": f"Bearer {keys['referrer']}"}, timeout=30)
    assert referred.status_code == 201, referred.text
    case_id = referred.json()["case_id"]
    wait_until(lambda: requests.get(f"{referrals}/v1/cases/{case_id}", headers=coordinator_key, timeout=10)
               .json().get("status") == "TRIAGE", timeout=60, interval=0.5)

    # the coordinator: every page, the filters, then the decision on the case under review
    cora = Person(url, "cora", "coordinator")
    pages = cora.crawl()
    assert {"/cases", "/review", f"/cases/{case_id}", f"/review/{case_id}"} <= set(pages), pages
    soon = (date.today() + timedelta(days=30)).isoformat()
    for query in (f"?due_before={soon}", "?overdue=1", f"?status=TRIAGE&region=south-wales&due_before={soon}"):
        listed = cora.get(f"/cases{query}")
        assert listed.status_code == 200 and case_id in listed.text, query
    assert cora.get("/cases?due_before=31/12/2026").status_code == 400   # refused by the form, not sent
    decided = cora.post_form(f"/review/{case_id}", f"/review/{case_id}", decision="suitable",
                             reason_code="specialist_risk_assessment_done", reason="Specialist assessment done.")
    assert decided.status_code == 200 and decided.url.endswith(f"/cases/{case_id}?decided=1"), decided.status_code

    # the facilitator: the offer, accepted, then their cases
    def offered():
        assignment = requests.get(f"{matching}/v1/cases/{case_id}/assignment", headers=coordinator_key, timeout=10)
        return assignment.ok and any(o["facilitator_id"] == LEAD for o in assignment.json().get("offers") or ())
    wait_until(offered, timeout=60, interval=1)
    fred = Person(url, "fred", "facilitator")
    assert case_id in fred.get("/offers").text
    offers = fred.get("/offers").text
    assignment_id = re.search(r'action="/offers/([^/"]+)/accept"', offers).group(1)
    accepted = fred.post_form("/offers", f"/offers/{assignment_id}/accept")
    assert accepted.status_code == 200 and "answered=accept" in accepted.url
    assert f"/cases/{case_id}" in fred.crawl()

    # the registry: a facilitator registered, changed and deactivated through the forms
    new = "fac-contract"
    made = cora.post_form("/facilitators/new", "/facilitators/new", facilitator_id=new, name="Nia Rees",
                          email="nia.rees@rj.example", language="en", level="intermediate", regions="south-wales", capacity="2",
                          languages="en", last_process_on=days_ago(40))
    assert made.status_code == 200 and made.url.endswith(f"done=created&id={new}"), made.status_code
    changed = cora.post_form(f"/facilitators/{new}", f"/facilitators/{new}", facilitator_id=new, name="Nia Rees",
                             email="nia.rees@rj.example", language="en", level="intermediate", regions="south-wales",
                             capacity="4",
                             languages="en", last_process_on=days_ago(40))
    assert changed.status_code == 200 and "done=changed" in changed.url, changed.status_code
    gone = cora.post_form(f"/facilitators/{new}/deactivate", f"/facilitators/{new}/deactivate")
    assert gone.status_code == 200 and "done=deactivated" in gone.url, gone.status_code
    # the reports: a measure's CSV download (the pages themselves were crawled)
    assert "/reports" in pages and "/facilitators" in pages and "/waiting" in pages, pages
    csv = cora.get("/reports/referrals.csv")
    assert csv.status_code == 200 and csv.headers["Content-Type"].startswith("text/csv")

    # the auditor and the operator: every page of theirs; the operator's ledger verified, and a bundle
    Person(url, "aud", "auditor").crawl()
    olu = Person(url, "olu", "operator")
    assert {"/operator", "/operator/ledger"} <= set(olu.crawl())
    assert olu.post_form("/operator/ledger", "/operator/ledger/verify").status_code == 200
    bundle = olu.get(f"/operator/ledger/bundle?case_id={case_id}")
    assert bundle.status_code == 200 and bundle.json()["case_id"] == case_id

    contracts = Contracts(apis)
    problems = [problem for exchange in recorder.exchanges for problem in contracts.problems(exchange)]
    operations = Counter(f"{contracts.service_of(e.url)} {e.method} {_template(e.url)}" for e in recorder.exchanges)
    print(f"{len(recorder.exchanges)} calls of the console checked against the services' documents:")
    for label, count in sorted(operations.items()):
        print(f"  {count:>4}  {label}")
    assert problems == [], "\n".join(problems)
    wanted = {"referrals GET /v1/cases", "referrals GET /v1/cases/{id}", "matching GET /v1/cases/{id}/assessment",
              "matching GET /v1/cases/{id}/assignment", "matching POST /v1/cases/{id}/decision",
              "matching POST /v1/assignments/{id}/accept", "records GET /v1/cases/{id}/timeline",
              "referrals GET /health", "reports GET /v1/reports", "reports GET /v1/reports/referrals",
              "matching GET /v1/facilitators", "matching POST /v1/facilitators", "matching GET /v1/waiting",
              "matching PATCH /v1/facilitators/fac-contract", "matching POST /v1/facilitators/fac-contract/deactivate",
              "records GET /v1/ledger/head", "records GET /v1/ledger/verify", "records GET /v1/cases/{id}/bundle"}
    assert wanted <= set(operations), sorted(wanted - set(operations))


    # and the check itself sees a call beside the contract: an undeclared parameter, a wrong answer
    listing = next(e for e in recorder.exchanges if e.label == "GET /v1/cases" and e.response.status_code == 200)
    stray = dataclasses.replace(listing, query=[*listing.query, ("sort", "due")])
    assert any("'sort' is not declared" in p for p in contracts.problems(stray))
    broken = requests.Response()
    broken.__dict__.update(listing.response.__dict__, _content=b'{"items": 5, "total": "many"}')
    assert any("breaks the document" in p for p in contracts.problems(dataclasses.replace(listing, response=broken)))
    assert "not an operation" in contracts.problems(dataclasses.replace(
        listing, url=listing.url.replace("/v1/cases", "/v1/casez")))[0]


def _template(url):
    """A called path with its case and assignment ids as {id}, to count calls per operation."""
    path = url.split("://", 1)[1].split("/", 1)[1].split("?", 1)[0]
    return "/" + re.sub(r"(?<=/)[0-9a-f]{8}-[0-9a-f-]{27,}|(?<=/assignments/)[^/]+", "{id}", path)
