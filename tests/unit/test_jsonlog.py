import json
import logging

from shared import jsonlog


def record(msg, exc_info=None):
    return logging.LogRecord("nameko.containers", logging.ERROR, __file__, 1, msg, (), exc_info)


def test_lines_are_json_with_service_and_correlation():
    formatter = jsonlog.JsonFormatter(service="matching")
    jsonlog.bind(correlationid="case-9", causationid="evt-1")
    try:
        line = json.loads(formatter.format(record("hello")))
    finally:
        jsonlog.clear()
    assert line["service"] == "matching"
    assert line["correlationid"] == "case-9"
    assert line["causationid"] == "evt-1"
    assert line["message"] == "hello"


def test_errors_keep_neither_the_message_nor_the_stack():
    formatter = jsonlog.JsonFormatter(service="referrals")
    try:
        raise ValueError("dup key: { email: 'sian@mail.example' }")
    except ValueError:
        import sys
        text = formatter.format(record("error handling worker: dup key sian@mail.example", sys.exc_info()))
    line = json.loads(text)
    assert "sian" not in text
    assert "Traceback" not in text
    assert line["error"] == "ValueError"
    assert "test_jsonlog.py" in line["error_at"]


def test_payload_logging_libraries_keep_only_their_fixed_text():
    formatter = jsonlog.JsonFormatter(service="notifications")
    reply = logging.LogRecord("nameko.rpc", logging.DEBUG, __file__, 1, "RPC reply event complete %s %s",
                              ("reply", {"result": {"details": {"email": "sian@mail.example"}}}), None)
    line = json.loads(formatter.format(reply))
    assert line["message"] == "RPC reply event complete %s %s" and "sian" not in json.dumps(line)
    ours = logging.LogRecord("services.referrals", logging.INFO, __file__, 1, "case %s opened", ("c-1",), None)
    assert json.loads(formatter.format(ours))["message"] == "case c-1 opened"
