"""HTTP plumbing for the services' nameko `@http` entrypoints.

`api(roles=...)` authenticates the caller (within its request budgets), refuses a
body over the limit with a 413, turns our HttpErrors into JSON answers (logging each
refusal), and turns anything unexpected into a bare 500: nameko's default would put
the exception's text, and so possibly personal data, in the response.
"""
import functools
import json
import logging
import uuid
from dataclasses import dataclass

import mongoengine
from marshmallow import ValidationError

from nameko.extensions import DependencyProvider
from werkzeug.exceptions import ClientDisconnected
from werkzeug.wrappers import Response

from shared.config import settings_for
from shared.http_server import ROUTE, body_over_limit, close_after
from shared.outages import OUTAGES
from shared.security import access, api_keys
from shared.security.rate_limit import RateSettings, Throttle

log = logging.getLogger(__name__)


class HttpError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message, **details):
        super().__init__(message)
        self.message = message
        self.details = details


class BadRequest(HttpError):
    status, code = 400, "bad_request"


class Unauthorized(HttpError):
    status, code = 401, "unauthorized"


class Forbidden(HttpError):
    status, code = 403, "forbidden"


class NotFound(HttpError):
    status, code = 404, "not_found"


class Conflict(HttpError):
    status, code = 409, "conflict"


class Gone(HttpError):
    status, code = 410, "gone"


class PayloadTooLarge(HttpError):
    status, code = 413, "payload_too_large"


class TooManyRequests(HttpError):
    status, code = 429, "too_many_requests"

    def __init__(self, retry_after):
        super().__init__("too many requests; try again later", retry_after=retry_after)


# One answer for every key that is presented and refused (malformed, unknown, expired,
# revoked): which check failed would tell a guesser what to try next.
KEY_REFUSED = "the API key was not accepted"
# the id of the key a request presented, once known, in its WSGI environ (for refusal logs)
KEY_ID = "amends.key_id"
# refusals are logged (one line, no key, body or personal data), each at its level
REFUSALS = {401: logging.WARNING, 403: logging.INFO, 404: logging.INFO, 413: logging.WARNING, 429: logging.WARNING}


def json_response(payload, status=200, headers=None):
    return Response(
        json.dumps(payload, default=str),
        status=status,
        mimetype="application/json",
        headers=headers or {},
    )


def error_response(error):
    body = {"error": error.code, "message": error.message}
    body.update(error.details)
    headers = {}
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="amends"'
    if isinstance(error, TooManyRequests):
        headers["Retry-After"] = str(error.details["retry_after"])
    return json_response(body, error.status, headers)


def refuse(request, error):
    """The answer to a refused request, logged as one line if it is a refusal: the
    route (its rule, not the ids in the path), the status and the key's id if known."""
    if error.status in REFUSALS:
        fields = {"status": error.status, "route": request.environ.get(ROUTE) or f"{request.method} {request.path}",
                  "key_id": request.environ.get(KEY_ID)}
        log.log(REFUSALS[error.status], "request refused", extra={"fields": fields})
    return error_response(error)


def check_body_size(request):
    """A 413 for a body over the limit, before the handler reads it."""
    if body_over_limit(request):
        raise PayloadTooLarge(f"the body is larger than the limit of {request.max_content_length} bytes")


def read_json(request):
    """The request body as a JSON object, or a 400 saying why not."""
    if not (request.mimetype or "").endswith("json"):
        raise BadRequest("the body must be JSON (Content-Type: application/json)")
    try:
        body = json.loads(request.get_data(cache=True) or b"")
    except ValueError:
        raise BadRequest("the body is not valid JSON")
    except RecursionError:  # nesting deeper than the parser will follow
        raise BadRequest("the body is nested too deeply")
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def read_query(request, schema):
    """The query parameters, loaded by a marshmallow schema (the one the service's OpenAPI
    document lists), or a 400 naming each parameter at fault."""
    try:
        return schema.load(request.args.to_dict())
    except ValidationError as invalid:
        named = sorted(invalid.messages)[0]
        raise BadRequest(f"the query parameter '{named}' is not valid", param=named, fields=invalid.messages)


def required_param(request, name):
    """A query parameter that must be given: a 400 naming it otherwise."""
    value = request.args.get(name, "").strip()
    if not value:
        raise BadRequest(f"the query parameter '{name}' is required", param=name)
    return value


