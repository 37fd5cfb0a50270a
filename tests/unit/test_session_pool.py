from __future__ import annotations

import random
from typing import Any

import pytest

from service.domain.models import DeviceOS, DeviceTarget, Secret
from service.pipeline.session_pool import SessionKey, SessionPool
from tests.unit.fakes import FakeSessionFactory

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def target(host: str = "r1", password: str = "pw", enable: str | None = None, port: int = 22) -> DeviceTarget:
    return DeviceTarget(host, port, DeviceOS.IOSXE, "admin", Secret(password), Secret(enable) if enable else None)


def test_a_released_session_is_reused_for_the_same_credentials() -> None:
    factory = FakeSessionFactory()
    pool = SessionPool(factory, idle_ttl=60, max_idle=10)
    first, reused = pool.acquire(target(), 5)
    assert not reused
    pool.release(target(), first, healthy=True)
    second, reused = pool.acquire(target(), 5)
    assert reused and second is first
    assert (pool.logins, pool.reuses) == (1, 1)


def test_never_reused_across_credentials_and_the_old_line_is_freed() -> None:
    factory = FakeSessionFactory()
    pool = SessionPool(factory, idle_ttl=60, max_idle=10)
    good, _ = pool.acquire(target(password="a"), 5)
    pool.release(target(password="a"), good, healthy=True)
    other, reused = pool.acquire(target(password="b"), 5)
    assert not reused and other is not good
    assert good.closed  # the device's line held under other credentials was released
    _, reused = pool.acquire(target(password="b", enable="e"), 5)
    assert not reused


def test_key_holds_no_secret() -> None:
    key = SessionKey.of(target(password="pw-canary", enable="en-canary"))
    assert "canary" not in repr(key)
    assert key != SessionKey.of(target(password="pw-canary", enable="other"))


def test_unhealthy_and_dead_sessions_are_not_reused() -> None:
    factory = FakeSessionFactory()
    pool = SessionPool(factory, idle_ttl=60, max_idle=10)
    session, _ = pool.acquire(target(), 5)
    pool.release(target(), session, healthy=False)
    assert session.closed and pool.idle_count() == 0
    session, _ = pool.acquire(target(), 5)
    pool.release(target(), session, healthy=True)
    session.alive = False  # the device dropped it while idle
    fresh, reused = pool.acquire(target(), 5)
    assert not reused and session.closed and fresh is not session


def test_idle_ttl_and_sweep() -> None:
    clock = Clock()
    factory = FakeSessionFactory()
    pool = SessionPool(factory, idle_ttl=60, max_idle=10, clock=clock)
    session, _ = pool.acquire(target(), 5)
    pool.release(target(), session, healthy=True)
    clock.now = 59
    assert pool.sweep() == 0
    clock.now = 61
    assert pool.sweep() == 1
    assert session.closed and pool.idle_count() == 0


def test_expired_session_is_not_reused_even_before_a_sweep() -> None:
    clock = Clock()
    pool = SessionPool(FakeSessionFactory(), idle_ttl=10, max_idle=10, clock=clock)
    session, _ = pool.acquire(target(), 5)
    pool.release(target(), session, healthy=True)
    clock.now = 11
    _, reused = pool.acquire(target(), 5)
    assert not reused and session.closed


def test_cap_evicts_the_least_recently_used() -> None:
    pool = SessionPool(FakeSessionFactory(), idle_ttl=60, max_idle=2)
    sessions = []
    for host in ("a", "b", "c"):
        session, _ = pool.acquire(target(host), 5)
        sessions.append(session)
    for host, session in zip(("a", "b", "c"), sessions, strict=True):
        pool.release(target(host), session, healthy=True)
    assert pool.idle_count() == 2
    assert sessions[0].closed and not sessions[1].closed and not sessions[2].closed


def test_a_device_released_again_counts_as_recently_used() -> None:
    pool = SessionPool(FakeSessionFactory(), idle_ttl=60, max_idle=2)
    a1, _ = pool.acquire(target("a"), 5)
    a2, _ = pool.acquire(target("a"), 5)
    b, _ = pool.acquire(target("b"), 5)
    pool.release(target("a"), a1, healthy=True)
    pool.release(target("b"), b, healthy=True)
    pool.release(target("a"), a2, healthy=True)  # "a" is used again after "b": "b" is now the oldest
    assert b.closed and not a1.closed and not a2.closed


def test_close_devices_closes_only_the_named_devices() -> None:
    pool = SessionPool(FakeSessionFactory(), idle_ttl=60, max_idle=10)
    names = [("r1", 22), ("r1", 2222), ("r2", 22)]
    sessions = {}
    for host, port in names:
        sessions[host, port], _ = pool.acquire(target(host, port=port), 5)
    for host, port in names:
        pool.release(target(host, port=port), sessions[host, port], healthy=True)
    assert pool.close_devices(lambda host, port: (host, port) == ("r1", 2222)) == 1
    assert [sessions[n].closed for n in names] == [False, True, False]
    assert pool.idle_count() == 2


def test_ttl_zero_disables_warm_sessions() -> None:
    pool = SessionPool(FakeSessionFactory(), idle_ttl=0, max_idle=10)
    session, _ = pool.acquire(target(), 5)
    pool.release(target(), session, healthy=True)
    assert session.closed and not pool.enabled


def test_close_all() -> None:
    pool = SessionPool(FakeSessionFactory(), idle_ttl=60, max_idle=10)
    session, _ = pool.acquire(target(), 5)
    pool.release(target(), session, healthy=True)
    pool.close_all()
    assert session.closed and pool.idle_count() == 0


def test_idle_count_is_exact_through_every_way_a_session_comes_and_goes() -> None:
    """The count is kept as sessions come and go (a device worker reads it per result): it must
    always be the sessions released healthy that are neither taken again nor closed."""
    clock = Clock()
    pool = SessionPool(FakeSessionFactory(), idle_ttl=30, max_idle=6, clock=clock)
    rng = random.Random(16)
    idle: set[Any] = set()
    hosts = [f"r{n}" for n in range(8)]
    for _ in range(2000):
        step = rng.random()
        host = rng.choice(hosts)
        clock.now += rng.random() * 3
        if step < 0.6:
            device = target(host, password=rng.choice(("a", "b")))
            session, _ = pool.acquire(device, 5)
            idle.discard(session)
            pool.release(device, session, healthy=rng.random() < 0.9)
            if not session.closed:
                idle.add(session)
        elif step < 0.8:
            pool.sweep()
        elif step < 0.97:
            pool.close_devices(lambda name, _port, host=host: name == host)
        else:
            pool.close_all()
        idle = {session for session in idle if not session.closed}
        assert pool.idle_count() == len(idle)
