"""A subscription: which of the ledger's events an agency wants, where they go, and the
secrets that sign them. The rules of its requests (create, change), its URL and its event
types, and of its secrets' rotation. Pure: no I/O.

What a subscription *receives* is what it wants (its event types and filter) and what its
agency is entitled to (its sharing agreement, profiles.py), each event redacted by the
agreement's profile.
"""
import base64
import ipaddress
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates, validates_schema

from services.subscriptions import receivers
from shared.events import catalogue
from shared.events.schemas.subscriptions import SUBSCRIPTION_KINDS
from shared.events.vocabulary import CODE

MAX_BATCH = 100
MAX_PATTERNS = 50
MAX_REGIONS = 50
MAX_URL = 2048
SECRET_PREFIX = "whsec_"
# plain http is for a receiver on this machine, in development only (SUBSCRIPTIONS_ALLOW_LOCAL_HTTP=1)
LOCAL_HOSTS = ("127.0.0.1", "localhost")
START_NOW = "now"


class InvalidSubscription(ValueError):
    """400: `errors` maps each field at fault to what is wrong with it."""

    def __init__(self, errors):
        self.errors = errors
        super().__init__("the subscription is not valid: " + ", ".join(sorted(errors)))


# --- event types --------------------------------------------------------------------------

def pattern_problem(pattern):
    """Why `pattern` names no event type of the catalogue (None: it names at least one).
    A pattern is an exact type (`case.closed`) or a prefix and `.*` (`case.*`)."""
    if not isinstance(pattern, str) or not pattern:
        return "An event type or pattern is a non-empty string."
    if pattern.endswith(".*"):
        prefix = pattern[:-1]
        if "*" in prefix or prefix == ".":
            return f"'{pattern}': a pattern is a prefix and '.*', like 'case.*'."
        if not any(t.startswith(prefix) for t in catalogue.EVENT_TYPES):
            return f"'{pattern}' matches no event type."
        return None
    if "*" in pattern:
        return f"'{pattern}': a pattern is a prefix and '.*', like 'case.*'."
    if pattern not in catalogue.EVENT_TYPES:
        return f"'{pattern}' is no event type."
    return None


def matches(patterns, event_type):
    return any(event_type.startswith(p[:-1]) if p.endswith(".*") else event_type == p for p in patterns)


# --- where events go -----------------------------------------------------------------------

def url_problem(url, allow_local_http=False):
    """Why a webhook may not be sent to `url` (None: it may). https only; plain http only
    to this machine, and only where the deployment allows it (development); never a URL
    holding credentials, which would sit in our database and logs."""
    if not isinstance(url, str) or not url.strip():
        return "Give the https URL to send the events to."
    if len(url) > MAX_URL:
        return f"A URL is at most {MAX_URL} characters."
    if any(c.isspace() or ord(c) < 32 for c in url):
        return "A URL holds no spaces or control characters."
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # a port that is no number raises here
    except ValueError:
        return "This is not a URL."
    if parts.scheme not in ("https", "http") or not host:
        return "Use an https URL."
    if parts.username is not None or parts.password is not None:
        return "A URL may not hold credentials; the events are signed instead."
    if parts.fragment:
        return "A URL to send events to has no fragment ('#...')."
    local = host in LOCAL_HOSTS or _loopback(host)
    if parts.scheme == "http":
        if not allow_local_http:
            return "Use an https URL."
        if not local:
            return "Plain http is allowed only to 127.0.0.1 or localhost (development); use https."
    # the address is checked again on every connection, whatever the name resolves to then
    address = receivers.literal_address(host)
    if (address is not None or host == "localhost") and not (local and allow_local_http) and (
            address is None or not receivers.address_allowed(address)):
        return "Webhooks go only to public addresses, not to this network's own."
    return None


def _loopback(host):
    address = receivers.literal_address(host)
    return address is not None and address == ipaddress.ip_address("127.0.0.1")


# --- secrets ---------------------------------------------------------------------------------

def new_secret():
    """A Standard Webhooks secret: `whsec_` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


@dataclass(frozen=True)
class Secret:
    value: str
    # when it stops signing; None for the newest, which signs until it is rotated out
    expires_at: datetime = None

    def live(self, now):
        return self.expires_at is None or self.expires_at > now


@dataclass(frozen=True)
class Replay:
    """An owner's request to deliver again from a ledger position; the dispatcher applies it."""
    replay_id: str
    from_position: int
    requested_at: datetime
    requested_by: str


