"""shared.messaging.rpc.following_ledger: how subscriptions and reports read records' feed."""
import logging
from types import SimpleNamespace

import eventlet
import pytest
from nameko.exceptions import UnknownService

from shared.messaging.rpc import following_ledger

log = logging.getLogger("test.following_ledger")


def records_answering(answer):
    """A stand-in for the IdentifiedRpcProxy of records: `answer(after, limit)` runs on `.result()`."""
    def call_async(after, limit):
        return SimpleNamespace(result=lambda: answer(after, limit))
    return SimpleNamespace(entries_after=SimpleNamespace(call_async=call_async))


def test_a_page_is_what_records_answers():
    records = records_answering(lambda after, limit: [{"seq": s} for s in range(after + 1, after + 1 + limit)])
    with following_ledger(records, 5, log) as read_page:
        assert read_page(4, 3) == [{"seq": 5}, {"seq": 6}, {"seq": 7}]


def test_records_too_slow_ends_the_round_with_a_warning(caplog):
    records = records_answering(lambda after, limit: eventlet.sleep(5))
    reached = []
    with caplog.at_level(logging.WARNING, logger=log.name):
        with following_ledger(records, 0.05, log) as read_page:
            read_page(-1, 10)
            reached.append("after the call")
    assert reached == []
    assert [r.getMessage() for r in caplog.records] == ["records did not answer the feed in 0.05s; trying again"]


def test_records_not_serving_ends_the_round_with_a_warning(caplog):
    def absent(after, limit):
        raise UnknownService("records")
    with caplog.at_level(logging.WARNING, logger=log.name):
        with following_ledger(records_answering(absent), 5, log) as read_page:
            read_page(-1, 10)
    assert [r.getMessage() for r in caplog.records] == ["records is not serving its feed; trying again"]


def test_any_other_failure_is_not_swallowed():
    def broken(after, limit):
        raise ValueError("a bug")
    with pytest.raises(ValueError, match="a bug"):
        with following_ledger(records_answering(broken), 5, log) as read_page:
            read_page(-1, 10)
