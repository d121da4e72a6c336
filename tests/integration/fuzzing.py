"""Fuzz a live service's API from its own OpenAPI document with schemathesis.

Every operation of the document served at /v1/openapi.json is driven with inputs generated
from it, valid (positive) and invalid (negative), with each role's key and with the (often
broken) credentials schemathesis makes up. No answer may be a 5xx, and every answer must
match the document: a documented status code, its content type, its headers and its body's
schema. The number of inputs is bounded (AMENDS_FUZZ_EXAMPLES per service) so each run stays
short; the caller prints what was tried.
"""
import os
import time
from collections import Counter
from dataclasses import dataclass, field

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (content_type_conformance, response_headers_conformance,
                                               response_schema_conformance, status_code_conformance)

EXAMPLES = int(os.environ.get("AMENDS_FUZZ_EXAMPLES", "600"))
CONFORMANCE = [status_code_conformance, content_type_conformance, response_headers_conformance,
               response_schema_conformance]
# Over the request budgets: the hundreds of calls, many with broken keys, from one address
# drive the contract, not the budgets (tests/integration/test_http_limits.py).
NO_BUDGETS = {"AMENDS_RATE_BURST": "100000", "AMENDS_AUTH_FAILURE_BURST": "100000"}


@dataclass
class Report:
    tried: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    unsendable: int = 0
    seconds: float = 0.0

    def summary(self, name):
        lines = [f"fuzzed the {name} API: {sum(self.tried.values())} inputs sent ({self.unsendable} more refused "
                 f"by the client), 0 failures, {self.seconds:.1f}s; statuses {dict(sorted(self.statuses.items()))}"]
        lines += [f"  {count:>4}  {label}" for label, count in sorted(self.tried.items())]
        return "\n".join(lines)


def fuzz(url, keys, known=None, examples=EXAMPLES, snapshot=None):
    """Fuzz every operation of the API at `url`; `keys`: role -> API key; `known`: path
    parameter -> a value that exists (a case, a subscription), so that inputs also reach
    past the 404; `snapshot()`, if given, reads what the service has stored, which no 4xx
    answer may change. Returns a Report."""
    document = requests.get(f"{url}/v1/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(document)
    schema.validate()
    strategies = []
    for result in schema.get_all_operations():
        operation = result.ok()
        aimed = {name: value for name, value in (known or {}).items() if f"{{{name}}}" in operation.path}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategies.append((mode, operation.as_strategy(mode)))
            if aimed:
                strategies.append((mode, operation.as_strategy(mode, path_parameters=aimed)))
    report, session = Report(), requests.Session()
    share = max(2, examples // len(strategies))   # each operation gets its share, however many there are
    roles = sorted(keys) + [None]

    def send(case, role):
        if role is not None:   # else keep the credentials schemathesis generated
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {keys[role]}"}
        before = snapshot() if snapshot else None
        try:
            response = case.call(base_url=url, session=session, timeout=30)
        except (requests.exceptions.InvalidHeader, ValueError, UnicodeError):
            report.unsendable += 1   # the client library refused to send it
            return
        report.tried[f"{case.method} {case.operation.path}"] += 1
        report.statuses[response.status_code] += 1
        assert response.status_code < 500, (case.method, case.formatted_path, response.status_code,
                                            response.text[:300])
        case.validate_response(response, checks=CONFORMANCE)
        if snapshot and 400 <= response.status_code < 500:
            assert snapshot() == before, (case.method, case.formatted_path, response.status_code)

    started = time.monotonic()
    for mode, strategy in strategies:
        @settings(max_examples=share, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=strategy, role=st.sampled_from(roles))
        def check(case, role):
            send(case, role)
        try:
            check()
        except Unsatisfiable:
            if mode is GenerationMode.POSITIVE:
                raise
            # an operation with nothing in it to make invalid (GET /health): no negative inputs

    report.seconds = time.monotonic() - started
    # every operation was reached, and often enough
    assert set(report.tried) == {f"{m.upper()} {p}" for p, ops in document["paths"].items() for m in ops}
    # (an operation with few possible inputs, GET /health, runs out of them before its share)
    assert sum(report.tried.values()) >= len(strategies)
    return report
