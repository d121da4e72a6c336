"""The management API client: its paths, its credentials, and errors that carry no secret."""
import pytest

from shared.messaging.management import Management, ManagementError, split_credentials
from shared.messaging.permissions import Grant


class Answer:
    def __init__(self, status, body=None):
        self.status_code, self._body = status, body

    def json(self):
        if self._body is None:
            raise ValueError("no JSON")
        return self._body


class Session:
    """Records requests; answers from a table of (method, path) -> Answer, else 204."""

    def __init__(self, answers=None):
        self.requests, self.answers, self.auth = [], answers or {}, None

    def request(self, method, url, json=None, timeout=None):
        self.requests.append((method, url, json))
        return self.answers.get((method, url), Answer(204))


def test_credentials_come_out_of_the_url():
    assert split_credentials("http://amends-admin:p%40ss%2Fw@127.0.0.1:15672/") == (
        "http://127.0.0.1:15672", "amends-admin", "p@ss/w")
    session = Session()
    management = Management.from_url("https://admin:secret@broker.example:15671", session=session)
    assert (management.url, session.auth) == ("https://broker.example:15671", ("admin", "secret"))
    with pytest.raises(ValueError):
        Management.from_url("http://broker.example:15672")


def test_names_are_quoted_into_paths():
    session = Session()
    management = Management("http://m:15672", "admin", "pw", session=session)
    management.set_permissions("/", "agency.a/b", Grant("^$", "^$", "^feed$", {}))
    management.bind_queue("/", "subscriptions.feeds", "feed.a.s1", "feed.a.s1")
    management.put_parameter("shovel", "/", "national-link", {"value": {}})
    assert [(m, u) for m, u, _ in session.requests] == [
        ("PUT", "http://m:15672/api/permissions/%2F/agency.a%2Fb"),
        ("POST", "http://m:15672/api/bindings/%2F/e/subscriptions.feeds/q/feed.a.s1"),
        ("PUT", "http://m:15672/api/parameters/shovel/%2F/national-link"),
    ]
    assert session.requests[0][2] == {"configure": "^$", "write": "^$", "read": "^feed$"}


def test_missing_things_are_none_or_false_and_errors_carry_no_body():
    session = Session({("GET", "http://m/api/users/ghost"): Answer(404),
                       ("DELETE", "http://m/api/queues/%2F/gone"): Answer(404),
                       ("PUT", "http://m/api/users/agency.x"): Answer(400, {"reason": "bad tags"})})
    management = Management("http://m", "admin", "pw", session=session)
    assert management.user("ghost") is None
    assert management.delete_queue("/", "gone") is False
    with pytest.raises(ManagementError) as error:
        management.put_user("agency.x", "the-password")
    assert str(error.value) == "management API PUT /api/users/agency.x: HTTP 400 bad tags"
    assert error.value.status == 400 and "the-password" not in str(error.value)
