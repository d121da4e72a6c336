"""HTTP plumbing for the services' nameko `@http` entrypoints.

`api(roles=...)` authenticates the caller, turns our HttpErrors into JSON answers,
and turns anything unexpected into a bare 500: nameko's default would put the
exception's text, and so possibly personal data, in the response.
"""
import functools
import json
import logging
import uuid

import mongoengine

from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Response

from shared.config import settings_for
from shared.outages import OUTAGES
from shared.security import api_keys

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
    headers = {"WWW-Authenticate": 'Bearer realm="amends"'} if error.status == 401 else None
    return json_response(body, error.status, headers)


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
                return handler(self, request, *args, **kwargs)
            except HttpError as error:
                return error_response(error)
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
    """Checks `Authorization: Bearer <key>` against the hashed keys in the identity store."""

    def setup(self):
        api_keys.connect_identity(settings_for(self.container.service_name, self.container.config))

    def stop(self):
        mongoengine.disconnect(api_keys.IDENTITY_ALIAS)

    def get_dependency(self, worker_ctx):
        return self

    def require(self, request, roles):
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
        principal = api_keys.lookup(key.strip())
        if principal is None:
            raise Unauthorized("the API key is not recognised")
        if principal.role not in roles:
            raise Forbidden(f"the role '{principal.role}' may not do this", allowed_roles=sorted(roles))
        return principal
