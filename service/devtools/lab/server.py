"""asyncssh listeners: one per fake device, all in one process and one event loop.

Each device gets its own port so clients address devices the way they address
real ones (host + port).  ``LabServer`` owns the listeners and the log; the CLI
and the tests start and stop it.

Sessions are counted per device: an SSH connection counts as open from its
successful authentication until it closes (one connection is one VTY line).
``LabServer.session_stats[name]`` holds the open count, the peak, the total and
the refusals, and every change is logged as a session event (see
``service.devtools.lab.log``).  A device with ``max_sessions`` N refuses the N+1th
connection after authentication: its session gets ``NO_FREE_VTY`` and exit
status 1, then the connection closes (after ``REFUSED_GRACE`` seconds if the
client never opens a session).

A device with ``bastion`` set is a jump host instead: it authenticates like a
device (password or ``authorized_keys``), refuses shells, and forwards
``direct-tcpip`` channels to loopback addresses only, logging each request as a
``forward`` event.

A device with ``mock`` set serves each interactive session with Cisco's Unicon
mock device (``service.devtools.lab.mock``) instead of the lab's own shell; auth, VTY
accounting and the line log stay the lab's.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import socket
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any

import asyncssh

from service.devtools.lab.log import CommandLog, enters_config_mode
from service.devtools.lab.mock import MockShell, check_mock
from service.devtools.lab.outputs import OutputStore
from service.devtools.lab.shell import DeviceShell
from service.devtools.lab.spec import DeviceSpec

_PORT_ATTEMPTS = 50
NO_FREE_VTY = "% All VTY lines are busy; connection refused by {hostname} (max_sessions {limit})"
REFUSED_GRACE = 2.0
MOCK_NO_EXEC = "% Unicon mock devices serve interactive shells only"


@dataclass
class SessionStats:
    """One device's SSH sessions: open now, most at once, admitted and refused so far."""

    open: int = 0
    peak: int = 0
    total: int = 0
    refused: int = 0
    starting: int = 0  # connections not yet authenticated (max_startups)
    dropped: int = 0  # closed at once: max_startups reached


class SessionTracker:
    """Counts sessions per device, enforces ``max_sessions`` and logs every change."""

    def __init__(self, log: CommandLog) -> None:
        self._log = log
        self.stats: dict[str, SessionStats] = {}

    def admit(self, device: DeviceSpec) -> bool:
        """Open a session unless the device's VTY lines are all in use."""
        stats = self.stats.setdefault(device.name, SessionStats())
        if device.max_sessions and stats.open >= device.max_sessions:
            stats.refused += 1
            self._log.event(event="session_refused", device=device.name, port=device.port, open_sessions=stats.open)
            return False
        stats.open += 1
        stats.total += 1
        stats.peak = max(stats.peak, stats.open)
        self._log.event(event="session_open", device=device.name, port=device.port, open_sessions=stats.open)
        return True

    def start(self, device: DeviceSpec) -> bool:
        """A new connection before authentication, unless ``max_startups`` are already starting."""
        stats = self.stats.setdefault(device.name, SessionStats())
        full = bool(device.max_startups) and stats.starting >= device.max_startups
        stats.dropped += full
        stats.starting += not full
        if full:
            self._log.event(event="startup_dropped", device=device.name, port=device.port, open_sessions=stats.open)
        return not full

    def started(self, device: DeviceSpec) -> None:
        """A connection counted by ``start`` authenticated or went away."""
        stats = self.stats.setdefault(device.name, SessionStats())
        stats.starting = max(0, stats.starting - 1)

    def release(self, device: DeviceSpec) -> None:
        """Close an admitted session."""
        stats = self.stats.setdefault(device.name, SessionStats())
        stats.open = max(0, stats.open - 1)
        self._log.event(event="session_close", device=device.name, port=device.port, open_sessions=stats.open)


def load_host_key(path: Path | None) -> asyncssh.SSHKey:
    """Reuse the key at ``path`` (creating it once), or make an ephemeral one.

    A stable key lets a demo keep its known_hosts between runs.
    """
    if path is not None and path.exists():
        return asyncssh.read_private_key(str(path))
    key = asyncssh.generate_private_key("ssh-ed25519")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        key.write_private_key(str(path))
        path.chmod(0o600)
    return key


class ProcessChannel:
    """Adapts an asyncssh server process to the shell's ``Channel``."""

    def __init__(self, process: asyncssh.SSHServerProcess[str]) -> None:
        self._process = process

    def write(self, data: str) -> None:
        self._process.stdout.write(data)

    async def drain(self) -> None:
        await self._process.stdout.drain()

    async def read(self) -> str:
        while True:
            try:
                return await self._process.stdin.read(4096)
            except (asyncssh.TerminalSizeChanged, asyncssh.BreakReceived, asyncssh.SignalReceived):
                continue


