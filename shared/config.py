"""Settings every service reads, from its nameko config (itself filled from the environment).

Each service's YAML maps environment variables onto these keys with `${VAR:default}`,
so an operator configures a service through the environment alone (12-factor).
"""
import os
from dataclasses import dataclass

DEFAULTS = {
    "AMQP_URI": "amqp://guest:guest@127.0.0.1:5672/",
    "MONGO_URI": "mongodb://127.0.0.1:27017/",
    "AMENDS_DB_PREFIX": "amends",
    # This deployment's residency zone: its broker, its databases, its ledger (and the ledger's
    # origin, amends.<region>/ledger), named in every event it emits.
    "AMENDS_REGION": "local",
    # The referral regions (police-force areas, comma-separated codes) this deployment serves.
    # No default: referrals does not start without it (services/referrals/residency.py).
    "AMENDS_REGIONS": "",
    # Seconds to wait before each retry of a failed handler; one retry per value.
    "AMENDS_RETRY_DELAYS": "1,5,30",
    # Unsent outbox events older than this many seconds are republished by the relay timer.
    "AMENDS_OUTBOX_GRACE": "5",
    "AMENDS_OUTBOX_INTERVAL": "5",
    # HTTP limits (docs/security.md): the largest request body, in bytes; seconds a client
    # may take over any one read or write; requests a minute, and the burst, per API key;
    # refused keys a minute, and the burst, per client address.
    "AMENDS_MAX_BODY_BYTES": "1048576",
    "AMENDS_HTTP_SOCKET_TIMEOUT": "30",
    "AMENDS_RATE_LIMIT": "600",
    "AMENDS_RATE_BURST": "100",
    "AMENDS_AUTH_FAILURE_LIMIT": "30",
    "AMENDS_AUTH_FAILURE_BURST": "10",
    # Where FerretDB keeps its data, when it runs on PostgreSQL: the stores then give each
    # index a GIN twin there (shared/storage/ferretdb_pg.py). Empty on MongoDB.
    "AMENDS_FERRETDB_POSTGRESQL_URL": "",
}


@dataclass(frozen=True)
class Settings:
    service: str
    amqp_uri: str
    mongo_uri: str
    db_prefix: str
    region: str
    retry_delays: tuple
    outbox_grace: float
    outbox_interval: float
    ferretdb_postgresql_url: str = ""
    # AMENDS_REGIONS as given, each code once, in order (empty: none configured)
    regions: tuple = ()

    @property
    def database(self):
        return f"{self.db_prefix}_{self.service}"

    @property
    def source(self):
        """The CloudEvents `source` of everything this service emits."""
        return f"/amends/{self.region}/{self.service}"


def _lookup(config, key):
    value = config.get(key) if config else None
    if value in (None, ""):
        value = os.environ.get(key, DEFAULTS[key])
    return str(value)


def setting(config, key, default=None):
    """One setting, from a nameko config dict, else the environment, else its default: a key
    of DEFAULTS as text, with the default there; any other key (a service's own) as given,
    else `default`."""
    if key in DEFAULTS:
        return _lookup(config, key)
    value = config.get(key) if config else None
    if value in (None, ""):
        value = os.environ.get(key)
    return default if value in (None, "") else value


def regions_of(text):
    """AMENDS_REGIONS's codes: comma-separated, blanks ignored, each once, in order."""
    seen = []
    for part in (text or "").split(","):
        code = part.strip()
        if code and code not in seen:
            seen.append(code)
    return tuple(seen)


def _delays(text):
    return tuple(float(part) for part in text.split(",") if part.strip())


def settings_for(service, config=None):
    """Settings for `service`, from a nameko config dict, else the environment, else defaults."""
    return Settings(
        service=service,
        amqp_uri=_lookup(config, "AMQP_URI"),
        mongo_uri=_lookup(config, "MONGO_URI"),
        db_prefix=_lookup(config, "AMENDS_DB_PREFIX"),
        region=_lookup(config, "AMENDS_REGION"),
        retry_delays=_delays(_lookup(config, "AMENDS_RETRY_DELAYS")),
        outbox_grace=float(_lookup(config, "AMENDS_OUTBOX_GRACE")),
        outbox_interval=float(_lookup(config, "AMENDS_OUTBOX_INTERVAL")),
        ferretdb_postgresql_url=_lookup(config, "AMENDS_FERRETDB_POSTGRESQL_URL"),
        regions=regions_of(_lookup(config, "AMENDS_REGIONS")),
    )


class StartRefused(SystemExit):
    """A service refusing to start because a setting is missing or wrong. Raised from a
    dependency provider's setup, it ends `nameko run` with this one message on stderr and
    exit status 1, no traceback; in a test it is an exception like any other."""

    def __init__(self, service, message):
        self.message = message
        super().__init__(f"{service} will not start: {message}")
