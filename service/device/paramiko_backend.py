"""A Unicon spawn backend that speaks SSH in-process with paramiko: no ``ssh`` child.

Selected per connection with the Unicon setting ``BACKEND`` set to this module's path;
Unicon imports the module and builds its ``Spawn`` from the same OpenSSH command line
the pty backend would run, so both backends take one ``start`` command.

The password never reaches this module through the command line: after the handshake
and the host-key check the spawn shows a ``Password:`` prompt on its read side, and
Unicon's own login dialog types the password from ``credentials``. A rejected password
reads back as OpenSSH's ``Permission denied`` line, then EOF. Failures before that
point raise an ``SshBackendError`` out of ``connect()``, worded as OpenSSH words them
so that text classifiers written for the pty backend keep working.

Nothing is sent that Unicon did not send: no keepalives, no commands of our own.
"""

from __future__ import annotations

import getpass
import os
import select
import shlex
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko
from unicon.core.errors import EOF
from unicon.eal.backend.spawn import Spawn as UniconSpawn

__all__ = [
    "Spawn",
    "SshBackendError",
    "SshCommandLineError",
    "SshConnectRefusedError",
    "SshConnectTimeoutError",
    "SshHandshakeError",
    "SshHostKeyChangedError",
    "SshHostKeyUnknownError",
    "SshResolveError",
    "SshTarget",
    "parse_ssh_command",
]

TERMINAL = ("vt100", 80, 24)  # what Unicon's pty gives the ssh child
PASSWORD_PROMPT = b"Password: "
STRICT_POLICIES = ("yes", "accept-new", "no")
_DEFAULT_KNOWN_HOSTS = ("~/.ssh/known_hosts",)
_GLOBAL_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts",)
_KNOWN_HOSTS_LOCK = threading.Lock()


class SshBackendError(Exception):
    """The SSH session could not be opened; the message reads like OpenSSH's."""


class SshCommandLineError(SshBackendError):
    """The start command uses an ssh option this backend does not implement."""


class SshResolveError(SshBackendError):
    """The hostname does not resolve."""


class SshConnectRefusedError(SshBackendError):
    """Nothing listens on the port."""


class SshConnectTimeoutError(SshBackendError):
    """No TCP connection, or no SSH banner/handshake, within ``ConnectTimeout``."""


class SshHandshakeError(SshBackendError):
    """The SSH protocol exchange failed (no common algorithm, connection reset, ...)."""


class SshHostKeyUnknownError(SshBackendError):
    """``StrictHostKeyChecking=yes`` and the host's key is not in known_hosts."""


class SshHostKeyChangedError(SshBackendError):
    """known_hosts holds another key for the host: refused under every policy, as OpenSSH does."""