class DeviceAuth(asyncssh.SSHServer):
    """Password and keyboard-interactive auth against one device's credentials.

    Both methods are offered by default because OpenSSH (under Unicon) and paramiko
    pick differently; ``auth_methods`` narrows them (an AAA-backed device may offer
    keyboard-interactive only); ``auth_failure`` makes every attempt fail.  It also tracks the
    connection as a session (``SessionTracker``): ``refused`` is set when the
    device had no free VTY line at authentication.
    """

    def __init__(self, device: DeviceSpec, tracker: SessionTracker | None = None) -> None:
        self._device = device
        self._tracker = tracker
        self._keys = [asyncssh.import_public_key(line) for line in device.authorized_keys]
        self._conn: asyncssh.SSHServerConnection | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self.admitted = False
        self.refused = False
        self._starting = False

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        if self._tracker is None:
            return
        self._starting = self._tracker.start(self._device)
        if not self._starting:
            conn.abort()  # before the version exchange: the client reads EOF where the banner would be

    def _end_startup(self) -> None:
        if self._starting and self._tracker is not None:
            self._starting = False
            self._tracker.started(self._device)

    def auth_completed(self) -> None:
        self._end_startup()
        if self._tracker is None:
            return
        self.admitted = self._tracker.admit(self._device)
        self.refused = not self.admitted
        if self.refused and self._conn is not None:
            self._close_timer = asyncio.get_running_loop().call_later(REFUSED_GRACE, self._conn.close)

    def connection_lost(self, exc: Exception | None) -> None:
        self._end_startup()
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        if self.admitted and self._tracker is not None:
            self.admitted = False
            self._tracker.release(self._device)

    def begin_auth(self, username: str) -> bool:
        if self._device.login_banner and self._conn is not None:  # banner login: shown before the password
            self._conn.send_auth_banner(self._device.login_banner.replace("\n", "\r\n") + "\r\n")
        return True

    def _check(self, username: str, password: str) -> bool:
        if self._device.auth_failure:
            return False
        user_ok = hmac.compare_digest(username.encode(), self._device.username.encode())
        password_ok = hmac.compare_digest(password.encode(), self._device.password.encode())
        return user_ok and password_ok

    def password_auth_supported(self) -> bool:
        return "password" in self._device.auth_methods

    def validate_password(self, username: str, password: str) -> bool:
        return self._check(username, password)

    def public_key_auth_supported(self) -> bool:
        return bool(self._keys)

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        if self._device.auth_failure:
            return False
        user_ok = hmac.compare_digest(username.encode(), self._device.username.encode())
        return user_ok and any(key.public_data == known.public_data for known in self._keys)

    def kbdint_auth_supported(self) -> bool:
        return "keyboard-interactive" in self._device.auth_methods

    def get_kbdint_challenge(
        self, username: str, lang: str, submethods: str
    ) -> tuple[str, str, str, list[tuple[str, bool]]]:
        return "", "", "", [("Password: ", False)]

    def validate_kbdint_response(self, username: str, responses: Sequence[str]) -> bool:
        return len(responses) == 1 and self._check(username, responses[0])


LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


class BastionAuth(DeviceAuth):
    """A jump host: no shell (no session factory), ``direct-tcpip`` to loopback ports only."""

    def __init__(self, device: DeviceSpec, tracker: SessionTracker, log: CommandLog) -> None:
        super().__init__(device, tracker)
        self._log = log

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str, orig_port: int) -> bool:
        allowed = dest_host in LOOPBACK and not self.refused
        self._log.forward(
            bastion=self._device.name, port=self._device.port, dest_host=dest_host, dest_port=dest_port, allowed=allowed
        )
        return allowed


