"""A failed login, as one of our error codes: ``classify_connect_error``.

Types decide first: Unicon's authentication errors, an exhausted machine (errno), and
the paramiko backend's typed errors (``ssh.errors``). The pty backend's OpenSSH says
what went wrong only in what it printed (Unicon's buffer and connection log), and Unicon
says a login was refused only in its message: those words are read in ``error_text``.
Unicon's other messages list every dialog pattern (one says "Connection refused") and
the last line sent, which may be a password: they are never matched nor shown.
"""

from __future__ import annotations

import errno

from unicon.core import errors as unicon_errors

from service.contract.errors import ConnectError, ErrorCode
from service.device import error_text
from service.device.ssh.errors import AlgorithmMismatch, SshBackendError, SshFailure, SshNoCommonAlgorithmError

__all__ = ["LEGACY_HINT", "causes", "classify_connect_error"]

# Errnos of a machine out of processes, file descriptors or memory (fork, socket, pty).
_EXHAUSTED = frozenset({errno.EAGAIN, errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
_KEX_MARKERS = ("ext-info-", "kex-strict-")  # in a key exchange offer, but no algorithms
LEGACY_HINT = (
    "legacy SSH algorithms are off unless named in PYATS_SSH_LEGACY_ALGORITHMS or in the inventory's "
    "custom.ssh_legacy_algorithms (weak: enable only what this device needs)"
)

_FAILURES: dict[SshFailure, tuple[ErrorCode, str]] = {
    SshFailure.CLOSED_BEFORE_BANNER: (
        ErrorCode.OVERLOADED,
        "the device closed the connection before the SSH handshake: too many logins at once (its MaxStartups "
        "or login throttling), or an access list refuses this host",
    ),
    SshFailure.HANDSHAKE_TIMEOUT: (
        ErrorCode.CONNECT_TIMEOUT,
        "the device took the connection but did not finish the SSH handshake in time (it, or this machine, is busy)",
    ),
    SshFailure.REFUSED: (ErrorCode.CONNECT_REFUSED, "the device refused the SSH connection"),
    SshFailure.TIMEOUT: (ErrorCode.CONNECT_TIMEOUT, "the device did not answer on its SSH port"),
    SshFailure.UNREACHABLE: (ErrorCode.CONNECT_TIMEOUT, "the device did not answer on its SSH port"),
    SshFailure.UNRESOLVED: (ErrorCode.CONNECT_FAILED, "the hostname does not resolve"),
    SshFailure.HOST_KEY_CHANGED: (
        ErrorCode.HOST_KEY_MISMATCH,
        "the SSH host key differs from the one in known_hosts: refused (a reinstalled device or an interception)",
    ),
    SshFailure.HOST_KEY_UNKNOWN: (
        ErrorCode.CONNECT_FAILED,
        "the SSH host key is not in known_hosts and strict checking is on (see PYATS_SSH_STRICT_HOST_KEY_CHECKING)",
    ),
    SshFailure.JUMP_FORWARD_REFUSED: (
        ErrorCode.CONNECT_FAILED,
        "the jump host refused to forward the connection to the device",
    ),
    SshFailure.JUMP_LOGIN_REFUSED: (
        ErrorCode.CONNECT_FAILED,
        "the jump host rejected its login (its key or password setting, not the device credentials)",
    ),
    SshFailure.LOGIN_REFUSED: (ErrorCode.AUTH_FAILED, "the device rejected the credentials"),
}


def causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what caused it, up to five deep."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 5:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return chain


def classify_connect_error(exc: BaseException, printed: str) -> ConnectError:
    """Map a failed login to a code; ``printed`` is what the SSH client printed (the pty backend's signal)."""
    chain = causes(exc)
    if any(
        isinstance(e, unicon_errors.CredentialsExhaustedError | unicon_errors.UniconAuthenticationError) for e in chain
    ):
        return ConnectError(ErrorCode.AUTH_FAILED, "the device rejected the login or enable password")
    if any(isinstance(e, OSError) and e.errno in _EXHAUSTED for e in chain):
        return ConnectError(
            ErrorCode.OVERLOADED,
            "this machine ran out of processes, file descriptors or memory while logging in "
            "(lower PYATS_MAX_CONCURRENT_DEVICES or add device workers)",
        )
    ssh_error = next((e for e in chain if isinstance(e, SshBackendError)), None)
    if ssh_error is not None and (known := _from_ssh_error(ssh_error)) is not None:
        return known
    if mismatch := error_text.openssh_mismatch(printed):
        return _no_common_algorithm(mismatch)
    if failure := error_text.openssh_failure(printed):
        return ConnectError(*_FAILURES[failure])
    if any(isinstance(e, unicon_errors.TimeoutError | TimeoutError) for e in chain):
        return ConnectError(ErrorCode.CONNECT_TIMEOUT, "login did not complete before the connect timeout")
    if any(isinstance(e, unicon_errors.ConnectionError) and error_text.unicon_says_login_refused(e) for e in chain):
        return ConnectError(*_FAILURES[SshFailure.LOGIN_REFUSED])
    return ConnectError(ErrorCode.CONNECT_FAILED, f"login failed ({type(exc).__name__})")


def _from_ssh_error(error: SshBackendError) -> ConnectError | None:
    if isinstance(error, SshNoCommonAlgorithmError):
        return _no_common_algorithm(error.mismatch)
    if error.failure is None:
        return None
    return ConnectError(*_FAILURES[error.failure])


def _no_common_algorithm(mismatch: AlgorithmMismatch) -> ConnectError:
    # OpenSSH shows the kex markers (ext-info-s, kex-strict-s-...) in the offer: not algorithms
    offer = [name for name in mismatch.offer if not name.startswith(_KEX_MARKERS)]
    return ConnectError(
        ErrorCode.CONNECT_FAILED,
        f"no matching {mismatch.kind} with the device (its offer: {','.join(offer)}); {LEGACY_HINT}",
        {"mismatch": mismatch.kind, "offer": offer},
    )
