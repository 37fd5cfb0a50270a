"""A Unicon spawn backend that speaks SSH in-process with paramiko: no ``ssh`` child.

Selected per connection with the Unicon setting ``BACKEND``; ``unicon_settings`` gives
that setting and the typed request the backend reads (``SshOptions`` and the device
layer's ``JumpHosts``), which Unicon hands to the spawn in its settings. Unicon's start
command is not read here: it is for Unicon's logs, and the pty backend's OpenSSH.

The password never reaches this module through the options: after the handshake and the
host-key check the spawn shows a ``Password:`` prompt on its read side, and Unicon's own
login dialog types the password from ``credentials``. A rejected password reads back as
OpenSSH's ``Permission denied`` line, then EOF. Failures before that point raise an
``SshBackendError`` of the failure's type out of ``connect()`` (``ssh.errors``).

Keys: identities from ``SshOptions.identity_file`` / ``IdentityFile`` are tried first;
when one is accepted there is no ``Password:`` prompt and Unicon sees the device's prompt
directly. The ssh_config file, jump hosts and host keys: ``ssh.target``, ``ssh.jumps``,
``ssh.known_hosts``. A jump host logs in with its ``IdentityFile`` keys, then with a
password read from the environment variable named by ``PyatsPasswordEnv`` (ssh_config)
or ``SshOptions.jump_password_env``; the device password is never sent to a jump host.

Legacy algorithms (only names of ``service.domain.legacy_ssh``) are added to the
device's transport, not to its jump hosts' (``ssh.legacy``); CBC ciphers not named are
off, as in OpenSSH. A device and this client with no algorithm in common fail with
OpenSSH's "no matching ... found. Their offer: ...". ``PubkeyAcceptedAlgorithms`` has
no equivalent: RSA identities sign with SHA-2 only.

Nothing is sent that Unicon did not send: no keepalives, no commands of our own.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from dataclasses import dataclass
from typing import Any

import paramiko
from unicon.core.errors import EOF
from unicon.eal.backend.spawn import Spawn as UniconSpawn

from service.device.device_text import BULK, BULK_WAIT, READ_AHEAD, DeviceText
from service.device.ssh import connect
from service.device.ssh.errors import SshOptionsError
from service.device.ssh.jumps import JumpHosts, JumpSession
from service.device.ssh.options import SshOptions
from service.device.ssh.target import SshTarget, resolve

__all__ = ["REQUEST_SETTING", "Spawn", "SpawnRequest", "open_transport", "unicon_settings"]

TERMINAL = ("vt100", 80, 24)  # what Unicon's pty gives the ssh child
PASSWORD_PROMPT = b"Password: "
REQUEST_SETTING = "PYATS_SSH_REQUEST"  # the Unicon setting that carries a connection's ``SpawnRequest``


@dataclass(frozen=True, slots=True)
class SpawnRequest:
    """What one connection's spawn needs: the typed options, and the jump sessions it may share."""

    options: SshOptions
    jump_hosts: JumpHosts


def unicon_settings(options: SshOptions, jump_hosts: JumpHosts) -> dict[str, Any]:
    """The Unicon settings that select this backend for one connection and hand it its request."""
    return {"BACKEND": __name__, REQUEST_SETTING: SpawnRequest(options, jump_hosts)}


def open_transport(target: SshTarget, jump_hosts: JumpHosts) -> tuple[Any, list[JumpSession]]:
    """The device's transport, host key checked, not yet authenticated; and the jump sessions it holds."""
    if not target.jumps:
        return connect.handshake(target, connect.tcp_connect(target)), []
    held = jump_hosts.acquire(target.jumps)
    try:
        return connect.handshake(target, jump_hosts.forward(held[-1], target)), held
    except BaseException:
        jump_hosts.release(held)
        raise


def _request(settings: Any) -> SpawnRequest:
    request = getattr(settings, REQUEST_SETTING, None)
    if not isinstance(request, SpawnRequest):
        raise SshOptionsError(
            f"the paramiko backend reads its options from the Unicon setting {REQUEST_SETTING} "
            "(see unicon_settings), not from the start command"
        )
    return request


