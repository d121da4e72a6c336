"""Fuzz the published OpenAPI contract of the referrals API with schemathesis.

Every operation is driven with inputs generated from /v1/openapi.json, both valid
(positive) and invalid (negative), against the live service on the real broker and
database. No input may yield a 5xx, and an answer of 4xx must leave every collection
of the service's database as it was. The number of inputs is bounded so the test runs
in well under a minute; it prints how many it tried.
"""
import os
import time
from collections import Counter

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.factories import referral_body
from tests.integration.test_referrals_api import running_referrals

EXAMPLES = int(os.environ.get("AMENDS_FUZZ_EXAMPLES", "300"))
MUTATIONS = int(os.environ.get("AMENDS_FUZZ_MUTATIONS", "150"))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8)


def leaf_paths(value, path=()):
    """Every path into a JSON document, so a mutation can hit any field at any depth."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaf_paths(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaf_paths(item, path + (index,))


def mutate(body, path, value, delete):
    if not path:
        return value
    target = body
    for step in path[:-1]:
        target = target[step]
    if delete and isinstance(target, dict):
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return body


@st.composite
def near_valid_referrals(draw):
    """A sample referral with one field, at any depth, replaced by any JSON value or removed:
    inputs close enough to valid to reach the deep validation rules, and sometimes valid."""
    body = referral_body(draw(st.integers(min_value=0, max_value=4)))
    path = draw(st.sampled_from(list(leaf_paths(body))))
    return mutate(body, path, draw(json_values), draw(st.booleans()))


def test_no_input_yields_a_5xx_or_stores_anything_on_a_4xx(service_config, amqp_uri, monkeypatch, record_property):
    # this drives the contract, not the request budgets (tests/integration/test_http_limits.py):
    # its hundreds of calls, many with broken keys, from one address, must not meet a 429
    for budget in ("AMENDS_RATE_BURST", "AMENDS_AUTH_FAILURE_BURST"):
        monkeypatch.setenv(budget, "100000")
    with running_referrals(service_config, amqp_uri, monkeypatch) as api:
        document = requests.get(f"{api.url}/v1/openapi.json", timeout=10).json()
        schema = schemathesis.openapi.from_dict(document)
        case_id = api.refer()
        party_id = api.case(case_id).participants[1]["party_id"]
        strategies = []
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                strategies.append(operation.as_strategy(mode))
                if "{case_id}" in operation.path:
                    # also aim at a case that exists, or most inputs would stop at 404
                    known = {"case_id": case_id, **({"participant_id": party_id}
                                                    if "{participant_id}" in operation.path else {})}
                    strategies.append(operation.as_strategy(mode, path_parameters=known))
        tried, statuses, unsendable = Counter(), Counter(), []
        session = requests.Session()

        # every operation gets its share of the examples, so each is reached however many there are
        share = max(2, EXAMPLES // len(strategies))

        def check_operation(strategy):
            @settings(max_examples=share, deadline=None, derandomize=True, database=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=strategy, role=st.sampled_from(["coordinator", "referrer", "facilitator", None]))
            def check(case, role):
                send(case, role)
            check()

        def send(case, role):
            if role is not None:   # else keep the (often broken) credentials schemathesis generated
                case.headers = {**(case.headers or {}), "Authorization": f"Bearer {api.keys[role]}"}
            before = api.counts()
            try:
                response = case.call(base_url=api.url, session=session, timeout=30)
            except (requests.exceptions.InvalidHeader, ValueError, UnicodeError) as exc:
                unsendable.append(type(exc).__name__)   # the client library refused to send it
                return
            tried[f"{case.method} {case.operation.path}"] += 1
            statuses[response.status_code] += 1
            assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
            if 400 <= response.status_code < 500:
                assert response.headers.get("content-type", [""])[0].startswith("application/json")
                assert api.counts() == before, (case.method, case.path, response.status_code)

        @settings(max_examples=MUTATIONS, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(body=near_valid_referrals(), key=st.none() | st.sampled_from(["k1", "k2", "k 3"]))
        def check_near_valid(body, key):
            before = api.counts()
            headers = {"Authorization": f"Bearer {api.keys['referrer']}", **({"Idempotency-Key": key} if key else {})}
            response = session.post(f"{api.url}/v1/referrals", json=body, headers=headers, timeout=30)
            tried["POST /v1/referrals (near-valid)"] += 1
            statuses[response.status_code] += 1
            assert response.status_code < 500, (body, response.status_code, response.text[:300])
            assert response.status_code in (201, 400, 409), response.text
            if response.status_code >= 400:
                assert response.headers["Content-Type"].startswith("application/json")
                assert api.counts() == before, (body, response.status_code)

        started = time.monotonic()
        for strategy in strategies:
            check_operation(strategy)
        check_near_valid()
        elapsed = time.monotonic() - started
        total = sum(tried.values())
        print(f"\nfuzzed the referrals API: {total} inputs sent ({len(unsendable)} more refused by the client), "
              f"0 failures, {elapsed:.1f}s; statuses {dict(sorted(statuses.items()))}")
        for label, count in sorted(tried.items()):
            print(f"  {count:>4}  {label}")
        record_property("fuzz_inputs", total)
        record_property("fuzz_statuses", dict(statuses))
        assert total >= (share * len(strategies) + MUTATIONS) * 0.8
        assert statuses[201] > 0 and statuses[400] > 0
        assert set(tried) - {"POST /v1/referrals (near-valid)"} == {f"{m} {p}" for p, ops in document["paths"].items() for m in
                              (o.upper() for o in ops)}
        # and the service still works normally afterwards
        assert api.refer(referral_body(0))
