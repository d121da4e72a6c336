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

import mongoengine

from nameko.extensions import DependencyProvider
from werkzeug.exceptions import ClientDisconnected
from werkzeug.wrappers import Response

from shared.config import settings_for
from shared.http_server import ROUTE, body_over_limit, close_after
from shared.outages import OUTAGES
from shared.security import api_keys
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


def api(roles=None):
    """Wrap an `@http` handler: require a Bearer key with one of `roles` (None: no
    authentication) and pass the caller on as `principal`."""

    def decorate(handler):
        @functools.wraps(handler)
        def wrapper(self, request, *args, **kwargs):
            try:
                if roles is not None:
                    kwargs["principal"] = self.auth.require(request, roles)
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

        return wrapper

    return decorate


class Authenticator(DependencyProvider):
    """Checks `Authorization: Bearer <key>` against the hashed keys in the identity store,
    within the key's and the client address's request budgets."""

    def setup(self):
        api_keys.connect_identity(settings_for(self.container.service_name, self.container.config))
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
