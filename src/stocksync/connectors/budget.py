"""A channel's request budget as a token bucket.

A bucket of `burst` tokens refills at `rate` tokens per second; each request takes one. Over
any interval of length w at most `burst + rate * w` requests are taken. When the channel says
"slow down" (HTTP 429 with Retry-After) the bucket is emptied and refills only from then on.
Time is passed in (seconds, monotonic), so the bucket is a pure value-holder."""

from __future__ import annotations

from dataclasses import dataclass


class BudgetError(ValueError):
    """A budget that cannot be honoured (rate or burst not positive)."""


@dataclass(slots=True)
class TokenBucket:
    rate: float  # tokens per second
    burst: float  # most tokens held at once
    tokens: float
    updated: float  # the time `tokens` was computed for; may lie in the future after a hold

    @classmethod
    def full(cls, rate: float, burst: float, now: float) -> TokenBucket:
        if rate <= 0 or burst < 1:
            raise BudgetError(
                f"a budget needs rate > 0 and burst >= 1 (got rate={rate}, burst={burst})"
            )
        return cls(rate=rate, burst=float(burst), tokens=float(burst), updated=now)

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def wait_time(self, now: float) -> float:
        """Seconds from `now` until one token is available (0 if one is)."""
        self._refill(now)
        if now < self.updated:  # held: nothing refills before `updated`
            return (self.updated - now) + max(0.0, 1.0 - self.tokens) / self.rate
        return max(0.0, (1.0 - self.tokens) / self.rate)

    def try_take(self, now: float) -> bool:
        self._refill(now)
        if now < self.updated or self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True

    def refund(self) -> None:
        """Give back a token taken for a request that was not made."""
        self.tokens = min(self.burst, self.tokens + 1.0)

    def hold(self, until: float) -> None:
        """The channel asked for a pause: no token before `until`, then refill from empty."""
        if until > self.updated:
            self.tokens = 0.0
            self.updated = until
