import time
import tracemalloc

import pytest

from service.contract.errors import ErrorCode, PolicyError
from service.domain.models import Endpoint
from service.domain.requester_policy import RateRule
from service.pipeline.rate_limit import LoginLimiter, RequesterLimiter

pytestmark = [pytest.mark.unit, pytest.mark.asyncio]


async def test_a_requester_over_its_request_rate_is_refused_with_retry_after() -> None:
    limiter = RequesterLimiter()
    rule = RateRule(requests=3, devices=0, period=60)
    for _ in range(3):
        await limiter.admit(Endpoint.EXECUTE, "alice", 1, rule)
    with pytest.raises(PolicyError) as caught:
        await limiter.admit(Endpoint.EXECUTE, "alice", 1, rule)
    assert caught.value.code is ErrorCode.RATE_LIMITED
    assert caught.value.details["retry_after"] == 20
    assert caught.value.details["rule"] == "rate.requests"
    await limiter.admit(Endpoint.EXECUTE, "bob", 1, rule)  # another requester is not affected
    await limiter.admit(Endpoint.JOBS, "alice", 1, rule)  # nor another endpoint


async def test_devices_weigh_more_than_requests() -> None:
    limiter = RequesterLimiter()
    rule = RateRule(requests=100, devices=10, period=60)
    await limiter.admit(Endpoint.EXECUTE, "alice", 8, rule)
    with pytest.raises(PolicyError) as caught:
        await limiter.admit(Endpoint.EXECUTE, "alice", 5, rule)
    assert caught.value.details["rule"] == "rate.devices"
    await limiter.admit(Endpoint.EXECUTE, "alice", 2, rule)


async def test_a_request_bigger_than_the_whole_budget_is_told_to_split() -> None:
    limiter = RequesterLimiter()
    with pytest.raises(PolicyError) as caught:
        await limiter.admit(Endpoint.EXECUTE, "alice", 11, RateRule(requests=5, devices=10, period=60))
    assert "split the request" in caught.value.message


async def test_zero_means_unlimited() -> None:
    limiter = RequesterLimiter()
    for _ in range(100):
        await limiter.admit(Endpoint.EXECUTE, "alice", 1000, RateRule(0, 0, 1))
    assert len(limiter) == 0


async def test_the_registry_evicts_the_least_recently_seen_requester_not_an_active_one() -> None:
    limiter = RequesterLimiter(max_requesters=3)
    rule = RateRule(requests=1, devices=0, period=600)
    await limiter.admit(Endpoint.EXECUTE, "alice", 1, rule)
    for name in ("bob", "carol"):
        await limiter.admit(Endpoint.EXECUTE, name, 1, rule)
    with pytest.raises(PolicyError):
        await limiter.admit(Endpoint.EXECUTE, "alice", 1, rule)  # alice is the most recently seen now
    await limiter.admit(Endpoint.EXECUTE, "dave", 1, rule)  # evicts bob, the least recently seen
    with pytest.raises(PolicyError):
        await limiter.admit(Endpoint.EXECUTE, "alice", 1, rule)  # her bucket was kept: still over her rate
    await limiter.admit(Endpoint.EXECUTE, "bob", 1, rule)  # bob's was dropped: a fresh budget


async def test_registry_of_limiters_is_bounded_after_20000_names() -> None:
    limiter = RequesterLimiter(max_requesters=1000)
    rule = RateRule(requests=5, devices=50, period=60)
    tracemalloc.start()
    for index in range(2000):
        await limiter.admit(Endpoint.EXECUTE, f"warmup-{index}", 1, rule)
    baseline, _ = tracemalloc.get_traced_memory()
    for index in range(20_000):  # 20 times the bound: unbounded, the memory would grow about tenfold
        await limiter.admit(Endpoint.EXECUTE, f"flood-{index}", 1, rule)
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(limiter) == 1000
    print(f"limiter memory: {baseline / 1e6:.2f} MB after 2,000 names, {current / 1e6:.2f} MB after 22,000")
    assert current < baseline * 1.5


async def test_login_limiter_paces_logins() -> None:
    limiter = LoginLimiter(per_second=20)
    started = time.monotonic()
    for _ in range(30):
        await limiter.wait()
    assert time.monotonic() - started >= 0.4  # 20 burst, then 10 more at 20/s
