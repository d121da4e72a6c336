"""Fuzz the published OpenAPI contract of the referrals API with schemathesis.

Every operation is driven with inputs generated from /v1/openapi.json, both valid
(positive) and invalid (negative), against the live service on the real broker and
database (tests/integration/fuzzing.py). No input may yield a 5xx, every answer must
match the document, and an answer of 4xx must leave every collection of the service's
database as it was; then near-valid referrals reach the deep validation rules. The
number of inputs is bounded so the test runs in well under a minute; it prints how many
it tried.
"""
import os
import time
from collections import Counter

import requests
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.factories import referral_body
from tests.integration.fuzzing import NO_BUDGETS, fuzz
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
    for name, value in NO_BUDGETS.items():
        monkeypatch.setenv(name, value)
    with running_referrals(service_config, amqp_uri, monkeypatch) as api:
        case_id = api.refer()
        party_id = api.case(case_id).participants[1]["party_id"]
        keys = {role: api.keys[role] for role in ("coordinator", "referrer", "facilitator")}
        # every operation of the document, and also aimed at a case that exists, or most
        # inputs would stop at 404; no 4xx may store anything
        report = fuzz(api.url, keys, known={"case_id": case_id, "participant_id": party_id}, examples=EXAMPLES,
                      snapshot=api.counts)
        near, session = Counter(), requests.Session()

        @settings(max_examples=MUTATIONS, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(body=near_valid_referrals(), key=st.none() | st.sampled_from(["k1", "k2", "k 3"]))
        def check_near_valid(body, key):
            before = api.counts()
            headers = {"Authorization": f"Bearer {api.keys['referrer']}", **({"Idempotency-Key": key} if key else {})}
            response = session.post(f"{api.url}/v1/referrals", json=body, headers=headers, timeout=30)
            near[response.status_code] += 1
            assert response.status_code < 500, (body, response.status_code, response.text[:300])
            assert response.status_code in (201, 400, 409), response.text
            if response.status_code >= 400:
                assert response.headers["Content-Type"].startswith("application/json")
                assert api.counts() == before, (body, response.status_code)

        started = time.monotonic()
        check_near_valid()
        print("\n" + report.summary("referrals"))
        print(f"  {sum(near.values()):>4}  POST /v1/referrals (near-valid), {time.monotonic() - started:.1f}s; "
              f"statuses {dict(sorted(near.items()))}")
        record_property("fuzz_inputs", sum(report.tried.values()) + sum(near.values()))
        record_property("fuzz_statuses", dict(report.statuses + near))
        assert sum(near.values()) >= MUTATIONS * 0.8
        assert (report.statuses + near)[201] > 0 and report.statuses[400] > 0 and near[400] > 0
        # and the service still works normally afterwards
        assert api.refer(referral_body(0))
