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

Keys: identities from ``-i`` / ``IdentityFile`` are tried first; when one is accepted
there is no ``Password:`` prompt and Unicon sees the device's prompt directly.

Jump hosts (``-J`` / ``ProxyJump``, a comma-separated chain): one shared, authenticated
Transport per jump host (and user, and route) in the process, held by reference while
any device session uses it and closed ``JUMP_IDLE_SECONDS`` after the last one ends.
Each device session is a ``direct-tcpip`` channel through it, opened no faster than the
jump host's login rate (``PyatsJumpRate``, default ``DEFAULT_JUMP_RATE`` per second).
A jump host logs in with its ``IdentityFile`` keys, then with a password read from the
environment variable named by ``PyatsPasswordEnv`` (ssh_config) or
``-o PyatsJumpPasswordEnv=VAR``; the device password is never sent to a jump host.
Host keys are checked for jump hosts as for devices, on every use of a shared session.

``-F PATH`` reads an OpenSSH-style ssh_config (see ``service.device.ssh_config``); values
on the command line win over the file, except that a jump host's own Host block wins
over the command line's ``StrictHostKeyChecking`` / ``UserKnownHostsFile`` (which
OpenSSH would not apply to a jump host at all).

Legacy algorithms: ``-o KexAlgorithms=+...``, ``-o HostKeyAlgorithms=+ssh-rsa`` and
``-o Ciphers=+...`` (only names of ``service.domain.legacy_ssh``, only in the ``+`` form)
add them to the device's transport, not to its jump hosts' (OpenSSH does not pass ``-o``
to a ProxyJump either); CBC ciphers not named are off, as in OpenSSH. A device and this
client with no algorithm in common fail with OpenSSH's "no matching ... found. Their
offer: ..." (see ``service.device.paramiko_legacy``). ``PubkeyAcceptedAlgorithms`` is
accepted and ignored: RSA identities sign with SHA-2 only.

Nothing is sent that Unicon did not send: no keepalives, no commands of our own.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import select
import shlex
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import paramiko
from paramiko.auth_handler import AuthOnlyHandler
from paramiko.transport import ServiceRequestingTransport
from unicon.core.errors import EOF
from unicon.eal.backend.spawn import Spawn as UniconSpawn

from service.device import ssh_config
from service.device.device_text import BULK, BULK_WAIT, READ_AHEAD, DeviceText
from service.device.paramiko_legacy import apply_legacy_algorithms, disabled_algorithms, negotiation_failure
from service.device.ssh_config import normalise_strict
from service.domain.legacy_ssh import LEGACY_ALGORITHMS, AlgorithmKind

__all__ = [
    "DEFAULT_JUMP_RATE",
    "JUMP_IDLE_SECONDS",
    "Spawn",
    "SshBackendError",
    "SshCommandLineError",
    "SshConnectRefusedError",
    "SshConnectTimeoutError",
    "SshHandshakeError",
    "SshHostKeyChangedError",
    "SshHostKeyUnknownError",
    "SshJumpError",
    "SshResolveError",
    "SshTarget",
    "close_jump_hosts",
    "jump_host_sessions",
    "parse_ssh_command",
]

log = logging.getLogger(__name__)

TERMINAL = ("vt100", 80, 24)  # what Unicon's pty gives the ssh child
PASSWORD_PROMPT = b"Password: "
STRICT_POLICIES = ("yes", "accept-new", "no")
DEFAULT_JUMP_RATE = 10.0  # new connections per second through one jump host; 0 = no limit
JUMP_IDLE_SECONDS = 60.0  # a jump host session nobody uses is closed after this long
_MAX_JUMPS = 8
_DEFAULT_KNOWN_HOSTS = ("~/.ssh/known_hosts",)
_GLOBAL_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts",)
_KNOWN_HOSTS_LOCK = threading.Lock()
_FLAGS_WITH_VALUE = ("-p", "-l", "-o", "-i", "-J", "-F")


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


class SshJumpError(SshBackendError):
    """A jump host refused our login or the forwarding to the next hop."""


