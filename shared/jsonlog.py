"""JSON log lines: one object per line, with the service, region and the correlation
and causation ids of the work in hand, and never personal data or a stack trace."""
import json
import logging
import os
import threading
import traceback
from datetime import datetime, timezone

from nameko.extensions import DependencyProvider

# Under eventlet's monkey patching this is per greenthread, so each worker logs its own ids.
_context = threading.local()

CONTEXT_KEYS = ("correlationid", "causationid", "event_type")

# Libraries whose log arguments can be message payloads: nameko logs every RPC reply
# body at DEBUG (and a get_contact reply is contact details), pymongo logs commands and
# their documents. From these only the fixed text of the message is kept, never its values.
PAYLOAD_LOGGERS = ("nameko.rpc", "nameko.messaging", "nameko.events", "nameko.amqp", "pymongo.command", "kombu",
                   "amqp")


def bind(**values):
    for key in CONTEXT_KEYS:
        setattr(_context, key, values.get(key))


def current(key):
    return getattr(_context, key, None)


def clear():
    bind()


class JsonFormatter(logging.Formatter):
    def __init__(self, service="amends", **kwargs):
        super().__init__()
        self.service = service
        self.region = os.environ.get("AMENDS_REGION", "local")

    def format(self, record):
        line = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "region": self.region,
            "logger": record.name,
        }
        for key in CONTEXT_KEYS:
            value = getattr(_context, key, None)
            if value:
                line[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            # The message of an error log often embeds the exception's text, which
            # may quote data; keep only where it happened and the exception's type.
            line["message"] = f"unhandled error in {record.name}"
            line["error"] = record.exc_info[0].__name__
            line["error_at"] = _where(record.exc_info[2])
        elif record.name.startswith(PAYLOAD_LOGGERS):
            line["message"] = record.msg if isinstance(record.msg, str) else f"{record.name} record (values withheld)"
        else:
            line["message"] = record.getMessage()
        # named values a caller passes as `extra={"fields": {...}}`, having made sure
        # they hold no personal data; they never replace the line's own keys
        for key, value in (getattr(record, "fields", None) or {}).items():
            line.setdefault(key, value)
        return json.dumps(line, default=str)


def _where(tb):
    """Where an error was raised, as `module:function:line` of the innermost frame in
    our own code and the innermost frame overall: enough to find it, no data."""
    frames = traceback.extract_tb(tb) if tb else []
    ours = [f for f in frames if "/services/" in f.filename or "/shared/" in f.filename]
    picked = ([ours[-1]] if ours else []) + ([frames[-1]] if frames and (not ours or frames[-1] is not ours[-1]) else [])
    return " < ".join(f"{os.path.basename(f.filename)}:{f.name}:{f.lineno}" for f in reversed(picked))


def configure(service, level="INFO"):
    """For scripts and tools outside nameko: JSON lines to stderr."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class LogContext(DependencyProvider):
    """Binds each worker's correlation ids to the log lines it writes."""

    def worker_setup(self, worker_ctx):
        bind(**{key: worker_ctx.data.get(key) for key in CONTEXT_KEYS})

    def worker_teardown(self, worker_ctx):
        clear()
