"""Connections for the paramiko backend: TCP, forwarding through a jump host, handshake, keys.

Every failure becomes an ``SshBackendError`` of the right type (``ssh.errors``), worded
as OpenSSH words it. paramiko tells some failures apart only in its messages; those are
read in ``service.device.error_text`` and nowhere here.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import time
from pathlib import Path
from typing import Any

import paramiko

from service.device import error_text
from service.device.ssh.errors import (
    SshBackendError,
    SshClosedBeforeBannerError,
    SshConnectRefusedError,
    SshConnectTimeoutError,
    SshFailure,
    SshHandshakeError,
    SshHandshakeTimeoutError,
    SshHostUnreachableError,
    SshJumpForwardRefusedError,
    SshJumpLoginError,
    SshNoCommonAlgorithmError,
    SshResolveError,
)
from service.device.ssh.known_hosts import check_host_key, load_known_hosts, prefer_known_key_types
from service.device.ssh.legacy import algorithm_mismatch
from service.device.ssh.paramiko_patches import SshTransport
from service.device.ssh.target import SshTarget

__all__ = ["auth_jump", "auth_keys", "check_shared_host_key", "handshake", "open_forward", "tcp_connect"]

log = logging.getLogger(__name__)


def where(target: SshTarget) -> str:
    return f"ssh: connect to host {target.host} port {target.port}"


def tcp_connect(target: SshTarget) -> socket.socket:
    at = where(target)
    try:
        return socket.create_connection((target.host, target.port), timeout=target.connect_timeout)
    except socket.gaierror as exc:
        raise SshResolveError(f"ssh: Could not resolve hostname {target.host}: Name or service not known") from exc
    except ConnectionRefusedError as exc:
        raise SshConnectRefusedError(f"{at}: Connection refused") from exc
    except TimeoutError as exc:
        raise SshConnectTimeoutError(f"{at}: Connection timed out") from exc
    except OSError as exc:
        if exc.errno == errno.EHOSTUNREACH:
            raise SshHostUnreachableError(f"{at}: No route to host") from exc
        raise SshHandshakeError(f"{at}: {exc.strerror or type(exc).__name__}") from exc


def open_forward(transport: Any, jump: SshTarget, target: SshTarget) -> Any:
    """A ``direct-tcpip`` channel to ``target`` through ``jump``'s authenticated transport."""
    at, via = where(target), f"jump host {jump.username}@{jump.known_hosts_name}"
    try:
        return transport.open_channel(
            "direct-tcpip", (target.host, target.port), ("127.0.0.1", 0), timeout=target.connect_timeout
        )
    except paramiko.ChannelException as exc:
        text = str(exc.text or "")
        if exc.code == paramiko.common.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED:
            raise SshJumpForwardRefusedError(
                f"channel 0: open failed: administratively prohibited: {text} ({via})"
            ) from exc
        refusal = error_text.channel_refusal(text)  # the jump host says why only in words
        if refusal is SshFailure.UNRESOLVED:
            raise SshResolveError(f"ssh: Could not resolve hostname {target.host}: {text} ({via})") from exc
        if refusal is SshFailure.TIMEOUT:
            raise SshConnectTimeoutError(f"{at}: Connection timed out ({via})") from exc
        raise SshConnectRefusedError(
            f"channel 0: open failed: connect failed: {text}; {at}: Connection refused ({via})"
        ) from exc
    except (paramiko.SSHException, OSError, EOFError) as exc:
        if isinstance(exc, TimeoutError) or error_text.says_timed_out(exc):
            raise SshConnectTimeoutError(f"{at}: Connection timed out ({via})") from exc
        raise SshHandshakeError(f"{at}: the connection through {via} failed ({type(exc).__name__})") from exc


def handshake(target: SshTarget, sock: Any, role: str = "") -> Any:
    """The SSH transport over ``sock`` (a socket, or a channel through a jump host), host key checked."""
    transport = SshTransport(sock, target.legacy_algorithms)
    if target.connect_timeout is not None:
        transport.banner_timeout = target.connect_timeout
        transport.handshake_timeout = target.connect_timeout
        transport.auth_timeout = target.connect_timeout
    known = load_known_hosts(target)
    prefer_known_key_types(transport, known)
    started = time.monotonic()
    try:
        # on timeout start_client returns quietly with the key exchange unfinished
        transport.start_client(timeout=target.connect_timeout)
        if not getattr(transport, "initial_kex_done", True):
            raise _banner_timeout(target)
        check_host_key(target, transport.get_remote_server_key(), known, role)
    except SshBackendError:
        transport.close()
        raise
    except (paramiko.SSHException, OSError, EOFError) as exc:
        transport.close()
        raise _handshake_failure(target, exc, transport.peer_offer, time.monotonic() - started) from exc
    return transport


def check_shared_host_key(target: SshTarget, transport: Any, role: str) -> None:
    """A shared session's key, checked again under this caller's policy and known_hosts."""
    check_host_key(target, transport.get_remote_server_key(), load_known_hosts(target), role)


def _banner_timeout(target: SshTarget) -> SshHandshakeTimeoutError:
    return SshHandshakeTimeoutError(f"{where(target)}: Connection timed out during banner exchange")


def _handshake_failure(
    target: SshTarget, exc: BaseException, offer: dict[str, list[str]] | None, elapsed: float
) -> SshBackendError:
    if mismatch := algorithm_mismatch(exc, offer):
        return SshNoCommonAlgorithmError(target.host, target.port, mismatch)
    late = target.connect_timeout is not None and elapsed >= target.connect_timeout
    if late or isinstance(exc, TimeoutError) or error_text.says_timed_out(exc):
        return _banner_timeout(target)
    if isinstance(exc, EOFError | ConnectionResetError) or error_text.says_banner(exc):  # closed before its banner
        return SshClosedBeforeBannerError(
            f"{where(target)}: kex_exchange_identification: Connection closed by remote host"
        )
    return SshHandshakeError(f"{where(target)}: SSH handshake failed ({type(exc).__name__})")


def auth_keys(transport: Any, target: SshTarget) -> bool:
    """Try each identity; True once the server accepted one. Connection errors propagate."""
    for key in _load_keys(target):
        try:
            transport.auth_publickey(target.username, key)
        except paramiko.AuthenticationException:
            continue
        if transport.is_authenticated():
            return True
    return bool(transport.is_authenticated())


def auth_jump(transport: Any, hop: SshTarget) -> None:
    """A jump host's own credentials: its keys, then the password from its environment variable."""
    password = os.environ.get(hop.password_env) if hop.password_env else None
    try:
        if auth_keys(transport, hop):
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
        raise SshJumpLoginError(
            f"jump host {hop.username}@{hop.known_hosts_name}: Permission denied (publickey,password){how}."
        )


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