@dataclass(frozen=True, slots=True)
class SshTarget:
    host: str
    port: int
    username: str
    strict_host_key_checking: str = "ask"
    known_hosts_files: tuple[str, ...] = _DEFAULT_KNOWN_HOSTS
    connect_timeout: float | None = None
    identity_files: tuple[str, ...] = ()
    pubkey_authentication: bool = True
    passphrase_env: str | None = None  # the identities' passphrase is in this environment variable
    password_env: str | None = None  # jump hosts only: their password is in this environment variable
    jump_rate: float = DEFAULT_JUMP_RATE  # jump hosts only: new connections per second through this host
    jumps: tuple[SshTarget, ...] = ()  # the ProxyJump chain, first hop first (each hop's own ``jumps`` empty)
    legacy_algorithms: tuple[str, ...] = ()  # legacy SSH algorithms this host may use (never inherited by jumps)

    @property
    def known_hosts_name(self) -> str:
        """The host as known_hosts names it: ``host``, or ``[host]:port`` off port 22."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


def _option(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        key, _, value = text.partition(" ")
    return key.strip().lower(), value.strip()


def _split_host(text: str) -> tuple[str, str, int | None]:
    """``[ssh://][user@]host[:port]`` (``[v6]:port`` too) -> (user, host, port)."""
    text = text.strip().removeprefix("ssh://")
    user, _, rest = text.rpartition("@")
    port: int | None = None
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        if tail.startswith(":"):
            port = int(tail[1:])
    elif rest.count(":") == 1:
        host, _, number = rest.partition(":")
        port = int(number)
    else:
        host = rest
    if not host:
        raise SshCommandLineError(f"invalid jump host {text!r}")
    return user, host, port


@dataclass(slots=True)
class _Given:
    """What the command line says, before the ssh_config file fills the gaps."""

    options: dict[str, str] = field(default_factory=dict)
    identities: list[str] = field(default_factory=list)
    port: int | None = None
    user: str = ""
    jump: str | None = None
    config: str | None = None
    defaults: dict[str, str] = field(default_factory=dict)  # what a jump host takes from the session


def _parse_words(command: str) -> tuple[_Given, str]:
    words = shlex.split(command)
    if not words or Path(words[0]).name != "ssh":
        raise SshCommandLineError(f"not an ssh command: {words[:1]}")
    given, host = _Given(), ""
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
        if flag not in _FLAGS_WITH_VALUE:
            raise SshCommandLineError(f"unsupported ssh option {flag}")
        if not attached:
            if index >= len(words):
                raise SshCommandLineError(f"ssh option {flag} needs a value")
            attached = words[index]
            index += 1
        if flag == "-p":
            given.port = int(attached) if given.port is None else given.port
        elif flag == "-l":
            given.user = given.user or attached
        elif flag == "-i":
            given.identities.append(attached)
        elif flag == "-J":
            given.jump = attached if given.jump is None else given.jump
        elif flag == "-F":
            given.config = attached if given.config is None else given.config
        else:
            key, value = _option(attached)
            if key == "identityfile":
                given.identities.append(value)
            else:
                given.options.setdefault(key, value)  # OpenSSH: the first value given wins
    if not host:
        raise SshCommandLineError("no host in the ssh command")
    return given, host


def _float(value: str | None, name: str) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError as exc:
        raise SshCommandLineError(f"{name} {value!r} is not a number") from exc


def _config_path(given: _Given) -> str | None:
    name = given.config
    return None if name is None or name.lower() == "none" else name


# the ``+list`` options that add legacy algorithms, by their lower-case key
_LEGACY_OPTIONS = {
    "kexalgorithms": ("KexAlgorithms", AlgorithmKind.KEX),
    "hostkeyalgorithms": ("HostKeyAlgorithms", AlgorithmKind.HOST_KEY),
    "pubkeyacceptedalgorithms": ("PubkeyAcceptedAlgorithms", AlgorithmKind.HOST_KEY),
    "ciphers": ("Ciphers", AlgorithmKind.CIPHER),
}


def _legacy_algorithms(options: dict[str, str]) -> tuple[str, ...]:
    names: list[str] = []
    for key, (option, kind) in _LEGACY_OPTIONS.items():
        value = options.get(key)
        if value is None:
            continue
        if not value.startswith("+"):
            raise SshCommandLineError(f"{option}: only +name,... (legacy algorithms added to the defaults) is known")
        for name in value[1:].split(","):
            if LEGACY_ALGORITHMS.get(name) is not kind:
                raise SshCommandLineError(f"{option}: {name[:60]!r} is not a legacy algorithm this backend can add")
            names.append(name)
    return tuple(dict.fromkeys(names))


_INHERITED = ("stricthostkeychecking", "userknownhostsfile", "connecttimeout", "pyatsjumprate", "pyatsjumppasswordenv")


def _resolve(alias: str, given: _Given, depth: int = 0) -> SshTarget:
    """``alias`` as OpenSSH resolves it: command line, then the file, then (jump hosts) the session's values."""
    try:
        found = ssh_config.resolve(alias, _config_path(given))
    except ssh_config.SshConfigError as exc:
        raise SshCommandLineError(str(exc)) from exc
    options, defaults = given.options, given.defaults
    host = found.hostname
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    strict = options.get("stricthostkeychecking") or found.strict_host_key_checking
    strict = normalise_strict(strict or defaults.get("stricthostkeychecking") or "ask")
    known_text = options.get("userknownhostsfile")
    known = tuple(known_text.split()) if known_text is not None else found.user_known_hosts_files
    if not known and "userknownhostsfile" in defaults:
        known = tuple(defaults["userknownhostsfile"].split())
    timeout = _float(options.get("connecttimeout"), "ConnectTimeout")
    if timeout is None:
        timeout = found.connect_timeout
    if timeout is None:
        timeout = _float(defaults.get("connecttimeout"), "ConnectTimeout")
    rate = _float(options.get("pyatsjumprate"), "PyatsJumpRate")
    if rate is None:
        rate = found.jump_rate
    if rate is None:
        rate = _float(defaults.get("pyatsjumprate"), "PyatsJumpRate")
    preferred = options.get("preferredauthentications")
    pubkey = options.get("pubkeyauthentication", "yes").lower() not in ("no", "false")
    pubkey = pubkey and (preferred is None or "publickey" in preferred.lower().split(","))
    jump_spec = given.jump or options.get("proxyjump") or found.proxy_jump
    jumps = _jump_chain(jump_spec, given, depth) if jump_spec and jump_spec.lower() != "none" else ()
    return SshTarget(
        host=host,
        port=given.port if given.port is not None else (found.port or 22),
        username=given.user or found.user or getpass.getuser(),
        strict_host_key_checking=strict,
        known_hosts_files=known or _DEFAULT_KNOWN_HOSTS,
        connect_timeout=timeout,
        identity_files=(*given.identities, *found.identity_files),
        pubkey_authentication=pubkey,
        passphrase_env=options.get("pyatsidentitypassphraseenv") or found.passphrase_env,
        password_env=(
            options.get("pyatsjumppasswordenv") or found.password_env or defaults.get("pyatsjumppasswordenv")
        ),
        jump_rate=DEFAULT_JUMP_RATE if rate is None else rate,
        jumps=jumps,
        legacy_algorithms=_legacy_algorithms(options),
    )


def _jump_chain(spec: str, given: _Given, depth: int) -> tuple[SshTarget, ...]:
    """``a,b`` -> (a, b): b is reached through a. Only the first hop's own ProxyJump applies, as in OpenSSH.

    A jump host takes the session's host-key policy, known_hosts, timeout and jump settings
    where its own Host block says nothing (OpenSSH would read only that block).
    """
    hops = [item for item in spec.split(",") if item.strip()]
    if depth + len(hops) > _MAX_JUMPS:
        raise SshCommandLineError(f"ProxyJump chain longer than {_MAX_JUMPS} hops (a loop in the ssh_config?)")
    session = {**given.defaults, **{k: v for k, v in given.options.items() if k in _INHERITED}}
    chain: list[SshTarget] = []
    for position, text in enumerate(hops):
        user, alias, port = _split_host(text)
        hop_given = _Given(port=port, user=user, config=_config_path(given), defaults=session)
        if position > 0:
            hop_given.jump = "none"  # reached through the previous hop, whatever its Host block says
        hop = _resolve(alias, hop_given, depth + len(hops))
        chain.extend(hop.jumps)
        chain.append(replace(hop, jumps=()))
    return tuple(chain)


def parse_ssh_command(command: str) -> SshTarget:
    """OpenSSH syntax: ``-p``, ``-l``, ``-i``, ``-J``, ``-F``, ``-o Key=Value``, ``user@host``, ``--``."""
    given, host = _parse_words(command)
    if "@" in host:
        at_user, _, host = host.rpartition("@")
        given.user = given.user or at_user
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return _resolve(host, given)


# -- host keys -------------------------------------------------------------------------


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
    """``accept-new``: append the key to the first user known_hosts file, once (mode 0600)."""
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


def _check_host_key(target: SshTarget, key: Any, known: dict[str, Any], role: str = "") -> None:
    kind = key.get_name()
    if known:
        if known.get(kind) == key:
            return
        # a key of another type only: the host no longer offers the type we know (we asked for it first)
        raise SshHostKeyChangedError(
            f"WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! The {kind} host key for {role}"
            f"{target.known_hosts_name} does not match known_hosts. Host key verification failed."
        )
    if target.strict_host_key_checking == "no":
        return
    if target.strict_host_key_checking == "accept-new":
        _remember_host_key(target, key)
        return
    raise SshHostKeyUnknownError(
        f"No {kind} host key is known for {role}{target.known_hosts_name} and you have requested strict checking. "
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


# -- connections -----------------------------------------------------------------------


def _where(target: SshTarget) -> str:
    return f"ssh: connect to host {target.host} port {target.port}"


def _tcp_connect(target: SshTarget) -> socket.socket:
    where = _where(target)
    try:
        return socket.create_connection((target.host, target.port), timeout=target.connect_timeout)
    except socket.gaierror as exc:
        raise SshResolveError(f"ssh: Could not resolve hostname {target.host}: Name or service not known") from exc
    except ConnectionRefusedError as exc:
        raise SshConnectRefusedError(f"{where}: Connection refused") from exc
    except TimeoutError as exc:
        raise SshConnectTimeoutError(f"{where}: Connection timed out") from exc
    except OSError as exc:
        raise SshHandshakeError(f"{where}: {exc.strerror or type(exc).__name__}") from exc


def _forward(jump: _JumpSession, target: SshTarget) -> Any:
    """A ``direct-tcpip`` channel to ``target`` through an authenticated jump host session."""
    where, via = _where(target), f"jump host {jump.target.username}@{jump.target.known_hosts_name}"
    _JUMP_LIMITS.admit(jump.target, target.connect_timeout)
    try:
        channel = jump.transport.open_channel(
            "direct-tcpip", (target.host, target.port), ("127.0.0.1", 0), timeout=target.connect_timeout
        )
    except paramiko.ChannelException as exc:
        text = str(exc.text or "")
        reason = text.lower()
        if exc.code == paramiko.common.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED:
            raise SshJumpError(f"channel 0: open failed: administratively prohibited: {text} ({via})") from exc
        if "resolve" in reason or "name or service" in reason or "not known" in reason:
            raise SshResolveError(f"ssh: Could not resolve hostname {target.host}: {text} ({via})") from exc
        if "timed out" in reason or "timeout" in reason:
            raise SshConnectTimeoutError(f"{where}: Connection timed out ({via})") from exc
        raise SshConnectRefusedError(
            f"channel 0: open failed: connect failed: {text}; {where}: Connection refused ({via})"
        ) from exc
    except (paramiko.SSHException, OSError, EOFError) as exc:
        if "timeout" in str(exc).lower():
            raise SshConnectTimeoutError(f"{where}: Connection timed out ({via})") from exc
        raise SshHandshakeError(f"{where}: the connection through {via} failed ({type(exc).__name__})") from exc
    return channel


class _AuthHandler(AuthOnlyHandler):  # type: ignore[misc]  # paramiko is untyped
    """paramiko's, with the wait event made before the request is sent.

    paramiko makes it after sending, so a fast answer (a local or nearby server) can arrive
    first, set no event, and leave the login waiting until ``auth_timeout``.
    """

    def send_auth_request(self, username: str, method: str, finish_message: Any = None) -> Any:
        self.auth_method = method
        self.username = username
        request = paramiko.Message()
        request.add_byte(paramiko.common.cMSG_USERAUTH_REQUEST)
        request.add_string(username)
        request.add_string("ssh-connection")
        request.add_string(method)
        if finish_message is not None:
            finish_message(request)
        self.auth_event = event = threading.Event()
        with self.transport.lock:
            self.transport._send_message(request)
        return self.wait_for_response(event)


class _Transport(ServiceRequestingTransport):  # type: ignore[misc]  # paramiko is untyped
    """Requests the ``ssh-userauth`` service once, so a refused key can be followed by a password.

    paramiko's plain ``Transport`` requests the service again for every attempt, and servers
    such as asyncssh drop the connection at the second request. Its ``ensure_session`` waits
    for the service accept without end; this one gives up when the connection ends or after
    ``auth_timeout``, and its auth handler does not race the server's answer (``_AuthHandler``).
    """

    def __init__(self, sock: Any, legacy_algorithms: tuple[str, ...] = ()) -> None:
        super().__init__(sock, disabled_algorithms=disabled_algorithms(legacy_algorithms))
        apply_legacy_algorithms(self, legacy_algorithms)
        self.peer_offer: dict[str, list[str]] | None = None

    def _really_parse_kex_init(self, m: Any, ignore_first_byte: bool = False) -> Any:
        """Keep the device's algorithm lists, to name them when none is acceptable."""
        parsed = super()._really_parse_kex_init(m, ignore_first_byte)
        self.peer_offer = parsed
        return parsed

    def ensure_session(self) -> None:
        if not self.active or not self.initial_kex_done:
            raise paramiko.SSHException("No existing session")
        if not self._service_userauth_accepted:
            request = paramiko.Message()
            request.add_byte(paramiko.common.cMSG_SERVICE_REQUEST)
            request.add_string("ssh-userauth")
            self._send_message(request)
            deadline = time.monotonic() + (self.auth_timeout or 30)
            while not self._service_userauth_accepted:
                if not self.active or time.monotonic() > deadline:
                    raise paramiko.SSHException("No existing session")
                time.sleep(0.005)
        if getattr(self, "auth_handler", None) is None:
            self.auth_handler: Any = _AuthHandler(self)  # one handler for every attempt


def _handshake(target: SshTarget, sock: Any, role: str = "") -> Any:
    """The SSH transport over ``sock`` (a socket, or a channel through a jump host), host key checked."""
    where = _where(target)
    transport = _Transport(sock, target.legacy_algorithms)
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
        _check_host_key(target, transport.get_remote_server_key(), known, role)
    except SshBackendError:
        transport.close()
        raise
    except (paramiko.SSHException, OSError, EOFError) as exc:
        transport.close()
        if mismatch := negotiation_failure(exc, transport.peer_offer):
            raise SshHandshakeError(f"Unable to negotiate with {target.host} port {target.port}: {mismatch}") from exc
        text = str(exc).lower()
        late = target.connect_timeout is not None and time.monotonic() - started >= target.connect_timeout
        if late or isinstance(exc, TimeoutError) or "timeout" in text or "timed out" in text:
            raise timed_out from exc
        if "banner" in text or isinstance(exc, EOFError | ConnectionResetError):  # closed before its banner
            raise SshHandshakeError(f"{where}: kex_exchange_identification: Connection closed by remote host") from exc
        raise SshHandshakeError(f"{where}: SSH handshake failed ({type(exc).__name__})") from exc
    return transport


def _load_keys(target: SshTarget) -> list[Any]:
    """The identities that load; as OpenSSH, a missing or unreadable one is skipped."""
    if not target.pubkey_authentication:
        return []
    passphrase = os.environ.get(target.passphrase_env) if target.passphrase_env else None
    keys: list[Any] = []
    for name in target.identity_files:
        path = Path(name).expanduser()
        if not path.is_file():
            continue
        try:
            keys.append(paramiko.PKey.from_path(path, passphrase))
        except (paramiko.SSHException, paramiko.pkey.UnknownKeyType, OSError, ValueError) as exc:
            log.warning("ssh identity %s not usable: %s", path, type(exc).__name__)
    return keys


def _auth_keys(transport: Any, target: SshTarget) -> bool:
    """Try each identity; True once the server accepted one. Connection errors propagate."""
    for key in _load_keys(target):
        try:
            transport.auth_publickey(target.username, key)
        except paramiko.AuthenticationException:
            continue
        if transport.is_authenticated():
            return True
    return bool(transport.is_authenticated())


def _auth_jump(transport: Any, hop: SshTarget) -> None:
    """A jump host's own credentials: its keys, then the password from its environment variable."""
    password = os.environ.get(hop.password_env) if hop.password_env else None
    try:
        if _auth_keys(transport, hop):
            return
        if password:
            with contextlib.suppress(paramiko.AuthenticationException):
                transport.auth_password(hop.username, password, fallback=True)
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise SshHandshakeError(
            f"Connection closed by jump host {hop.known_hosts_name} during authentication ({type(exc).__name__})"
        ) from exc
    if not transport.is_authenticated():
        how = f"; no key accepted and no password in ${hop.password_env}" if hop.password_env and not password else ""
        raise SshJumpError(
            f"jump host {hop.username}@{hop.known_hosts_name}: Permission denied (publickey,password){how}."
        )


# -- shared jump host sessions and their login rate -----------------------------------


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


class _JumpLimits:
    """One token bucket per jump host (host, port): new connections through it per second."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, int], _TokenBucket] = {}

    def admit(self, jump: SshTarget, max_wait: float | None) -> None:
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


_JUMP_LIMITS = _JumpLimits()


@dataclass(eq=False, slots=True)
class _JumpSession:
    """One authenticated session with a jump host, shared by every device behind it."""

    route: tuple[tuple[str, int, str], ...]
    target: SshTarget
    lock: threading.Lock = field(default_factory=threading.Lock)
    transport: Any = None
    refs: int = 0
    idle_timer: threading.Timer | None = None


_JUMPS: dict[tuple[tuple[str, int, str], ...], _JumpSession] = {}
_JUMPS_LOCK = threading.Lock()


def _acquire_jumps(chain: tuple[SshTarget, ...]) -> list[_JumpSession]:
    """Every hop of the chain, connected and held; the last one forwards to the device."""
    held: list[_JumpSession] = []
    try:
        for position, hop in enumerate(chain):
            route = tuple((each.host, each.port, each.username) for each in chain[: position + 1])
            held.append(_acquire_one(route, hop, held[-1] if held else None))
    except BaseException:
        _release_jumps(held)
        raise
    return held


def _acquire_one(route: tuple[tuple[str, int, str], ...], hop: SshTarget, through: _JumpSession | None) -> _JumpSession:
    """The shared session for ``route`` (the hop and the hops before it), opened if needed, held once more."""
    with _JUMPS_LOCK:
        session = _JUMPS.get(route)
        if session is None:
            session = _JUMPS[route] = _JumpSession(route, hop)
        session.refs += 1
        if session.idle_timer is not None:
            session.idle_timer.cancel()
            session.idle_timer = None
    try:
        role = f"jump host {hop.username}@"
        with session.lock:
            transport = session.transport
            if transport is not None and transport.is_active() and transport.is_authenticated():
                # shared: still check this caller's host-key policy against the key the session saw
                _check_host_key(hop, transport.get_remote_server_key(), _load_known_hosts(hop), role)
                return session
            if transport is not None:
                transport.close()
                session.transport = None
            sock = _forward(through, hop) if through is not None else _tcp_connect(hop)
            transport = _handshake(hop, sock, role)
            try:
                _auth_jump(transport, hop)
            except BaseException:
                transport.close()
                raise
            session.target, session.transport = hop, transport
            log.info("jump host session opened: %s@%s", hop.username, hop.known_hosts_name)
            return session
    except BaseException:
        _release_jumps([session])
        raise


def _release_jumps(sessions: list[_JumpSession]) -> None:
    for session in reversed(sessions):
        with _JUMPS_LOCK:
            session.refs = max(0, session.refs - 1)
            if session.refs or _JUMPS.get(session.route) is not session:
                continue
            timer = threading.Timer(JUMP_IDLE_SECONDS, _close_if_idle, args=(session,))
            timer.daemon = True
            session.idle_timer = timer
        timer.start()


def _close_if_idle(session: _JumpSession) -> None:
    with _JUMPS_LOCK:
        if session.refs or _JUMPS.get(session.route) is not session:
            return
        del _JUMPS[session.route]
        session.idle_timer = None
    with session.lock:
        if session.transport is not None:
            session.transport.close()
            session.transport = None
    log.info("jump host session closed (idle): %s", session.route[-1])


def close_jump_hosts() -> None:
    """Close every shared jump host session now (service shutdown, tests); sessions through them end."""
    with _JUMPS_LOCK:
        sessions = list(_JUMPS.values())
        _JUMPS.clear()
        for session in sessions:
            if session.idle_timer is not None:
                session.idle_timer.cancel()
                session.idle_timer = None
    for session in sessions:
        with session.lock:
            if session.transport is not None:
                session.transport.close()
                session.transport = None


def jump_host_sessions() -> dict[tuple[tuple[str, int, str], ...], int]:
    """Open shared jump host sessions by route, with how many device sessions hold each."""
    with _JUMPS_LOCK:
        return {
            route: session.refs
            for route, session in _JUMPS.items()
            if session.transport is not None and session.transport.is_active()
        }


def _open_transport(target: SshTarget) -> tuple[Any, list[_JumpSession]]:
    """The device's transport, host key checked, not yet authenticated; and the jump sessions it holds."""
    if not target.jumps:
        return _handshake(target, _tcp_connect(target)), []
    held = _acquire_jumps(target.jumps)
    try:
        return _handshake(target, _forward(held[-1], target)), held
    except BaseException:
        _release_jumps(held)
        raise


class Spawn(UniconSpawn):  # type: ignore[misc]  # Unicon is untyped
    """One SSH shell session as Unicon sees it: bytes in, bytes out, a prompt to answer first."""

    def __init__(self, spawn_command: str, *args: Any, **kwargs: Any) -> None:
        # Unicon owns this signature (target, hostname, settings, logger, device, ...): pass it through
        super().__init__(spawn_command, *args, **kwargs)
        # no ``fd`` or ``pid`` attributes on purpose: with them, Unicon's disconnect takes its
        # pty path and never calls close(), leaving the SSH session open
        self._target = parse_ssh_command(spawn_command)
        self.device_text = DeviceText()
        self._lock = threading.Lock()
        self._pending = bytearray()
        self._typed: list[str] = []
        self._channel: Any = None
        self._poll: Any = None
        self._wake: tuple[int, int] | None = None
        self._closed = False
        self._transport: Any = None
        self._jumps: list[_JumpSession] = []
        self._transport, self._jumps = _open_transport(self._target)
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
        _release_jumps(jumps)

    def __str__(self) -> str:
        return f"spawn: {self.spawn_command}, backend: paramiko, id: {id(self)}"

    __repr__ = __str__

    # -- login ---------------------------------------------------------------------

    def _login_with_key(self) -> bool:
        """Public key authentication with the identities given; False: the password prompt comes next."""
        try:
            return _auth_keys(self._transport, self._target)
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
