"""What every service's OpenAPI 3 document shares: the builder, the bearer-key security
scheme, the error answers, the operational routes (`/health`, `/metrics` and the document
itself) and the `GET /v1/openapi.json` entrypoint.

Each service's `openapi.py` describes its operations next to the marshmallow schemas that
validate its requests, and builds its document with `Document`; so the contract cannot
drift from the code, and `undocumented()` finds any route the service class declares that
its document leaves out.
"""
import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import INCLUDE, fields
from marshmallow import Schema as StrictSchema

from shared.http_server import http
from shared.web import api, json_response

SECURED = [{"bearer": []}]
PUBLIC = []
OPERATIONAL = {"/health", "/metrics", "/v1/openapi.json"}
# the largest integer a query may give (a ledger position): what JSON clients and the
# database hold exactly
INT_MAX = 2 ** 53 - 1


class Schema(StrictSchema):
    """A response: clients must accept fields added later."""
    class Meta:
        unknown = INCLUDE


class Error(Schema):
    error = fields.Str(required=True)
    message = fields.Str(required=True)
    allowed = fields.List(fields.Str(), metadata={"description": "409 on a transition: the states allowed"})
    allowed_roles = fields.List(fields.Str(), metadata={"description": "403: the roles that may do this"})
    status = fields.Str(metadata={"description": "409 on a transition: the case's status"})
    reason = fields.Str(metadata={"description": "409: why, as a code"})
    param = fields.Str(metadata={"description": "400 or 404 on a query parameter: its name"})
    retry_after = fields.Int(metadata={"description": "429: seconds to wait, as in Retry-After"})
    incident = fields.Str(metadata={"description": "500: the incident's reference in the service's log"})


# `fields` is a reserved word for a Schema attribute: declare it under another name.
Error._declared_fields["fields"] = fields.Dict(
    data_key="fields", metadata={"description": "each field at fault, with what is wrong with it"})


class Health(Schema):
    status = fields.Str(required=True, metadata={"enum": ["ok", "unavailable"]})
    problems = fields.List(fields.Str(), required=True, metadata={
        "description": "what is not reachable (database, broker) and the kind of fault; never a detail"})


ERRORS = {400: "bad input: every field at fault is named; nothing is stored",
          401: "no API key, or one not accepted", 403: "the key's role or agency may not do this",
          404: "not found, or not one the key may see", 409: "conflict", 410: "gone",
          413: "the body is over the size limit; nothing is stored",
          429: "over the key's (or the address's) request budget: try again after Retry-After seconds",
          501: "not offered by this deployment yet", 503: "a dependency is unavailable: try again after Retry-After"}


def errors(*codes, **texts):
    """The error answers of an operation, each an `Error`; `texts` (`e404="no such case"`)
    says what a code means here. One that needs a key may also meet its budget
    (docs/security.md)."""
    if 401 in codes and 429 not in codes:
        codes += (429,)
    answers = {}
    for code in codes:
        answers[str(code)] = {"description": texts.get(f"e{code}", ERRORS[code]),
                              "content": {"application/json": {"schema": "Error"}}}
    for code in (429, 503):
        if str(code) in answers:
            answers[str(code)]["headers"] = {"Retry-After": {"description": "seconds to wait",
                                                             "schema": {"type": "integer"}}}
    return answers


def ok(code, schema, description, headers=None, media_type="application/json"):
    """A success answer: `schema` a component's name (or a schema object), or None for no body."""
    answer = {"description": description}
    if schema is not None:
        answer["content"] = {media_type: {"schema": schema}}
    if headers:
        answer["headers"] = headers
    return {str(code): answer}


def body(schema, required=True):
    """A JSON request body validated by `schema` (a component's name)."""
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def path_param(name, description=None, **schema):
    """A path parameter: `schema` its JSON Schema keywords (pattern, format, maxLength...)."""
    found = {"name": name, "in": "path", "required": True, "schema": {"type": "string", **schema}}
    if description:
        found["description"] = description
    return found


