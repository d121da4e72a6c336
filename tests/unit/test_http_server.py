"""The HTTP server's pure parts: which bodies may be over the limit, how routes are named."""
import json
import logging

from shared import jsonlog
from shared.http_server import body_may_exceed, route_name


def test_a_body_may_exceed_the_limit_when_declared_longer_or_of_unknown_length():
    assert not body_may_exceed({}, 10)
    assert not body_may_exceed({"Content-Length": "10"}, 10)
    assert body_may_exceed({"Content-Length": "11"}, 10)
    assert body_may_exceed({"Transfer-Encoding": "chunked"}, 10)
    assert body_may_exceed({"Content-Length": "ten"}, 10)


def test_routes_are_named_by_their_rule_without_converters():
    assert route_name("GET", "/v1/cases/<string:case_id>") == "GET /v1/cases/<case_id>"
    assert route_name("POST", "/v1/cases/<case_id>/participants/<string:party_id>/erasure") == \
        "POST /v1/cases/<case_id>/participants/<party_id>/erasure"
    assert route_name("GET", "/health") == "GET /health"


def test_log_fields_join_the_line_but_never_replace_its_own_keys():
    record = logging.LogRecord("shared.web", logging.WARNING, __file__, 1, "request refused", (), None)
    record.fields = {"status": 401, "key_id": None, "service": "forged"}
    line = json.loads(jsonlog.JsonFormatter(service="records").format(record))
    assert line["status"] == 401 and line["key_id"] is None
    assert line["service"] == "records"


class Lines:
    def __init__(self):
        self.lines = []

    def info(self, text):
        self.lines.append(text)

    debug = warning = error = info


def test_a_credential_in_a_path_never_reaches_the_access_log():
    from shared.http_server import RedactingLog, credential_pattern
    patterns = [credential_pattern("/v1/surveys/<string:token>"),
                credential_pattern("/v1/x/<string:case_id>/keys/<token>/use")]
    assert credential_pattern("/v1/cases/<string:case_id>") is None   # a case id is no credential
    lines = Lines()
    log = RedactingLog(lines, patterns)
    secret = "Zx9_-aSecretTokenOf43Characters0123456789ab"
    log.info('%s - - "%s" %s', "127.0.0.1", f"GET /v1/surveys/{secret}?lang=cy HTTP/1.1", 200)
    log.write(f'"POST /v1/x/case-7/keys/{secret}/use HTTP/1.1" 201\n')
    log.debug(f"GET /v1/cases/case-7 HTTP/1.1")
    assert lines.lines == ['127.0.0.1 - - "GET /v1/surveys/<token>?lang=cy HTTP/1.1" 200',
                           '"POST /v1/x/case-7/keys/<token>/use HTTP/1.1" 201',
                           "GET /v1/cases/case-7 HTTP/1.1"]
    assert secret not in " ".join(lines.lines)