@dataclass(frozen=True)
class Subscription:
    subscription_id: str
    agency: str
    kind: str
    event_types: tuple
    url: str = None
    regions: tuple = ()
    own_referrals_only: bool = False
    max_batch: int = 1
    secrets: tuple = ()
    # the position its cursor starts at: delivery begins with the entry after it
    start_after: int = -1
    created_at: datetime = None
    created_by: str = None
    status: str = "active"   # active | deleted
    replay: Replay = None

    def live_secrets(self, now):
        """The secrets that sign now, newest first."""
        return tuple(s.value for s in self.secrets if s.live(now))

    def wants(self, event, facts):
        """Whether the event is of a type it asked for and passes its filter. `facts`
        (profiles.CaseFacts, or None) are those of the event's case."""
        if not matches(self.event_types, event["type"]):
            return False
        if self.regions and (facts is None or facts.region not in self.regions):
            return False
        if self.own_referrals_only and (facts is None or facts.agency != self.agency):
            return False
        return True

    def receives(self, agreement, event, facts, entitled):
        """Whether it is sent `event`: wanted, and its agency entitled to it under its
        sharing `agreement` (`entitled` is profiles.entitled)."""
        return agreement is not None and self.wants(event, facts) and entitled(agreement, event, facts)

    def rotated(self, now, overlap):
        """(the new secret, this subscription with it): the old ones keep signing beside it
        for `overlap` (or until they were due to stop, if sooner), then stop."""
        fresh = new_secret()
        until = now + overlap
        kept = tuple(Secret(s.value, until if s.expires_at is None or s.expires_at > until else s.expires_at)
                     for s in self.secrets if s.live(now))
        return fresh, replace(self, secrets=(Secret(fresh),) + kept)

    def view(self):
        """As the API shows it: never a secret."""
        return {"subscription_id": self.subscription_id, "agency": self.agency, "kind": self.kind,
                "url": self.url, "event_types": list(self.event_types),
                "filter": {"regions": list(self.regions), "own_referrals_only": self.own_referrals_only},
                "max_batch": self.max_batch, "start_after": self.start_after,
                "created_at": self.created_at.isoformat() if self.created_at else None,
                "secrets_in_use": len(self.secrets),
                "replay": None if self.replay is None else {
                    "replay_id": self.replay.replay_id, "from_position": self.replay.from_position,
                    "requested_at": self.replay.requested_at.isoformat()}}


# --- requests ----------------------------------------------------------------------------------

STRICT_BOOL = {"truthy": {True}, "falsy": {False}}


class FilterSchema(Schema):
    class Meta:
        unknown = RAISE

    regions = fields.List(fields.Str(validate=[CODE, validate.Length(max=50)]), load_default=list,
                          validate=validate.Length(max=MAX_REGIONS))
    own_referrals_only = fields.Bool(load_default=False, **STRICT_BOOL)


