"""Shared jump host sessions: one authenticated transport per route, held by reference.

A ``JumpHosts`` belongs to whoever wires the device layer (the session factory makes one
and closes it in its ``close()``). Every device session behind the same jump host (and
user, and route) shares one transport; each device session is a ``direct-tcpip`` channel
through it, opened no faster than the jump host's login rate (``SshTarget.jump_rate``).
A session nobody holds is closed ``idle_seconds`` after the last device session ended.
Host keys are checked for jump hosts as for devices, on every use of a shared session.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from service.device.ssh import connect
from service.device.ssh.errors import SshConnectTimeoutError
from service.device.ssh.target import SshTarget

__all__ = ["JUMP_IDLE_SECONDS", "JumpHosts", "JumpSession", "Route"]

log = logging.getLogger(__name__)

JUMP_IDLE_SECONDS = 60.0  # a jump host session nobody uses is closed after this long

Route = tuple[tuple[str, int, str], ...]  # (host, port, user) of each hop up to this one


@dataclass(eq=False, slots=True)
class JumpSession:
    """One authenticated session with a jump host, shared by every device behind it."""

    route: Route
    target: SshTarget
    lock: threading.Lock = field(default_factory=threading.Lock)
    transport: Any = None
    refs: int = 0
    idle_timer: threading.Timer | None = None

    def close_transport(self) -> None:
        with self.lock:
            if self.transport is not None:
                self.transport.close()
                self.transport = None


class _TokenBucket:
    """``rate`` admissions per second, one at a time (burst 1); waiters are served in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0.0  # monotonic time of the next free slot

    def reserve(self, rate: float, max_wait: float | None) -> float | None:
        """Seconds to wait for a slot (the slot is taken), or None if that is longer than ``max_wait``."""
        if rate <= 0:
            return 0.0
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            wait = slot - now
            if max_wait is not None and wait > max_wait:
                return None
            self._next = slot + 1.0 / rate
            return wait


class JumpHosts:
    """The jump host sessions of one device layer, and each jump host's login rate."""

    def __init__(self, idle_seconds: float = JUMP_IDLE_SECONDS) -> None:
        self.idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._sessions: dict[Route, JumpSession] = {}
        self._buckets: dict[tuple[str, int], _TokenBucket] = {}

    def acquire(self, chain: tuple[SshTarget, ...]) -> list[JumpSession]:
        """Every hop of the chain, connected and held; the last one forwards to the device."""
        held: list[JumpSession] = []
        try:
            for position, hop in enumerate(chain):
                route = tuple((each.host, each.port, each.username) for each in chain[: position + 1])
                held.append(self._acquire_one(route, hop, held[-1] if held else None))
        except BaseException:
            self.release(held)
            raise
        return held

    def forward(self, jump: JumpSession, target: SshTarget) -> Any:
        """A channel to ``target`` through ``jump``, at the jump host's login rate."""
        self._admit(jump.target, target.connect_timeout)
        return connect.open_forward(jump.transport, jump.target, target)

    def release(self, sessions: list[JumpSession]) -> None:
        """Let go of sessions from ``acquire``; one nobody holds is closed after ``idle_seconds``."""
        for session in reversed(sessions):
            with self._lock:
                session.refs = max(0, session.refs - 1)
                if session.refs or self._sessions.get(session.route) is not session:
                    continue
                timer = threading.Timer(self.idle_seconds, self._close_if_idle, args=(session,))
                timer.daemon = True
                session.idle_timer = timer
            timer.start()

    def sessions(self) -> dict[Route, int]:
        """Open sessions by route, with how many device sessions hold each."""
        with self._lock:
            return {
                route: session.refs
                for route, session in self._sessions.items()
                if session.transport is not None and session.transport.is_active()
            }

    def close(self) -> None:
        """Close every session now (shutdown, tests); device sessions through them end."""
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
            for session in sessions:
                _cancel_idle_timer(session)
        for session in sessions:
            session.close_transport()

    def _acquire_one(self, route: Route, hop: SshTarget, through: JumpSession | None) -> JumpSession:
        """The shared session for ``route`` (the hop and the hops before it), opened if needed, held once more."""
        with self._lock:
            session = self._sessions.get(route)
            if session is None:
                session = self._sessions[route] = JumpSession(route, hop)
            session.refs += 1
            _cancel_idle_timer(session)
        try:
            with session.lock:
                self._connect(session, hop, through)
        except BaseException:
            self.release([session])
            raise
        return session

    def _connect(self, session: JumpSession, hop: SshTarget, through: JumpSession | None) -> None:
        """Reuse the session's live transport (its host key checked for this caller), or open a new one."""
        role = f"jump host {hop.username}@"
        transport = session.transport
        if transport is not None and transport.is_active() and transport.is_authenticated():
            connect.check_shared_host_key(hop, transport, role)
            return
        if transport is not None:
            transport.close()
            session.transport = None
        sock = self.forward(through, hop) if through is not None else connect.tcp_connect(hop)
        transport = connect.handshake(hop, sock, role)
        try:
            connect.auth_jump(transport, hop)
        except BaseException:
            transport.close()
            raise
        session.target, session.transport = hop, transport
        log.info("jump host session opened: %s@%s", hop.username, hop.known_hosts_name)

    def _admit(self, jump: SshTarget, max_wait: float | None) -> None:
        with self._lock:
            bucket = self._buckets.setdefault((jump.host, jump.port), _TokenBucket())
        wait = bucket.reserve(jump.jump_rate, max_wait)
        if wait is None:
            raise SshConnectTimeoutError(
                f"ssh: connect via jump host {jump.known_hosts_name}: Connection timed out "
                f"(waiting for the jump host's login rate of {jump.jump_rate:g}/s)"
            )
        if wait > 0:
            time.sleep(wait)

    def _close_if_idle(self, session: JumpSession) -> None:
        with self._lock:
            if session.refs or self._sessions.get(session.route) is not session:
                return
            del self._sessions[session.route]
            session.idle_timer = None
        session.close_transport()
        log.info("jump host session closed (idle): %s", session.route[-1])


def _cancel_idle_timer(session: JumpSession) -> None:
    if session.idle_timer is not None:
        session.idle_timer.cancel()
        session.idle_timer = None