@dataclass(frozen=True, slots=True)
class SshTarget:
    host: str
    port: int
    username: str
    strict_host_key_checking: str = "ask"
    known_hosts_files: tuple[str, ...] = _DEFAULT_KNOWN_HOSTS
    connect_timeout: float | None = None

    @property
    def known_hosts_name(self) -> str:
        """The host as known_hosts names it: ``host``, or ``[host]:port`` off port 22."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


def _option(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        key, _, value = text.partition(" ")
    return key.strip().lower(), value.strip()


def parse_ssh_command(command: str) -> SshTarget:
    """OpenSSH syntax: ``-p``, ``-l``, ``-o Key=Value``, ``user@host``, ``--``."""
    words = shlex.split(command)
    if not words or Path(words[0]).name != "ssh":
        raise SshCommandLineError(f"not an ssh command: {words[:1]}")
    port, user, host = 22, "", ""
    options: dict[str, str] = {}
    index, positional = 1, False
    while index < len(words):
        word = words[index]
        index += 1
        if positional or not word.startswith("-"):
            if host:
                raise SshCommandLineError("a remote command is not supported: the backend opens a shell")
            host = word
            continue
        if word == "--":
            positional = True
            continue
        flag, attached = word[:2], word[2:]
        if flag not in ("-p", "-l", "-o"):
            raise SshCommandLineError(f"unsupported ssh option {flag}")
        if not attached:
            if index >= len(words):
                raise SshCommandLineError(f"ssh option {flag} needs a value")
            attached = words[index]
            index += 1
        if flag == "-p":
            port = int(attached)
        elif flag == "-l":
            user = attached
        else:
            key, value = _option(attached)
            options.setdefault(key, value)  # OpenSSH: the first value given wins
    if not host:
        raise SshCommandLineError("no host in the ssh command")
    if "@" in host:
        at_user, _, host = host.rpartition("@")
        user = user or at_user
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    strict = options.get("stricthostkeychecking", "ask").lower()
    strict = {"true": "yes", "false": "no", "off": "no"}.get(strict, strict)
    known = tuple(options["userknownhostsfile"].split()) if "userknownhostsfile" in options else _DEFAULT_KNOWN_HOSTS
    timeout = float(options["connecttimeout"]) if "connecttimeout" in options else None
    return SshTarget(host, port, user or getpass.getuser(), strict, known, timeout)


def _load_known_hosts(target: SshTarget) -> dict[str, Any]:
    """Keys known for the target, by key type, from the user and global files."""
    keys = paramiko.HostKeys()
    for name in (*target.known_hosts_files, *_GLOBAL_KNOWN_HOSTS):
        path = Path(name).expanduser()
        if path.is_file() or name == os.devnull:
            keys.load(str(path))
    found = keys.lookup(target.known_hosts_name)
    return dict(found) if found is not None else {}


def _remember_host_key(target: SshTarget, key: Any) -> None:
    """``accept-new``: append the key to the first user known_hosts file, once."""
    name = target.known_hosts_files[0]
    if name == os.devnull:
        return
    path = Path(name).expanduser()
    with _KNOWN_HOSTS_LOCK:
        if key.get_name() in _load_known_hosts(target):
            return
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        line = f"{target.known_hosts_name} {key.get_name()} {key.get_base64()}\n"
        handle = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(handle, line.encode())
        finally:
            os.close(handle)


def _check_host_key(target: SshTarget, key: Any, known: dict[str, Any]) -> None:
    kind = key.get_name()
    if known:
        if known.get(kind) == key:
            return
        # a key of another type only: the host no longer offers the type we know (we asked for it first)
        raise SshHostKeyChangedError(
            f"WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! The {kind} host key for "
            f"{target.known_hosts_name} does not match known_hosts. Host key verification failed."
        )
    if target.strict_host_key_checking == "no":
        return
    if target.strict_host_key_checking == "accept-new":
        _remember_host_key(target, key)
        return
    raise SshHostKeyUnknownError(
        f"No {kind} host key is known for {target.known_hosts_name} and you have requested strict checking. "
        "Host key verification failed."
    )


def _prefer_known_key_types(transport: Any, known: dict[str, Any]) -> None:
    """Ask for the key types already known first, as OpenSSH does, so a second key type is not 'changed'."""
    if not known:
        return

    def is_known(algorithm: str) -> bool:
        return algorithm in known or ("ssh-rsa" in known and algorithm.startswith("rsa-sha2-"))

    options = transport.get_security_options()
    available = list(options.key_types)
    options.key_types = [a for a in available if is_known(a)] + [a for a in available if not is_known(a)]


def _open_transport(target: SshTarget) -> Any:
    where = f"ssh: connect to host {target.host} port {target.port}"
    try:
        sock = socket.create_connection((target.host, target.port), timeout=target.connect_timeout)
    except socket.gaierror as exc:
        raise SshResolveError(f"ssh: Could not resolve hostname {target.host}: Name or service not known") from exc
    except ConnectionRefusedError as exc:
        raise SshConnectRefusedError(f"{where}: Connection refused") from exc
    except TimeoutError as exc:
        raise SshConnectTimeoutError(f"{where}: Connection timed out") from exc
    except OSError as exc:
        raise SshHandshakeError(f"{where}: {exc.strerror or type(exc).__name__}") from exc
    transport = paramiko.Transport(sock)
    if target.connect_timeout is not None:
        transport.banner_timeout = target.connect_timeout
        transport.handshake_timeout = target.connect_timeout
        transport.auth_timeout = target.connect_timeout
    known = _load_known_hosts(target)
    _prefer_known_key_types(transport, known)
    timed_out = SshConnectTimeoutError(f"{where}: Connection timed out during banner exchange")
    started = time.monotonic()
    try:
        # on timeout start_client returns quietly with the key exchange unfinished
        transport.start_client(timeout=target.connect_timeout)
        if not getattr(transport, "initial_kex_done", True):
            raise timed_out
        _check_host_key(target, transport.get_remote_server_key(), known)
    except SshBackendError:
        transport.close()
        raise
    except (paramiko.SSHException, OSError, EOFError) as exc:
        transport.close()
        text = str(exc).lower()
        late = target.connect_timeout is not None and time.monotonic() - started >= target.connect_timeout
        if late or isinstance(exc, TimeoutError) or "timeout" in text or "timed out" in text or "banner" in text:
            raise timed_out from exc
        raise SshHandshakeError(f"{where}: SSH handshake failed ({type(exc).__name__})") from exc
    return transport


class Spawn(UniconSpawn):  # type: ignore[misc]  # Unicon is untyped
    """One SSH shell session as Unicon sees it: bytes in, bytes out, a prompt to answer first."""

    def __init__(self, spawn_command: str, *args: Any, **kwargs: Any) -> None:
        # Unicon owns this signature (target, hostname, settings, logger, device, ...): pass it through
        super().__init__(spawn_command, *args, **kwargs)
        # no ``fd`` or ``pid`` attributes on purpose: with them, Unicon's disconnect takes its
        # pty path and never calls close(), leaving the SSH session open
        self._target = parse_ssh_command(spawn_command)
        self._lock = threading.Lock()
        self._pending = bytearray()
        self._typed: list[str] = []
        self._channel: Any = None
        self._poll: Any = None
        self._closed = False
        self._transport: Any = _open_transport(self._target)
        self._pending += PASSWORD_PROMPT

    # -- Unicon's backend contract ------------------------------------------------

    def _read(self, size: int) -> bytes:
        if self._pending:
            data = bytes(self._pending[:size])
            del self._pending[:size]
            return data
        channel = self._channel
        if channel is not None and channel.recv_ready():
            data = channel.recv(size)
            if data:
                return bytes(data)
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
        if self._channel is not None:
            self._channel.close()
        self._transport.close()

    def __str__(self) -> str:
        return f"spawn: {self.spawn_command}, backend: paramiko, id: {id(self)}"

    __repr__ = __str__

    # -- login ---------------------------------------------------------------------

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
        self._channel, self._poll = channel, poll

    def _close_and_raise_eof(self) -> None:
        self.close()
        raise EOF("Unable to read. Connection closed or not available")
