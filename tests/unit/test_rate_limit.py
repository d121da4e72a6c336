"""Request budgets as token buckets, on a clock the test moves."""
import pytest

from shared.security.rate_limit import Buckets, RateSettings, Throttle


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_a_burst_is_allowed_then_refused_with_the_seconds_to_wait():
    clock = Clock()
    buckets = Buckets(per_minute=60, burst=3, clock=clock)
    assert [buckets.take("k") for _ in range(3)] == [0, 0, 0]
    assert buckets.take("k") == 1  # one token a second
    clock.now += 0.5
    assert buckets.take("k") == 1  # half a token is not a request: wait rounds up
    clock.now += 0.5
    assert buckets.take("k") == 0
    assert buckets.take("k") == 1


def test_retry_after_is_long_enough_at_a_slow_rate():
    clock = Clock()
    buckets = Buckets(per_minute=2, burst=1, clock=clock)
    assert buckets.take("k") == 0
    wait = buckets.take("k")
    assert wait == 30
    clock.now += wait - 0.01
    assert buckets.take("k") > 0
    clock.now += 0.01
    assert buckets.take("k") == 0


def test_refills_no_further_than_the_burst():
    clock = Clock()
    buckets = Buckets(per_minute=600, burst=2, clock=clock)
    buckets.take("k")
    clock.now += 3600
    assert [buckets.take("k") for _ in range(3)] == [0, 0, 1]


def test_names_have_budgets_of_their_own_and_a_refusal_spends_nothing():
    clock = Clock()
    buckets = Buckets(per_minute=60, burst=1, clock=clock)
    assert buckets.take("a") == 0
    assert buckets.take("a") == 1
    assert buckets.take("b") == 0
    for _ in range(50):
        buckets.take("a")  # refused: must not push a's next token further away
    clock.now += 1
    assert buckets.take("a") == 0


def test_wait_spends_nothing():
    buckets = Buckets(per_minute=60, burst=1, clock=Clock())
    assert [buckets.wait("k") for _ in range(5)] == [0] * 5
    assert buckets.take("k") == 0
    assert buckets.wait("k") == 1


def test_full_buckets_are_forgotten_once_there_are_many():
    clock = Clock()
    buckets = Buckets(per_minute=60, burst=5, clock=clock, max_names=10)
    for n in range(10):
        buckets.take(f"old-{n}")
    clock.now += 60  # all refilled: the same as never seen
    buckets.take("new")
    assert len(buckets) == 1
    assert buckets.take("new") == 0  # and "new" kept what it had spent: 5 - 2 left
    assert [buckets.take("new") for _ in range(4)] == [0, 0, 0, 1]


def test_a_rate_of_nothing_is_refused():
    with pytest.raises(ValueError):
        Buckets(per_minute=0, burst=1)
    with pytest.raises(ValueError):
        Buckets(per_minute=10, burst=0)


def test_throttle_blocks_an_address_after_its_refused_keys_without_touching_keys():
    clock = Clock()
    throttle = Throttle(RateSettings(per_key_per_minute=60, per_key_burst=2,
                                     failures_per_minute=6, failures_burst=2), clock)
    assert throttle.address_wait("10.0.0.1") == 0
    throttle.refused("10.0.0.1")
    assert throttle.address_wait("10.0.0.1") == 0
    throttle.refused("10.0.0.1")
    assert throttle.address_wait("10.0.0.1") == 10  # six a minute: one every ten seconds
    assert throttle.address_wait("10.0.0.2") == 0
    assert throttle.admit("key-1") == 0 and throttle.admit("key-1") == 0
    assert throttle.admit("key-1") == 1
    assert throttle.admit("key-2") == 0
    clock.now += 10
    assert throttle.address_wait("10.0.0.1") == 0


def test_settings_come_from_the_config_else_the_environment_else_defaults(monkeypatch):
    monkeypatch.delenv("AMENDS_RATE_LIMIT", raising=False)
    monkeypatch.setenv("AMENDS_RATE_BURST", "7")
    settings = RateSettings.from_config({"AMENDS_AUTH_FAILURE_LIMIT": "12"})
    assert settings == RateSettings(per_key_per_minute=600.0, per_key_burst=7,
                                    failures_per_minute=12.0, failures_burst=10)
