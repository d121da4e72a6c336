"""RabbitMQ's management HTTP API, as one of its users: the one client of it here.

What it is used for needs a broker administrator (users, permissions, policies, shovels),
so whoever holds a `Management` holds the broker: only the bootstrap, the deploy step,
the national link and the subscriptions service (agencies' feeds) make one.

An error names the request (method and path) and the broker's status, never a request
body (a user's body is its password) and never the broker's answer beyond its reason.
"""
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import requests


class ManagementError(RuntimeError):
    def __init__(self, method, path, status, reason=""):
        self.status = status
        super().__init__(f"management API {method} {path}: HTTP {status}{' ' + reason if reason else ''}")


def _part(name):
    return quote(name, safe="")


def split_credentials(url):
    """(url without credentials, user, password) of `http://user:password@host:port`."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    bare = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    return bare, unquote(parts.username or ""), unquote(parts.password or "")


class Management:
    def __init__(self, url, user, password, timeout=30, session=None):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.auth = (user, password)

    @classmethod
    def from_url(cls, url, **kwargs):
        """From `http://user:password@host:port` (user and password URL-quoted)."""
        bare, user, password = split_credentials(url)
        if not user or not password:
            raise ValueError("the management URL carries no user and password")
        return cls(bare, user, password, **kwargs)

    def request(self, method, path, body=None, missing_ok=False):
        """The answer to `method path`; raises ManagementError unless it is 2xx (or 404 when
        `missing_ok`: deleting what is gone, reading what may not exist)."""
        response = self.session.request(method, self.url + path, json=body, timeout=self.timeout)
        if response.status_code < 300 or (missing_ok and response.status_code == 404):
            return response
        reason = ""
        try:
            reason = str(response.json().get("reason", ""))[:200]
        except ValueError:
            pass
        raise ManagementError(method, path, response.status_code, reason)

    def get(self, path, missing_ok=False):
        """The JSON at `path`, or None where there is nothing and `missing_ok`."""
        response = self.request("GET", path, missing_ok=missing_ok)
        return None if response.status_code == 404 else response.json()

    def version(self):
        return self.get("/api/overview")["rabbitmq_version"]

    # -- users -------------------------------------------------------------------------

    def user(self, name):
        """The user (name, tags, limits, its password's hash) or None."""
        return self.get(f"/api/users/{_part(name)}", missing_ok=True)

    def put_user(self, name, password, tags=""):
        """Make the user, or give an existing one this password and these tags."""
        self.request("PUT", f"/api/users/{_part(name)}", {"password": password, "tags": tags})

    def delete_user(self, name):
        """True if there was such a user."""
        return self.request("DELETE", f"/api/users/{_part(name)}", missing_ok=True).status_code != 404

    def set_permissions(self, vhost, user, grant):
        """The user's configure, write and read regexes in `vhost` (a permissions.Grant's)."""
        self.request("PUT", f"/api/permissions/{_part(vhost)}/{_part(user)}",
                     {"configure": grant.configure, "write": grant.write, "read": grant.read})

    def set_user_limit(self, user, limit, value):
        """`max-connections` or `max-channels` for the user, across the broker."""
        self.request("PUT", f"/api/user-limits/{_part(user)}/{limit}", {"value": value})

    def close_connections_of(self, user):
        """Close every connection the user has open (one that still knows an old password)."""
        self.request("DELETE", f"/api/connections/username/{_part(user)}", missing_ok=True)

    # -- queues, bindings, policies, parameters -------------------------------------------

    def put_queue(self, vhost, name, arguments):
        """Declare a durable queue (nothing changes if it exists with these arguments; other
        arguments are refused: HTTP 400)."""
        self.request("PUT", f"/api/queues/{_part(vhost)}/{_part(name)}", {"durable": True, "auto_delete": False,
                                                                         "arguments": arguments})

    def queue(self, vhost, name):
        return self.get(f"/api/queues/{_part(vhost)}/{_part(name)}", missing_ok=True)

    def delete_queue(self, vhost, name):
        """True if there was such a queue (its messages go with it)."""
        return self.request("DELETE", f"/api/queues/{_part(vhost)}/{_part(name)}",
                            missing_ok=True).status_code != 404

    def bind_queue(self, vhost, exchange, queue, routing_key):
        """Bind `queue` to `exchange` (binding again is harmless: bindings are a set)."""
        self.request("POST", f"/api/bindings/{_part(vhost)}/e/{_part(exchange)}/q/{_part(queue)}",
                     {"routing_key": routing_key, "arguments": {}})

    def put_policy(self, vhost, name, pattern, definition, apply_to="queues", priority=0):
        self.request("PUT", f"/api/policies/{_part(vhost)}/{_part(name)}",
                     {"pattern": pattern, "definition": definition, "apply-to": apply_to, "priority": priority})

    def put_parameter(self, component, vhost, name, value):
        """A runtime parameter (a dynamic shovel's definition, say): {"value": ...}."""
        self.request("PUT", f"/api/parameters/{_part(component)}/{_part(vhost)}/{_part(name)}", value)
