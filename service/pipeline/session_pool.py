"""Warm device sessions: reuse a logged-in session for the next request to the same device.

A session is keyed by host, port, username, OS and a digest of every secret, so it is
never reused across different credentials. Idle sessions close after a TTL, on error,
on shutdown, and when the cap is reached (least recently used first). Sessions also
hold a device's VTY line: when a device is at its session limit, idle sessions of other
credentials on it are closed to make room.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from loguru import logger

from service.domain.models import DeviceOS, DeviceTarget
from service.pipeline.ports import DeviceSession, DeviceSessionFactory


@dataclass(frozen=True, slots=True)
class SessionKey:
    hostname: str
    port: int
    username: str
    os: DeviceOS
    secrets: str

    @classmethod
    def of(cls, target: DeviceTarget) -> SessionKey:
        digest = hashlib.sha256(target.password.fingerprint().encode())
        digest.update(target.enable_password.fingerprint().encode() if target.enable_password else b"-")
        return cls(target.hostname, target.port, target.username, target.os, digest.hexdigest())

    @property
    def device(self) -> tuple[str, int]:
        return (self.hostname, self.port)


@dataclass(slots=True)
class _Idle:
    session: DeviceSession
    since: float


class SessionPool:
    """Thread-safe: workers acquire and release from many threads at once."""

    def __init__(
        self,
        factory: DeviceSessionFactory,
        idle_ttl: float,
        max_idle: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._factory = factory
        self._ttl = idle_ttl
        self._max_idle = max_idle
        self._clock = clock
        self._idle: OrderedDict[SessionKey, list[_Idle]] = OrderedDict()
        self._count = 0  # sessions in _idle, kept as they come and go: a device worker reads it per result
        self._lock = threading.Lock()
        self.logins = 0
        self.reuses = 0

    @property
    def enabled(self) -> bool:
        return self._ttl > 0 and self._max_idle > 0

    def idle_count(self) -> int:
        with self._lock:
            return self._count

    def acquire(self, target: DeviceTarget, connect_timeout: float) -> tuple[DeviceSession, bool]:
        """A live warm session for exactly these credentials, else a new login; ``(session, reused)``."""
        key = SessionKey.of(target)
        stale: list[DeviceSession] = []
        found: DeviceSession | None = None
        with self._lock:
            entries = self._idle.get(key, [])
            while entries and found is None:
                entry = entries.pop()
                self._count -= 1
                if self._clock() - entry.since <= self._ttl and entry.session.is_alive():
                    found = entry.session
                else:
                    stale.append(entry.session)
            if not entries:
                self._idle.pop(key, None)
            if found is None:
                # the device's VTY lines: free the ones idle under other credentials
                for other in [k for k in self._idle if k.device == key.device]:
                    freed = self._idle.pop(other)
                    self._count -= len(freed)
                    stale.extend(entry.session for entry in freed)
        for session in stale:
            session.close()
        if found is not None:
            self.reuses += 1
            return found, True
        return self.acquire_fresh(target, connect_timeout), False

    def acquire_fresh(self, target: DeviceTarget, connect_timeout: float) -> DeviceSession:
        """A new login, bypassing warm sessions (after a warm one turned out dead)."""
        session = self._factory.open(target, connect_timeout)
        self.logins += 1
        return session

    def has_warm(self, target: DeviceTarget) -> bool:
        with self._lock:
            return bool(self._idle.get(SessionKey.of(target)))

    def release(self, target: DeviceTarget, session: DeviceSession, healthy: bool) -> None:
        """Keep a healthy session warm, or close it."""
        if not (healthy and self.enabled):
            session.close()
            return
        evicted: list[DeviceSession] = []
        key = SessionKey.of(target)
        with self._lock:
            self._idle.setdefault(key, []).append(_Idle(session, self._clock()))
            self._count += 1
            self._idle.move_to_end(key)
            while self._count > self._max_idle:
                oldest_key = next(iter(self._idle))
                entries = self._idle[oldest_key]
                evicted.append(entries.pop(0).session)
                self._count -= 1
                if not entries:
                    del self._idle[oldest_key]
        for old in evicted:
            old.close()

    def sweep(self) -> int:
        """Close sessions idle longer than the TTL; return how many."""
        expired: list[_Idle] = []
        now = self._clock()
        with self._lock:
            for key in list(self._idle):
                keep: list[_Idle] = []
                for entry in self._idle[key]:
                    (expired if now - entry.since > self._ttl else keep).append(entry)
                if keep:
                    self._idle[key] = keep
                else:
                    del self._idle[key]
            self._count -= len(expired)
        for entry in expired:
            entry.session.close()
        if expired:
            logger.debug("closed {} idle session(s)", len(expired))
        return len(expired)

    def close_devices(self, unwanted: Callable[[str, int], bool]) -> int:
        """Close the idle sessions of every device (hostname, port) ``unwanted`` names: a device
        worker lets go of the devices whose partitions moved to another worker, so the device
        does not hold a VTY line for a session nobody will reuse."""
        with self._lock:
            keys = [key for key in self._idle if unwanted(key.hostname, key.port)]
            sessions = [entry.session for key in keys for entry in self._idle.pop(key)]
            self._count -= len(sessions)
        for session in sessions:
            session.close()
        return len(sessions)

    def close_all(self) -> None:
        with self._lock:
            sessions = [entry.session for entries in self._idle.values() for entry in entries]
            self._idle.clear()
            self._count = 0
        for session in sessions:
            session.close()
