"""Rate limits: requests and devices per requester and endpoint, and new SSH logins overall.

Limiters come from aiolimiter (leaky buckets). A request costs one request slot plus
one device slot per device, so a 500-device request weighs more than a 1-device one.
The registry of limiters is bounded and evicts the least recently used requester, so a
flood of new requester names cannot grow memory without limit. A refused request waits
for nothing and touches no device.
"""

from __future__ import annotations

from collections import OrderedDict

from aiolimiter import AsyncLimiter

from service.contract.errors import ErrorCode, PolicyError
from service.domain.models import Endpoint
from service.domain.requester_policy import RateRule


class _Buckets:
    __slots__ = ("devices", "requests")

    def __init__(self, rule: RateRule) -> None:
        self.requests = AsyncLimiter(rule.requests, rule.period) if rule.requests > 0 else None
        self.devices = AsyncLimiter(rule.devices, rule.period) if rule.devices > 0 else None


class RequesterLimiter:
    def __init__(self, max_requesters: int = 10_000) -> None:
        self._max = max_requesters
        self._buckets: OrderedDict[tuple[Endpoint, str, RateRule], _Buckets] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    async def admit(self, endpoint: Endpoint, requester: str, devices: int, rule: RateRule) -> None:
        """Take the request's slots, or raise ``rate_limited`` with ``retry_after`` at once."""
        if rule.requests <= 0 and rule.devices <= 0:
            return
        key = (endpoint, requester, rule)
        buckets = self._buckets.get(key)
        if buckets is None:
            buckets = self._buckets[key] = _Buckets(rule)
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(key)
        if buckets.devices is not None and devices > rule.devices:
            raise PolicyError(
                ErrorCode.RATE_LIMITED,
                f"{devices} devices exceed requester {requester!r}'s budget of {rule.devices} per {rule.period:g}s; "
                "split the request",
                {"rule": "rate.devices", "limit": rule.devices, "period": rule.period, "retry_after": None},
            )
        refusals = []
        if buckets.requests is not None and not buckets.requests.has_capacity(1):
            refusals.append(("rate.requests", rule.requests, rule.period / rule.requests))
        if buckets.devices is not None and not buckets.devices.has_capacity(devices):
            refusals.append(("rate.devices", rule.devices, rule.period / rule.devices * devices))
        if refusals:
            name, limit, retry_after = refusals[0]
            raise PolicyError(
                ErrorCode.RATE_LIMITED,
                f"requester {requester!r} is over its {endpoint.value} rate ({limit} {name.split('.')[1]} per "
                f"{rule.period:g}s); retry after {retry_after:.2f}s",
                {"rule": name, "limit": limit, "period": rule.period, "retry_after": round(retry_after, 3)},
            )
        if buckets.requests is not None:
            await buckets.requests.acquire(1)
        if buckets.devices is not None:
            await buckets.devices.acquire(devices)


class LoginLimiter:
    """Paces new SSH logins across all requests, to spare the devices' AAA servers."""

    def __init__(self, per_second: float) -> None:
        self._limiter = AsyncLimiter(per_second, 1.0) if per_second > 0 else None

    async def wait(self) -> None:
        if self._limiter is not None:
            await self._limiter.acquire()