class StartField(fields.Field):
    """"now", or {"position": N}: deliver from ledger position N on."""

    def __init__(self, **kwargs):
        super().__init__(metadata={"description": 'where delivery starts: "now", or {"position": N}, N a ledger '
                                                  "position (0 or more)",
                                   "oneOf": [{"type": "string", "enum": [START_NOW]},
                                             {"type": "object", "required": ["position"],
                                              "additionalProperties": False,
                                              "properties": {"position": {"type": "integer", "minimum": 0}}}]},
                         **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if value == START_NOW:
            return START_NOW
        if isinstance(value, dict) and set(value) == {"position"}:
            position = value["position"]
            if isinstance(position, int) and not isinstance(position, bool) and position >= 0:
                return position
        raise ValidationError('Use "now" or {"position": N}, N a ledger position (0 or more).')


def _event_types_field(**kwargs):
    return fields.List(fields.Str(validate=validate.Length(min=1, max=120)),
                       validate=validate.Length(min=1, max=MAX_PATTERNS), **kwargs)


def _check_patterns(value):
    problems = [p for p in (pattern_problem(pattern) for pattern in value) if p]
    if len(set(value)) != len(value):
        problems.append("Each event type or pattern once.")
    if problems:
        raise ValidationError(problems)


class SubscriptionRequest(Schema):
    """The body of POST /v1/subscriptions."""

    class Meta:
        unknown = RAISE

    kind = fields.Str(required=True, validate=validate.OneOf(SUBSCRIPTION_KINDS))
    url = fields.Str()
    event_types = _event_types_field(required=True)
    filter = fields.Nested(FilterSchema, load_default=lambda: {"regions": [], "own_referrals_only": False})
    start = StartField(load_default=START_NOW)
    max_batch = fields.Int(load_default=1, strict=True, validate=validate.Range(min=1, max=MAX_BATCH))

    @validates("event_types")
    def _patterns(self, value, **kwargs):
        _check_patterns(value)

    @validates_schema
    def _url_for_kind(self, data, **kwargs):
        if data.get("kind") == "amqp" and "url" in data:
            raise ValidationError("An amqp subscription has no URL: its events wait in its own queue.", "url")


class SubscriptionChange(Schema):
    """The body of PATCH /v1/subscriptions/{id}: any of these, at least one."""

    class Meta:
        unknown = RAISE

    url = fields.Str()
    event_types = _event_types_field()
    filter = fields.Nested(FilterSchema)
    max_batch = fields.Int(strict=True, validate=validate.Range(min=1, max=MAX_BATCH))

    @validates("event_types")
    def _patterns(self, value, **kwargs):
        _check_patterns(value)

    @validates_schema
    def _something(self, data, **kwargs):
        if not data:
            raise ValidationError("Change at least one of url, event_types, filter, max_batch.", "_schema")


class ReplayRequest(Schema):
    """The body of POST /v1/subscriptions/{id}/replay."""

    class Meta:
        unknown = RAISE

    from_position = fields.Int(required=True, strict=True, validate=validate.Range(min=0), error_messages={
        "invalid": "Give a ledger position, an integer 0 or more.",
        "required": "Give a ledger position, an integer 0 or more."})


_CREATE, _CHANGE, _REPLAY = SubscriptionRequest(), SubscriptionChange(), ReplayRequest()


def read_replay(body):
    """The ledger position a replay asks for; InvalidSubscription names each field at fault."""
    if not isinstance(body, dict):
        raise InvalidSubscription({"_schema": ["The body must be a JSON object."]})
    try:
        return _REPLAY.load(body)["from_position"]
    except ValidationError as invalid:
        raise InvalidSubscription(invalid.messages)


def _load(schema, body, allow_local_http):
    """(the loaded data, the errors): the schema's errors and the URL rule's, together, so
    that one answer names every field at fault."""
    if not isinstance(body, dict):
        raise InvalidSubscription({"_schema": ["The body must be a JSON object."]})
    try:
        data, errors = schema.load(body), {}
    except ValidationError as invalid:
        data, errors = invalid.valid_data or {}, dict(invalid.messages)
    if "url" not in errors and isinstance(body.get("url"), str):
        problem = url_problem(body["url"], allow_local_http)
        if problem:
            errors["url"] = [problem]
    return data, errors


def _settings(data):
    """The Subscription fields a loaded request sets."""
    found = {name: data[name] for name in ("kind", "url", "max_batch") if name in data}
    if "event_types" in data:
        found["event_types"] = tuple(data["event_types"])
    if "filter" in data:
        found["regions"] = tuple(data["filter"]["regions"])
        found["own_referrals_only"] = data["filter"]["own_referrals_only"]
    return found


def read_create(body, allow_local_http=False):
    """What a POST body asks for, checked: (the new subscription's settings, its start: START_NOW
    or a ledger position); InvalidSubscription naming every field at fault."""
    data, errors = _load(_CREATE, body, allow_local_http)
    if data.get("kind") == "webhook" and "url" not in body and "url" not in errors:
        errors["url"] = ["A webhook subscription needs the https URL to send its events to."]
    if errors:
        raise InvalidSubscription(errors)
    return _settings(data), data["start"]


def read_change(body, subscription, allow_local_http=False):
    """The subscription as a PATCH body changes it; InvalidSubscription naming every field at fault."""
    data, errors = _load(_CHANGE, body, allow_local_http)
    if "url" in body and subscription.kind != "webhook":
        errors["url"] = ["An amqp subscription has no URL: its events wait in its own queue."]
    if errors:
        raise InvalidSubscription(errors)
    return replace(subscription, **_settings(data))


def new_subscription(settings, principal, now, start_after, secret=None):
    """The Subscription `settings` (read_create's) make for the caller's agency. `start_after`
    is where its cursor begins."""
    return Subscription(subscription_id=f"sub-{uuid.uuid4().hex[:20]}", agency=principal.agency,
                        secrets=(Secret(secret),) if secret else (), start_after=start_after, created_at=now,
                        created_by=principal.who, **settings)


def start_after(start, reached):
    """Where a new subscription's cursor begins: "now" is the last position the service has
    stored (`reached`), a position N means delivery from N on."""
    return reached if start == START_NOW else start - 1


def replay_request(subscription, from_position, principal, now):
    return replace(subscription, replay=Replay(f"rp-{uuid.uuid4().hex[:16]}", from_position, now, principal.who))


def overlap_from(seconds):
    return timedelta(seconds=float(seconds))
