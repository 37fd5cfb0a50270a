"""What can go wrong opening an SSH session in process, as types.

Each error names its ``SshFailure``, the kind of failure the service tells apart; the
device layer maps failures to error codes (``service.device.connect_errors``) from the
type, never from the message. Messages are worded as OpenSSH words them (operators know
those lines) and never carry a secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, auto
from typing import ClassVar

__all__ = [
    "AlgorithmMismatch",
    "SshBackendError",
    "SshClosedBeforeBannerError",
    "SshConnectRefusedError",
    "SshConnectTimeoutError",
    "SshFailure",
    "SshHandshakeError",
    "SshHandshakeTimeoutError",
    "SshHostKeyChangedError",
    "SshHostKeyUnknownError",
    "SshHostUnreachableError",
    "SshJumpError",
    "SshJumpForwardRefusedError",
    "SshJumpLoginError",
    "SshNoCommonAlgorithmError",
    "SshOptionsError",
    "SshResolveError",
]


class SshFailure(Enum):
    """The failures the service tells apart, whichever backend saw them."""

    CLOSED_BEFORE_BANNER = auto()  # the server closed before its banner (MaxStartups, an access list)
    HANDSHAKE_TIMEOUT = auto()  # a TCP connection, but no finished SSH handshake in time
    REFUSED = auto()  # nothing listens on the port
    TIMEOUT = auto()  # no answer on the port
    UNREACHABLE = auto()  # no route to the host
    UNRESOLVED = auto()  # the hostname does not resolve
    HOST_KEY_CHANGED = auto()  # known_hosts holds another key
    HOST_KEY_UNKNOWN = auto()  # no known key and strict checking
    JUMP_FORWARD_REFUSED = auto()  # a jump host refused to forward to the next hop
    JUMP_LOGIN_REFUSED = auto()  # a jump host refused our login
    LOGIN_REFUSED = auto()  # the device refused the credentials


@dataclass(frozen=True, slots=True)
class AlgorithmMismatch:
    """No algorithm of one kind in common: OpenSSH's name of the kind, and the device's offer."""

    kind: str  # "key exchange method", "host key type", "cipher" or "MAC"
    offer: tuple[str, ...]


class SshBackendError(Exception):
    """The SSH session could not be opened; the message reads like OpenSSH's."""

    failure: ClassVar[SshFailure | None] = None


class SshOptionsError(SshBackendError):
    """The options (or the ssh_config file) ask for something this backend does not do."""


class SshResolveError(SshBackendError):
    """The hostname does not resolve."""

    failure = SshFailure.UNRESOLVED


class SshConnectRefusedError(SshBackendError):
    """Nothing listens on the port."""

    failure = SshFailure.REFUSED


class SshConnectTimeoutError(SshBackendError):
    """No TCP connection within ``ConnectTimeout`` (or no turn at a jump host's login rate)."""

    failure = SshFailure.TIMEOUT


class SshHandshakeTimeoutError(SshConnectTimeoutError):
    """A TCP connection, but no SSH banner or finished key exchange within ``ConnectTimeout``."""

    failure = SshFailure.HANDSHAKE_TIMEOUT


class SshHostUnreachableError(SshBackendError):
    """No route to the host."""

    failure = SshFailure.UNREACHABLE


class SshHandshakeError(SshBackendError):
    """The SSH protocol exchange failed (connection reset, closed during authentication, ...)."""


class SshClosedBeforeBannerError(SshHandshakeError):
    """The server closed the connection before its banner."""

    failure = SshFailure.CLOSED_BEFORE_BANNER


class SshNoCommonAlgorithmError(SshHandshakeError):
    """The device and this client have no algorithm of one kind in common."""

    def __init__(self, host: str, port: int, mismatch: AlgorithmMismatch) -> None:
        offer = ",".join(mismatch.offer) or "none"
        super().__init__(
            f"Unable to negotiate with {host} port {port}: no matching {mismatch.kind} found. Their offer: {offer}"
        )
        self.mismatch = mismatch


class SshHostKeyUnknownError(SshBackendError):
    """``StrictHostKeyChecking=yes`` and the host's key is not in known_hosts."""

    failure = SshFailure.HOST_KEY_UNKNOWN


class SshHostKeyChangedError(SshBackendError):
    """known_hosts holds another key for the host: refused under every policy, as OpenSSH does."""

    failure = SshFailure.HOST_KEY_CHANGED


class SshJumpError(SshBackendError):
    """A jump host refused our login or the forwarding to the next hop."""


class SshJumpLoginError(SshJumpError):
    """A jump host refused its own credentials (its keys, its password variable)."""

    failure = SshFailure.JUMP_LOGIN_REFUSED


class SshJumpForwardRefusedError(SshJumpError):
    """A jump host refused to forward the connection (administratively prohibited)."""

    failure = SshFailure.JUMP_FORWARD_REFUSED
