"""The services' HTTP server: nameko's, with limits on what one client may hold or send.

- A socket timeout: a client that takes longer than that over any one read or write
  (a request trickled in, a half-sent body, an idle kept-alive connection) is cut off
  instead of holding a connection and a green thread for ever.
- A body limit: every request carries it as werkzeug's `max_content_length`;
  `body_over_limit` judges a declared length without reading the body, and reads at most
  one byte past the limit of a body of no declared length (chunked). `shared.web.api`
  answers a body over the limit with a 413.
- The URL rule a request matched, for log lines that name the route, not the ids in a path.
- Each answer counted and timed by its route's template and status (shared.metrics).
- No credential in the access log: a route whose path holds one (a variable named in
  `CREDENTIAL_VARIABLES`, such as a survey's token) is logged with the variable's name
  in its place.

Every `@http` entrypoint of a service must come from here: nameko runs one web server
per server type in a container, and two types would both bind the port.
"""
import re
import time
from logging import getLogger

from eventlet import wsgi
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import HttpOnlyProtocol, WebServer

from shared import metrics
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


# path variables that are credentials (the token of a survey link): never logged
CREDENTIAL_VARIABLES = ("token",)
_VARIABLE = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def credential_pattern(rule):
    """(a regex matching a path of `rule`, what to put in its place) when the rule has a
    credential variable, else None: with `/v1/surveys/<string:token>`, every
    `/v1/surveys/<anything>` in a log line becomes `/v1/surveys/<token>`; other variables
    of the rule are kept as they were."""
    parts = _VARIABLE.split(rule)   # literal, variable name, literal, ...
    literals, names = parts[0::2], parts[1::2]
    if not set(names) & set(CREDENTIAL_VARIABLES):
        return None
    pattern = re.escape(literals[0]) + "".join(r"([^/?#\s]+)" + re.escape(lit) for lit in literals[1:])

    def replace(match):
        return literals[0] + "".join((f"<{name}>" if name in CREDENTIAL_VARIABLES else match.group(i + 1)) + lit
                                     for i, (name, lit) in enumerate(zip(names, literals[1:])))

    return re.compile(pattern), replace


class RedactingLog:
    """The server's log (eventlet's access lines) with every credential in a path replaced."""

    def __init__(self, log, patterns):
        self.log = log
        self.patterns = patterns   # the server's list: routes add theirs as they are set up

    def redact(self, text):
        for pattern, replacement in self.patterns:
            text = pattern.sub(replacement, text)
        return text

    def _say(self, level, msg, *args):
        text = msg % args if args else msg
        getattr(self.log, level)(self.redact(text))

    def info(self, msg, *args, **kwargs):
        self._say("info", msg, *args)

    def debug(self, msg, *args, **kwargs):
        self._say("debug", msg, *args)

    def warning(self, msg, *args, **kwargs):
        self._say("warning", msg, *args)

    def error(self, msg, *args, **kwargs):
        self._say("error", msg, *args)

    def exception(self, msg, *args, **kwargs):
        self._say("error", msg, *args)

    def write(self, msg):
        self._say("info", msg.rstrip("\n"))


def route_template(rule):
    """`/v1/cases/<case_id>` for the rule `/v1/cases/<string:case_id>`: what a log line or a
    metric names a route by, never the ids in a request's path."""
    return _VARIABLE.sub(r"<\1>", rule)


def route_name(method, rule):
    """`GET /v1/cases/<case_id>` for the rule `/v1/cases/<string:case_id>`."""
    return method + " " + route_template(rule)


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

    @property
    def credential_paths(self):
        """(pattern, replacement) of each route with a credential in its path."""
        if "_credential_paths" not in self.__dict__:
            self._credential_paths = []
        return self._credential_paths

    def redact_credentials_of(self, rule):
        found = credential_pattern(rule)
        if found is not None and found[0].pattern not in {p.pattern for p, _ in self.credential_paths}:
            self.credential_paths.append(found)

    def get_wsgi_server(self, sock, wsgi_app, protocol=LimitedProtocol, debug=False):
        server = wsgi.Server(
            sock, sock.getsockname(), wsgi_app, protocol=protocol, debug=debug,
            log=RedactingLog(getLogger("nameko.web.server"), self.credential_paths),
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
        self.template = route_template(self.url)
        self.server.redact_credentials_of(self.url)

    def handle_request(self, request):
        started = time.perf_counter()
        request.max_content_length = self.max_body_bytes
        request.environ[ROUTE] = self.route
        response = super().handle_request(request)
        metrics.answered(self.method, self.template, response.status_code, time.perf_counter() - started)
        return response


http = LimitedHttpEntrypoint.decorator
