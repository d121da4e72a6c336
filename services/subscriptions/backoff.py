"""When to try a failing subscription again, and when to give up on it. Pure.

Exponential backoff with full jitter: the n-th retry waits a random time between 0 and
min(cap, base * 2**(n-1)) seconds, so receivers coming back after an outage are not all
hit at the same moment. A subscription is given up (disabled) once its deliveries have
failed for the whole retry window, counted from its first failure since it last settled.
"""
import random
from dataclasses import dataclass

DAY = 86400.0


@dataclass(frozen=True)
class Backoff:
    base: float = 1.0          # the first retry's ceiling, in seconds
    cap: float = 3600.0        # no wait is longer than this
    window: float = 3 * DAY    # give up after failing this long

    def __post_init__(self):
        if not (self.base > 0 and self.cap >= self.base and self.window > 0):
            raise ValueError("backoff needs base > 0, cap >= base and window > 0")

    def ceiling(self, failures):
        """The longest wait after `failures` failures in a row (1 or more)."""
        if failures < 1:
            raise ValueError("a wait follows at least one failure")
        # 2**64 is past any cap; beyond it the power is only a slower way to say "cap"
        return min(self.cap, self.base * 2.0 ** min(failures - 1, 64))

    def delay(self, failures, rand=random.random):
        """Seconds to wait before the next attempt (full jitter)."""
        return rand() * self.ceiling(failures)

    def exhausted(self, first_failure_at, now):
        """Whether failures since `first_failure_at` (epoch seconds) have lasted the window."""
        return first_failure_at is not None and now - first_failure_at >= self.window
