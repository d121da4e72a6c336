"""`through_outage`: a write that records something already done waits an outage out."""
import pytest
from pymongo.errors import AutoReconnect, DuplicateKeyError

from shared.outages import through_outage


def flaky(failures, error=AutoReconnect):
    calls = []

    def write():
        calls.append(1)
        if len(calls) <= failures:
            raise error("down")
        return "written"
    return write, calls


def test_a_write_is_retried_through_an_outage_until_it_succeeds():
    write, calls = flaky(3)
    assert through_outage(write, patience=5, pause=0.01) == "written"
    assert len(calls) == 4


def test_an_outage_longer_than_the_patience_is_raised():
    write, calls = flaky(1000)
    with pytest.raises(AutoReconnect):
        through_outage(write, patience=0.1, pause=0.02)
    assert 2 <= len(calls) < 1000


def test_any_other_error_is_raised_at_once():
    write, calls = flaky(1, DuplicateKeyError)
    with pytest.raises(DuplicateKeyError):
        through_outage(write, patience=5, pause=0.01)
    assert len(calls) == 1
