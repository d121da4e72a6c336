"""The console's calls, checked against the called services' own OpenAPI documents.

`RecordingSession` is a requests.Session that keeps every exchange it carries; handed to
the console (web.Console's `api_session`), it sees every call the console makes to a
service: through `Apis`, and each service's /health for the operator's pipeline page.
`Contracts` fetches each service's /v1/openapi.json once and judges an exchange with
schemathesis (the fuzzer's own validator): the method and path must be an operation of
the document, every query parameter one it declares and valid for its schema, a JSON body
valid for the operation's request body, and the answer a documented status whose body
matches its schema. It checks whatever was recorded, so a page added later is covered as
soon as a test drives it.
"""
import threading
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import requests
import schemathesis


@dataclass
class Exchange:
    method: str
    url: str
    query: list         # (name, value) pairs, as sent
    body: object        # the JSON body sent, or None
    response: requests.Response

    @property
    def label(self):
        return f"{self.method} {urlsplit(self.url).path}"


class RecordingSession(requests.Session):
    """Sends as requests does, and keeps every exchange (thread- and greenlet-safe append)."""

    def __init__(self):
        super().__init__()
        self.exchanges = []
        self._lock = threading.Lock()

    def request(self, method, url, params=None, json=None, **kwargs):
        response = super().request(method, url, params=params, json=json, **kwargs)
        sent = urlsplit(response.request.url)
        with self._lock:
            self.exchanges.append(Exchange(method.upper(), url, parse_qsl(sent.query, keep_blank_values=True), json,
                                           response))
        return response


class Contracts:
    """The OpenAPI documents of the services at `urls` (service -> base URL)."""

    def __init__(self, urls):
        self.urls = dict(urls)
        self._schemas = {}

    def schema(self, service):
        if service not in self._schemas:
            document = requests.get(f"{self.urls[service]}/v1/openapi.json", timeout=30).json()
            schema = schemathesis.openapi.from_dict(document)
            schema.validate()
            self._schemas[service] = schema
        return self._schemas[service]

    def service_of(self, url):
        return next((name for name, base in self.urls.items() if url.startswith(base + "/")), None)

    def problems(self, exchange):
        """What is wrong with one exchange, as lines (none when it keeps the contract)."""
        service = self.service_of(exchange.url)
        if service is None:
            return [f"{exchange.label}: a call to no service whose document this check knows ({exchange.url})"]
        path = urlsplit(exchange.url).path
        operation = self.schema(service).find_operation_by_path(exchange.method, path)
        if operation is None:
            return [f"{service} {exchange.label}: not an operation of its /v1/openapi.json"]
        found = []
        declared = {parameter.name: parameter for parameter in operation.query}
        for name, value in exchange.query:
            parameter = declared.get(name)
            if parameter is None:
                found.append(f"{service} {exchange.label}: query parameter {name!r} is not declared")
            elif not parameter.is_valid(_typed(value, parameter.definition.get("schema") or {})):
                found.append(f"{service} {exchange.label}: query parameter {name}={value!r} does not match its schema")
        if exchange.body is not None:
            bodies = [body for body in operation.body if body.media_type == "application/json"]
            if not bodies:
                found.append(f"{service} {exchange.label}: sends a JSON body the operation does not take")
            elif not any(body.is_valid(exchange.body) for body in bodies):
                found.append(f"{service} {exchange.label}: the request body does not match its schema")
        try:
            operation.validate_response(exchange.response)
        except BaseExceptionGroup as failures:   # schemathesis: one group of every check that failed
            found.append(self._broken(service, exchange, "; ".join(_first_line(f) for f in failures.exceptions)))
        except Exception as failure:
            found.append(self._broken(service, exchange, _first_line(failure)))
        return found

    @staticmethod
    def _broken(service, exchange, why):
        return f"{service} {exchange.label}: answer {exchange.response.status_code} breaks the document: {why}"


def _typed(value, schema):
    """A query parameter's text as the value its schema describes (the wire carries text)."""
    kind = schema.get("type")
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        return value
    if kind == "boolean" and value in ("true", "false"):
        return value == "true"
    return value


def _first_line(failure):
    text = str(failure).strip()
    return " | ".join(line.strip() for line in text.splitlines()[:3] if line.strip())