def query(schema):
    """The query parameters a marshmallow schema reads (apispec lists one per field)."""
    return {"in": "query", "schema": schema}


LOCATION = {"Location": {"description": "where the new record can be read", "schema": {"type": "string"}}}


class Document:
    """An OpenAPI 3.0 document under construction: the components are marshmallow schemas
    (by name), the bearer scheme is declared, and the operational routes are listed."""

    def __init__(self, title, description, schemas=()):
        self.spec = APISpec(title=title, version="1.0.0", openapi_version="3.0.3", info={"description": description},
                            servers=[{"url": "/"}], plugins=[MarshmallowPlugin()])
        self.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
        self.spec.components.schema("Error", schema=Error)
        self.spec.components.schema("Health", schema=Health)
        for name, schema in schemas:
            self.spec.components.schema(name, schema=schema)
        self._operational()

    def schema(self, name, schema):
        self.spec.components.schema(name, schema=schema)

    def path(self, path, **operations):
        """Operations by method (`get=`, `post=`...) on one path."""
        self.spec.path(path=path, operations=operations)

    def to_dict(self):
        return self.spec.to_dict()

    def _operational(self):
        self.path("/health", get={
            "summary": "Readiness: the service reaches its database and broker (no key)",
            "security": PUBLIC, "tags": ["operations"],
            "responses": {**ok(200, "Health", "ready"), **ok(503, "Health", "not ready: `problems` says why")}})
        metrics = {"description": "the process's metrics (counts by route, event type and outcome; nothing "
                                  "about any case or person)",
                   "content": {"text/plain": {"schema": {"type": "string"}},
                               "application/openmetrics-text": {"schema": {"type": "string"}}}}
        self.path("/metrics", get={
            "summary": "Metrics in the Prometheus text format, or OpenMetrics when asked for (no key)",
            "security": PUBLIC, "tags": ["operations"], "responses": {"200": metrics}})
        self.path("/v1/openapi.json", get={
            "summary": "This document (no key)", "security": PUBLIC, "tags": ["operations"],
            "responses": {"200": {"description": "the OpenAPI 3 document",
                                  "content": {"application/json": {"schema": {"type": "object"}}}}}})


class OpenApiEndpoint:
    """Mixin for a service class: `GET /v1/openapi.json` serves its `api_document()` (set it
    to the service's `openapi.document`), without a key: it says what the API accepts,
    nothing about any case."""

    api_document = None

    @http("GET", "/v1/openapi.json")
    @api(roles=None, scope="public")
    def openapi_document(self, request):
        return json_response(type(self).api_document())


# --- the routes a service class declares -------------------------------------------------

_CONVERTER = re.compile(r"<(?:[a-z]+:)?([A-Za-z_][A-Za-z0-9_]*)>")


def declared_routes(service_class):
    """(METHOD, path as OpenAPI writes it) of every `@http` entrypoint of a service class."""
    found = set()
    for name in dir(service_class):
        member = getattr(service_class, name, None)
        for entrypoint in getattr(member, "nameko_entrypoints", ()):
            method, url = getattr(entrypoint, "method", None), getattr(entrypoint, "url", None)
            if method and url:
                found.add((method.upper(), _CONVERTER.sub(r"{\1}", url)))
    return found


def documented_routes(document):
    return {(method.upper(), path) for path, operations in document["paths"].items()
            for method in operations if method in ("get", "put", "post", "patch", "delete", "head", "options")}


def shapes(routes):
    """Routes with their path parameters unnamed: the document may name a parameter as it
    likes (`{participant_id}` for the code's `<party_id>`), the URL is the same."""
    return {(method, re.sub(r"{[^}]*}", "{}", path)) for method, path in routes}


def undocumented(service_class, document):
    """The routes the service class declares that its document leaves out."""
    listed = shapes(documented_routes(document))
    return {route for route in declared_routes(service_class) if not shapes([route]) <= listed}