class LabServer:
    """All devices of a lab, listening; use as ``async with LabServer(...) as lab``."""

    def __init__(
        self,
        devices: Sequence[DeviceSpec],
        log_path: Path | None = None,
        host_key: asyncssh.SSHKey | None = None,
    ) -> None:
        self._requested = tuple(devices)
        self._log = CommandLog(log_path)
        self._tracker = SessionTracker(self._log)
        self._host_key = host_key or load_host_key(None)
        self._rsa_host_key: asyncssh.SSHKey | None = None  # made when a device offers RSA host key algorithms
        self._listeners: list[asyncssh.SSHAcceptor] = []
        self._sessions: set[asyncio.Task[None]] = set()
        self.devices: tuple[DeviceSpec, ...] = ()

    @property
    def log_path(self) -> Path | None:
        return self._log.path

    @property
    def session_stats(self) -> dict[str, SessionStats]:
        """Sessions per device name (only devices that saw a login are present)."""
        return self._tracker.stats

    async def start(self) -> tuple[DeviceSpec, ...]:
        """Open every listener; devices with port 0 get one consecutive free range."""
        fixed = [d for d in self._requested if d.port]
        for device in fixed:
            self._listeners.append(await self._listen(device))
        floating = [d for d in self._requested if not d.port]
        placed = await self._listen_consecutive(floating) if floating else {}
        self.devices = tuple(placed.get(d.name, d) for d in self._requested)
        return self.devices

    async def _listen_consecutive(self, devices: list[DeviceSpec]) -> dict[str, DeviceSpec]:
        for _ in range(_PORT_ATTEMPTS):
            base = _free_port(devices[0].host)
            if base + len(devices) > 65536:
                continue
            opened: list[asyncssh.SSHAcceptor] = []
            placed: dict[str, DeviceSpec] = {}
            try:
                for offset, device in enumerate(devices):
                    moved = replace(device, port=base + offset)
                    opened.append(await self._listen(moved))
                    placed[device.name] = moved
            except OSError:
                for listener in opened:
                    listener.close()
                continue
            self._listeners.extend(opened)
            return placed
        raise OSError(f"no {len(devices)} consecutive free ports found")

    def _algorithm_options(self, device: DeviceSpec) -> dict[str, Any]:
        """``create_server`` arguments for the device's host keys and algorithm lists."""
        kex, host_key_algs, ciphers = device.ssh_algorithms
        options: dict[str, Any] = {"server_host_keys": [self._host_key]}
        if host_key_algs:
            if self._rsa_host_key is None and any("rsa" in name for name in host_key_algs):
                self._rsa_host_key = asyncssh.generate_private_key("ssh-rsa", key_size=2048)
            wanted = [name.encode() for name in host_key_algs]
            keypairs = []
            for key in (self._rsa_host_key, self._host_key):
                if key is None:
                    continue
                keypair = asyncssh.load_keypairs([key])[0]
                # a key offers only the algorithms the device names (an RSA key: not rsa-sha2-* too)
                keypair.host_key_algorithms = [alg for alg in keypair.host_key_algorithms if alg in wanted]
                if keypair.host_key_algorithms:
                    keypairs.append(keypair)
            options["server_host_keys"] = keypairs
        if kex:
            options["kex_algs"] = list(kex)
        if ciphers:
            options["encryption_algs"] = list(ciphers)
        return options

    async def _listen(self, device: DeviceSpec) -> asyncssh.SSHAcceptor:
        if device.bastion:
            return await asyncssh.create_server(
                lambda: BastionAuth(device, self._tracker, self._log),
                device.host,
                device.port,
                **self._algorithm_options(device),
                keepalive_interval=0,
                login_timeout=30,
            )
        if device.mock is not None:
            check_mock(device.mock)  # fail at start-up, not at the first login
        store = OutputStore.for_device(device)

        async def serve(process: asyncssh.SSHServerProcess[str]) -> None:
            task = asyncio.current_task()
            connection = process.channel.get_connection()
            owner = connection.get_owner()
            if isinstance(owner, DeviceAuth) and owner.refused:
                await _refuse_session(process, device)
                connection.close()
                return
            if task is not None:
                self._sessions.add(task)
            try:
                await self._session(device, store, process)
            except (asyncssh.ConnectionLost, ConnectionError):
                pass
            finally:
                if task is not None:
                    self._sessions.discard(task)
                process.close()

        return await asyncssh.create_server(
            lambda: DeviceAuth(device, self._tracker),
            device.host,
            device.port,
            **self._algorithm_options(device),
            process_factory=serve,
            line_editor=False,
            encoding="utf-8",
            errors="surrogateescape",  # extra_outputs may carry bytes that are not UTF-8 (as \udcXX)
            keepalive_interval=0,
            login_timeout=30,
        )

    async def _session(self, device: DeviceSpec, store: OutputStore, process: asyncssh.SSHServerProcess[str]) -> None:
        """One SSH session: a shell, or one exec command; on a mock device, its mock (no exec)."""
        channel = ProcessChannel(process)
        if device.mock is None:
            shell = DeviceShell(device, store, channel, self._log)
            await (shell.run_command(process.command) if process.command else shell.run())
        elif process.command:
            self._log.record(
                device=device.name,
                port=device.port,
                mode="exec",
                line=process.command,
                config=enters_config_mode(process.command),
            )
            process.stdout.write(MOCK_NO_EXEC + "\r\n")
            process.exit(1)
        else:
            await MockShell(device, channel, self._log).run()

    async def close(self) -> None:
        """Stop listening, end open sessions, close the log."""
        for listener in self._listeners:
            listener.close()
        for listener in self._listeners:
            await listener.wait_closed()
        self._listeners.clear()
        for task in list(self._sessions):
            task.cancel()
        if self._sessions:
            await asyncio.gather(*self._sessions, return_exceptions=True)
        self._log.close()

    async def __aenter__(self) -> LabServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()


def _free_port(host: str) -> int:
    """A port the OS says is free now; the caller retries if it races."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


async def _refuse_session(process: asyncssh.SSHServerProcess[str], device: DeviceSpec) -> None:
    """Every VTY line is taken: say so as IOS does, and give the client a moment to read it."""
    process.stdout.write("\r\n" + NO_FREE_VTY.format(hostname=device.name, limit=device.max_sessions) + "\r\n")
    process.exit(1)
    with contextlib.suppress(TimeoutError, asyncssh.Error, OSError):
        await asyncio.wait_for(process.wait_closed(), REFUSED_GRACE)
