"""The other services' HTTP APIs, called with the signed-in person's own API key.

The console holds no copy of any other service's data and reads no other database:
every case, offer and assessment it shows comes from these calls, so a person sees
exactly what the APIs let their key see. An answer that is not a success is raised as
`Refused` with its status and the service's JSON error (which never holds personal data).
"""
import logging

import requests

log = logging.getLogger(__name__)

SERVICES = ("referrals", "matching", "notifications", "records", "subscriptions", "reports")
DEFAULT_ADDRESSES = {"referrals": "127.0.0.1:8001", "matching": "127.0.0.1:8002", "notifications": "127.0.0.1:8003",
                     "records": "127.0.0.1:8004", "subscriptions": "127.0.0.1:8005",
                     "reports": "127.0.0.1:8009"}
TIMEOUT = 10


class Refused(Exception):
    """A service said no (4xx), or could not answer (5xx, or unreachable: status 503)."""

    def __init__(self, status, body=None):
        self.status = status
        self.body = body if isinstance(body, dict) else {}
        super().__init__(f"HTTP {status}")

    @property
    def fields(self):
        """field -> messages, for a 400 naming the fields at fault."""
        return self.body.get("fields") or {}


class Apis:
    """The services' base URLs, and calls to them as one person (`key`)."""

    def __init__(self, urls, key, session=None):
        self.urls = urls
        self.key = key
        self.session = session or requests

    def _send(self, method, service, path, timeout=TIMEOUT, params=None, **kwargs):
        """The answer to one call, a success; Refused otherwise. Parameters left empty are not sent."""
        given = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        try:
            response = self.session.request(method, self.urls[service] + path, timeout=timeout, params=given or None,
                                            headers={"Authorization": f"Bearer {self.key}"}, **kwargs)
        except requests.RequestException as error:
            log.warning("%s unreachable: %s", service, type(error).__name__)
            raise Refused(503) from None
        if response.status_code >= 300:
            raise Refused(response.status_code, _json(response))
        return response

    def _call(self, method, service, path, **kwargs):
        return _json(self._send(method, service, path, **kwargs))

    def get(self, service, path, **params):
        return self._call("GET", service, path, params=params)

    def text(self, service, path):
        """GET a plain-text answer (records' signed head and public key)."""
        return self._send("GET", service, path).text

    def get_slowly(self, service, path, timeout):
        """GET an answer that takes long to compute (records' full verification of the ledger)."""
        return self._call("GET", service, path, timeout=timeout)

    def post(self, service, path, body=None):
        # no body at all where the operation takes none (its OpenAPI document declares none)
        return self._call("POST", service, path, **({"json": body} if body is not None else {}))

    def patch(self, service, path, body):
        return self._call("PATCH", service, path, json=body)

    def optional(self, service, path):
        """GET, or None where the service has nothing for this caller (404), or will not show
        it to this caller's role (403): a page leaves that part out."""
        try:
            return self.get(service, path)
        except Refused as refused:
            if refused.status in (403, 404):
                return None
            raise

    def download(self, service, path, **params):
        """GET a file (a report's CSV): (its bytes unchanged, its content type, its
        Content-Disposition); a refusal is raised as for the JSON calls."""
        response = self._send("GET", service, path, params=params)
        return response.content, response.headers.get("Content-Type"), response.headers.get("Content-Disposition")


def _json(response):
    """A response's JSON body, or None (a CSV, a plain-text note, an empty answer)."""
    try:
        return response.json()
    except ValueError:
        return None