class Spawn(UniconSpawn):  # type: ignore[misc]  # Unicon is untyped
    """One SSH shell session as Unicon sees it: bytes in, bytes out, a prompt to answer first."""

    def __init__(self, spawn_command: str, *args: Any, **kwargs: Any) -> None:
        # Unicon owns this signature (target, hostname, settings, logger, device, ...): pass it through
        super().__init__(spawn_command, *args, **kwargs)
        # no ``fd`` or ``pid`` attributes on purpose: with them, Unicon's disconnect takes its
        # pty path and never calls close(), leaving the SSH session open
        request = _request(kwargs.get("settings", getattr(self, "settings", None)))
        self._jump_hosts = request.jump_hosts
        self._target = resolve(request.options)
        self.device_text = DeviceText()
        self._lock = threading.Lock()
        self._pending = bytearray()
        self._typed: list[str] = []
        self._channel: Any = None
        self._poll: Any = None
        self._wake: tuple[int, int] | None = None
        self._closed = False
        self._transport: Any = None
        self._jumps: list[JumpSession] = []
        self._transport, self._jumps = open_transport(self._target, self._jump_hosts)
        if self._login_with_key():
            self._open_shell()  # no password prompt: Unicon sees the device's own prompt first
        else:
            self._pending += PASSWORD_PROMPT

    # -- Unicon's backend contract ------------------------------------------------

    def _read(self, size: int) -> bytes:
        if self._pending:
            data = bytes(self._pending[:size])
            del self._pending[:size]
            return data
        channel = self._channel
        if channel is not None and channel.recv_ready():
            # everything already received, up to READ_AHEAD (see device_text)
            chunks = [bytes(channel.recv(size))]
            total = len(chunks[0])
            while (
                chunks[-1]
                and total < READ_AHEAD
                and (channel.recv_ready() or (total >= BULK and self.is_readable(BULK_WAIT) and channel.recv_ready()))
            ):
                chunks.append(bytes(channel.recv(READ_AHEAD - total)))
                total += len(chunks[-1])
            data = b"".join(chunks)
            if data:
                return self.device_text.feed(data)
        if self._closed or (channel is not None and (channel.closed or channel.eof_received)):
            self._close_and_raise_eof()
        return b""  # nothing yet: the shell is still waiting for the password

    def _send(self, command: str, *args: Any, **kwargs: Any) -> None:
        if self._closed:
            raise EOF("Not writable. Connection closed or not available")
        if self._channel is None:
            self._type_password(command)
            return
        try:
            self._channel.sendall(command.encode("utf-8"))
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self.close()
            raise EOF("Not writable. Connection closed or not available") from exc

    def is_readable(self, timeout: float | None = 0.01) -> bool:
        if self._pending or self._closed:
            return True
        if self._poll is None:
            # before the shell opens, only our own prompt can be read, and it is already buffered
            if timeout:
                time.sleep(timeout)
            return bool(self._pending)
        return bool(self._poll.poll(None if timeout is None else max(0, int(timeout * 1000))))

    def is_writable(self, timeout: float | None = 0.01) -> bool:
        return not self._closed and self._transport is not None and self._transport.is_active()

    def is_alive(self) -> bool:
        """Cheap: no I/O, only paramiko's own view of the channel and the connection."""
        if self._closed or not self._transport.is_active():
            return False
        channel = self._channel
        return channel is None or not (channel.closed or channel.eof_received)

    def is_closed(self) -> bool:
        return not self.is_alive()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        wake, self._wake = self._wake, None
        if wake is not None:
            with contextlib.suppress(OSError):
                os.write(wake[1], b"x")
            for fd in wake:
                with contextlib.suppress(OSError):
                    os.close(fd)
        if self._channel is not None:
            self._channel.close()
        if self._transport is not None:
            self._transport.close()
        jumps, self._jumps = self._jumps, []
        self._jump_hosts.release(jumps)

    def __str__(self) -> str:
        return f"spawn: {self.spawn_command}, backend: paramiko, id: {id(self)}"

    __repr__ = __str__

    # -- login ---------------------------------------------------------------------

    def _login_with_key(self) -> bool:
        """Public key authentication with the identities given; False: the password prompt comes next."""
        try:
            return connect.auth_keys(self._transport, self._target)
        except (paramiko.SSHException, OSError, EOFError):
            return False  # the password attempt that follows reports the closed connection

    def _type_password(self, typed: str) -> None:
        """Collect what Unicon types at our ``Password:`` prompt; a full line is one attempt."""
        self._typed.append(typed)
        line = "".join(self._typed)
        if "\r" not in line and "\n" not in line:
            return
        self._typed.clear()
        password = line.replace("\r\n", "\r").replace("\n", "\r").partition("\r")[0]
        self._pending += b"\r\n"  # the newline a terminal echoes after a hidden entry
        try:
            self._transport.auth_password(self._target.username, password, fallback=True)
        except paramiko.AuthenticationException:
            self._pending += (
                f"{self._target.username}@{self._target.host}: "
                "Permission denied (password,keyboard-interactive).\r\n".encode()
            )
            self.close()
            return
        except (paramiko.SSHException, OSError, EOFError):
            self._pending += f"Connection closed by {self._target.host} port {self._target.port}\r\n".encode()
            self.close()
            return
        self._open_shell()

    def _open_shell(self) -> None:
        term, width, height = TERMINAL
        try:
            channel = self._transport.open_session(timeout=self._target.connect_timeout)
            channel.get_pty(term=term, width=width, height=height)
            channel.invoke_shell()
        except (paramiko.SSHException, OSError, EOFError):
            self._pending += f"Connection closed by {self._target.host} port {self._target.port}\r\n".encode()
            self.close()
            return
        poll = select.poll()
        poll.register(channel.fileno(), select.POLLIN)
        # closing the channel from our side does not wake a thread waiting in poll(): a pipe
        # does, so a session closed at shutdown or by the watchdog frees its worker at once
        self._wake = os.pipe()
        poll.register(self._wake[0], select.POLLIN)
        self._channel, self._poll = channel, poll

    def _close_and_raise_eof(self) -> None:
        self.close()
        raise EOF("Unable to read. Connection closed or not available")
