"""Request budgets: how often one API key may call, and how often one client address
may present a key that is refused (to slow down guessing).

Token buckets held in this process: each service instance counts on its own, so N
processes of a service allow N times the rate. A store shared between processes would
need atomic counters, which FerretDB cannot give safely.
"""
import math
import time
from dataclasses import dataclass

from shared.config import setting


class Buckets:
    """One token bucket per name: each holds at most `burst` tokens, refills at
    `per_minute` a minute, and a request spends one. Pure apart from `clock`."""

    def __init__(self, per_minute, burst, clock=time.monotonic, max_names=10_000):
        if per_minute <= 0 or burst < 1:
            raise ValueError("a rate limit needs a positive rate and a burst of at least 1")
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self._held = {}  # name -> (tokens, when counted)
        self._prune_above = max_names

    def _tokens(self, name, now):
        tokens, then = self._held.get(name, (self.burst, now))
        return min(self.burst, tokens + (now - then) * self.rate)

    def _wait(self, tokens):
        # whole seconds, rounded up, so a client that waits that long finds a token
        return 0 if tokens >= 1 else max(1, math.ceil((1 - tokens) / self.rate))

    def wait(self, name):
        """Seconds before `name` may spend a token (0: now), spending nothing."""
        return self._wait(self._tokens(name, self.clock()))

    def take(self, name):
        """Spend a token for `name`: 0 if it had one, else the seconds before it will
        (and nothing is spent)."""
        now = self.clock()
        tokens = self._tokens(name, now)
        if tokens < 1:
            return self._wait(tokens)
        self._held[name] = (tokens - 1, now)
        if len(self._held) > self._prune_above:
            self._prune(now)
        return 0

    def _prune(self, now):
        # a full bucket is the same as none; the threshold doubles so that many busy
        # names cannot make every request pay for a sweep
        for name in [n for n in self._held if self._tokens(n, now) >= self.burst]:
            del self._held[name]
        self._prune_above = max(self._prune_above, 2 * len(self._held))

    def __len__(self):
        return len(self._held)


@dataclass(frozen=True)
class RateSettings:
    per_key_per_minute: float
    per_key_burst: int
    failures_per_minute: float
    failures_burst: int

    @classmethod
    def from_config(cls, config):
        return cls(
            per_key_per_minute=float(setting(config, "AMENDS_RATE_LIMIT")),
            per_key_burst=int(setting(config, "AMENDS_RATE_BURST")),
            failures_per_minute=float(setting(config, "AMENDS_AUTH_FAILURE_LIMIT")),
            failures_burst=int(setting(config, "AMENDS_AUTH_FAILURE_BURST")),
        )


class Throttle:
    """The budgets of one service instance: requests per API key (by its id, never the
    key itself) and refused keys per client address."""

    def __init__(self, settings, clock=time.monotonic):
        self.keys = Buckets(settings.per_key_per_minute, settings.per_key_burst, clock)
        self.failures = Buckets(settings.failures_per_minute, settings.failures_burst, clock)

    def address_wait(self, address):
        """Seconds before `address` may present a key again (0: now). Checked before the
        key is looked up, so that a blocked guesser learns nothing, even from a right guess."""
        return self.failures.wait(address or "unknown")

    def refused(self, address):
        """Count a refused key against `address`."""
        self.failures.take(address or "unknown")

    def admit(self, key_id):
        """Spend one request of `key_id`'s budget: 0 if admitted, else seconds to wait."""
        return self.keys.take(key_id)
