import time

import pytest

from service.errors import ErrorCode, PolicyError
from service.pipeline.rate_limit import LoginLimiter, RequesterLimiter

pytestmark = [pytest.mark.unit, pytest.mark.asyncio]


async def test_a_requester_over_its_rate_is_refused_with_retry_after() -> None:
    limiter = RequesterLimiter(max_rate=3, period=60)
    for _ in range(3):
        await limiter.admit("alice")
    with pytest.raises(PolicyError) as caught:
        await limiter.admit("alice")
    assert caught.value.code is ErrorCode.RATE_LIMITED
    assert caught.value.details["retry_after"] == 20
    await limiter.admit("bob")  # another requester is not affected


async def test_zero_rate_means_unlimited() -> None:
    limiter = RequesterLimiter(max_rate=0, period=1)
    for _ in range(100):
        await limiter.admit("alice")
    assert len(limiter) == 0


async def test_registry_is_bounded() -> None:
    limiter = RequesterLimiter(max_rate=5, period=60, max_requesters=100)
    for index in range(1000):
        await limiter.admit(f"r{index}")
    assert len(limiter) == 100


async def test_login_limiter_paces_logins() -> None:
    limiter = LoginLimiter(per_second=20)
    started = time.monotonic()
    for _ in range(30):
        await limiter.wait()
    assert time.monotonic() - started >= 0.4  # 20 burst, then 10 more at 20/s
