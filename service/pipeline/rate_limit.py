"""Rate limits: requests per requester, and new SSH logins across the service.

Limiters come from aiolimiter (leaky bucket). The per-requester registry is bounded
and evicts the least recently used requester, so a flood of new names cannot grow
memory without limit.
"""

from __future__ import annotations

from collections import OrderedDict

from aiolimiter import AsyncLimiter

from service.errors import ErrorCode, PolicyError


class RequesterLimiter:
    def __init__(self, max_rate: int, period: float, max_requesters: int = 10_000) -> None:
        self._rate = max_rate
        self._period = period
        self._max = max_requesters
        self._limiters: OrderedDict[str, AsyncLimiter] = OrderedDict()

    def __len__(self) -> int:
        return len(self._limiters)

    async def admit(self, requester: str) -> None:
        """Take one request slot for ``requester`` or raise ``rate_limited`` without waiting."""
        if self._rate <= 0:
            return
        limiter = self._limiters.get(requester)
        if limiter is None:
            limiter = self._limiters[requester] = AsyncLimiter(self._rate, self._period)
            if len(self._limiters) > self._max:
                self._limiters.popitem(last=False)
        self._limiters.move_to_end(requester)
        if not limiter.has_capacity():
            retry_after = round(self._period / self._rate, 3)
            raise PolicyError(
                ErrorCode.RATE_LIMITED,
                f"requester {requester!r} sent more than {self._rate} requests in {self._period:g}s; "
                f"retry after {retry_after:g}s",
                {"rule": "rate_limit", "retry_after": retry_after, "limit": self._rate, "period": self._period},
            )
        await limiter.acquire()


class LoginLimiter:
    """Paces new SSH logins across all requests, to spare the devices' AAA servers."""

    def __init__(self, per_second: float) -> None:
        self._limiter = AsyncLimiter(per_second, 1.0) if per_second > 0 else None

    async def wait(self) -> None:
        if self._limiter is not None:
            await self._limiter.acquire()
