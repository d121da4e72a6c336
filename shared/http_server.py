"""The services' HTTP server: nameko's, with limits on what one client may hold or send.

- A socket timeout: a client that takes longer than that over any one read or write
  (a request trickled in, a half-sent body, an idle kept-alive connection) is cut off
  instead of holding a connection and a green thread for ever.
- A body limit: every request carries it as werkzeug's `max_content_length`;
  `body_over_limit` judges a declared length without reading the body, and reads at most
  one byte past the limit of a body of no declared length (chunked). `shared.web.api`
  answers a body over the limit with a 413.
- The URL rule a request matched, for log lines that name the route, not the ids in a path.

Every `@http` entrypoint of a service must come from here: nameko runs one web server
per server type in a container, and two types would both bind the port.
"""
import re
from logging import getLogger

from eventlet import wsgi
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import HttpOnlyProtocol, WebServer

from shared.config import setting

# the request's route in its WSGI environ, e.g. "GET /v1/cases/<case_id>"
ROUTE = "amends.route"
# in the WSGI environ: call it to close the connection after this answer, unread body and all
CLOSE_AFTER = "amends.close_after"


def body_may_exceed(headers, limit):
    """Whether a request's body, judged from its headers alone, may be over `limit`."""
    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        return True
    try:
        return int(headers.get("Content-Length") or 0) > limit
    except ValueError:
        return True


def body_over_limit(request):
    """Whether a request's body is over its `max_content_length`. A body of declared
    length is not read; one of no declared length is read up to one byte past the limit,
    and what was read is kept for `request.get_data()`."""
    limit = request.max_content_length
    if request.content_length is not None:
        return request.content_length > limit
    # werkzeug stops reading at max_content_length without saying whether more was sent
    request.max_content_length = limit + 1
    try:
        return len(request.get_data(cache=True)) > limit
    finally:
        request.max_content_length = limit


def close_after(request):
    """Close the connection once this request is answered, rather than read on: for a body
    that stopped short or came too slowly, which eventlet would otherwise wait for again."""
    request.environ.get(CLOSE_AFTER, lambda: None)()


def route_name(method, rule):
    """`GET /v1/cases/<case_id>` for the rule `/v1/cases/<string:case_id>`."""
    return method + " " + re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"<\1>", rule)


class LimitedProtocol(HttpOnlyProtocol):
    def get_environ(self):
        environ = super().get_environ()
        environ[CLOSE_AFTER] = self._close_after
        return environ

    def _close_after(self):
        self.close_connection = 1  # read when the answer's headers are written

    def handle_one_response(self):
        # To keep a connection open eventlet reads and discards any body the application
        # left unread. A body that may be over the limit is not worth reading just to
        # throw away: answer, then close the connection.
        if body_may_exceed(self.headers, self.server.max_body_bytes):
            self.close_connection = 1
        super().handle_one_response()


class LimitedWebServer(WebServer):
    @property
    def max_body_bytes(self):
        return int(setting(self.container.config, "AMENDS_MAX_BODY_BYTES"))

    def get_wsgi_server(self, sock, wsgi_app, protocol=LimitedProtocol, debug=False):
        server = wsgi.Server(
            sock, sock.getsockname(), wsgi_app, protocol=protocol, debug=debug,
            log=getLogger("nameko.web.server"),
            socket_timeout=float(setting(self.container.config, "AMENDS_HTTP_SOCKET_TIMEOUT")),
            # eventlet ends a chunked body itself, so werkzeug may read one (up to the limit)
            environ={"wsgi.input_terminated": True},
        )
        server.max_body_bytes = self.max_body_bytes
        return server


class LimitedHttpEntrypoint(HttpRequestHandler):
    server = LimitedWebServer()

    def setup(self):
        super().setup()
        self.max_body_bytes = self.server.max_body_bytes
        self.route = route_name(self.method, self.url)

    def handle_request(self, request):
        request.max_content_length = self.max_body_bytes
        request.environ[ROUTE] = self.route
        return super().handle_request(request)


http = LimitedHttpEntrypoint.decorator