def int_param(request, name, default=None, minimum=None, maximum=None):
    """An integer query parameter within bounds (`default` when absent, if there is one):
    a 400 naming it otherwise."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        if default is None:
            raise BadRequest(f"the query parameter '{name}' is required", param=name)
        return default
    try:
        value = int(raw, 10)
    except ValueError:
        raise BadRequest(f"the query parameter '{name}' must be an integer", param=name)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise BadRequest(f"the query parameter '{name}' must be between {minimum} and {maximum}", param=name)
    return value


# How far a route reaches, once the caller's role is allowed (see docs/security.md):
SCOPES = {
    "public": "no key needed; nothing about any case",
    "deployment": "any valid key; facts about the deployment, none about a case",
    "intake": "the caller's own agency, into a region the caller covers",
    "listing": "a listing narrowed to what the caller may see (access.listing_filter)",
    "case": "a case the caller may see (404 otherwise)",
    "case-act": "a case the caller may see (404 otherwise) and act on (403 otherwise)",
    "offer": "the caller's own offer, or an offer on a case in a coordinator's regions",
    "region": "a record (a facilitator) in a region the caller covers",
    "national": "the whole ledger, every region's cases: national auditors only",
    "agency": "a record of the caller's own agency (a subscription): another agency's answers 404",
    "sharing": "an agency's data-sharing agreement: set by a coordinator covering its regions, read by "
               "coordinators and by the agency's own keys (another agency's answers 404)",
    "report": "figures, never a case: a coordinator's own regions, or the de-identified national view for "
              "a national key (services/reports/views.py)",
}


@dataclass(frozen=True)
class Policy:
    roles: tuple
    scope: str


def api(roles=None, scope=None):
    """Wrap an `@http` handler with its one declared authorisation policy: `roles` may call
    it at all (None: anyone, with no key), and `scope` (a key of SCOPES) says how far they
    reach. The caller is passed on as `principal`.

    The case scopes (for a case named in the path) and the national scope are enforced
    here, before the handler runs, through the service's `case_relation(case_id)` (a
    CaseRelation, or None for no such case); the others are enforced by the handler,
    which narrows what it reads to the caller (a case named in the query calls
    `require_case` itself)."""
    if scope not in SCOPES:
        raise ValueError(f"a route must declare one of the scopes {sorted(SCOPES)}, not {scope!r}")
    if (roles is None) != (scope == "public"):
        raise ValueError("a public route takes no roles, and only a public route")

    def decorate(handler):
        @functools.wraps(handler)
        def wrapper(self, request, *args, **kwargs):
            try:
                if roles is not None:
                    principal = kwargs["principal"] = self.auth.require(request, roles)
                    if scope in ("case", "case-act") and "case_id" in kwargs:
                        require_case(principal, self.case_relation(kwargs["case_id"]), scope == "case-act")
                    elif scope == "national":
                        require_national(principal)
                check_body_size(request)
                return handler(self, request, *args, **kwargs)
            except HttpError as error:
                return refuse(request, error)
            except ClientDisconnected:  # the body stopped short of its length, or came too slowly
                close_after(request)
                return refuse(request, BadRequest("the body did not arrive in full"))
            except OUTAGES as outage:
                log.warning("request refused during an outage: %s", type(outage).__name__)
                return json_response({"error": "unavailable", "message": "temporarily unavailable; try again"},
                                     503, {"Retry-After": "5"})
            except Exception:
                incident = uuid.uuid4().hex[:12]
                log.exception("request failed; incident %s", incident)
                return json_response(
                    {"error": "internal_error", "message": "internal error", "incident": incident}, 500
                )

        wrapper.policy = Policy(tuple(roles) if roles is not None else None, scope)
        return wrapper

    return decorate


def require_case(principal, relation, to_act=False):
    """404 for a case the caller may not see (or that does not exist), 403 for one they
    may see but not act on."""
    if relation is None or not access.may_see(principal, relation):
        raise NotFound("no such case")
    if to_act and not access.may_act(principal, relation):
        raise Forbidden("you may see this case but not act on it")


def require_national(principal):
    if not principal.national:
        raise Forbidden("this covers every region's cases: it needs a national key")


class Authenticator(DependencyProvider):
    """Checks `Authorization: Bearer <key>` against the hashed keys in the identity store,
    within the key's and the client address's request budgets."""

    def setup(self):
        self.settings = settings_for(self.container.service_name, self.container.config)
        # Read only: the identity store's indexes (and GIN twins) are made by the operators'
        # tools, as the identity store's own role (shared.security.keys, .provision); a
        # service's role may read its keys but not index them (shared/storage/roles.py).
        self.identity = api_keys.connect_identity(self.settings, indexed=False)
        self.throttle = Throttle(RateSettings.from_config(self.container.config))

    def stop(self):
        mongoengine.disconnect(api_keys.IDENTITY_ALIAS)

    def get_dependency(self, worker_ctx):
        return self

    def require(self, request, roles):
        wait = self.throttle.address_wait(request.remote_addr)
        if wait:
            raise TooManyRequests(wait)
        header = request.headers.get("Authorization")
        if header is None:
            raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
        scheme, _, key = header.partition(" ")
        principal = api_keys.lookup(key.strip()) if scheme.lower() == "bearer" else None
        if principal is None:
            self.throttle.refused(request.remote_addr)
            raise Unauthorized(KEY_REFUSED)
        request.environ[KEY_ID] = principal.key_id
        wait = self.throttle.admit(principal.key_id)
        if wait:
            raise TooManyRequests(wait)
        if principal.role not in roles:
            raise Forbidden(f"the role '{principal.role}' may not do this", allowed_roles=sorted(roles))
        return principal

    def by_token(self, request, attempt):
        """For a public route whose path holds a credential of its own (a survey's token):
        the client address's budget of refused keys applies, checked before the token is
        looked up, and a token that names nothing (a 404) is counted against it."""
        wait = self.throttle.address_wait(request.remote_addr)
        if wait:
            raise TooManyRequests(wait)
        try:
            return attempt()
        except NotFound:
            self.throttle.refused(request.remote_addr)
            raise
