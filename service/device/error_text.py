"""Failures told apart by their words: only here, and only where nothing else tells them apart.

- OpenSSH (the pty backend) reports a failed connection only as lines on its terminal,
  which Unicon's buffer and its connection log keep;
- paramiko names the kind of algorithm it could not agree on, a jump host's reason for
  refusing a channel, and some timeouts only in a message;
- Unicon reports a refused login (its dialog saw "Permission denied") as a plain
  ``ConnectionError``, and a closed session inside a ``SubCommandFailure``, only in
  their messages.

Everything else is classified by exception type, errno or attribute where it is raised
(``service.device.ssh.errors``, ``service.device.connect_errors``).
"""

from __future__ import annotations

import re

from service.device.ssh.errors import AlgorithmMismatch, SshFailure

__all__ = [
    "channel_refusal",
    "incompatible_peer_kind",
    "openssh_failure",
    "openssh_mismatch",
    "says_banner",
    "says_timed_out",
    "unicon_says_eof",
    "unicon_says_login_refused",
]

# OpenSSH's lines, first match wins
_OPENSSH_LINES: tuple[tuple[re.Pattern[str], SshFailure], ...] = (
    (
        re.compile(r"kex_exchange_identification: (?:connection closed|read: connection reset)", re.I),
        SshFailure.CLOSED_BEFORE_BANNER,
    ),
    (re.compile(r"timed out during banner exchange", re.I), SshFailure.HANDSHAKE_TIMEOUT),
    (re.compile(r"connection refused", re.I), SshFailure.REFUSED),
    (re.compile(r"timed out", re.I), SshFailure.TIMEOUT),
    (re.compile(r"no route to host", re.I), SshFailure.UNREACHABLE),
    (re.compile(r"could not resolve hostname|name or service not known", re.I), SshFailure.UNRESOLVED),
    # before "host key verification failed": OpenSSH prints both lines for a changed key
    (re.compile(r"remote host identification has changed", re.I), SshFailure.HOST_KEY_CHANGED),
    (re.compile(r"host key verification failed", re.I), SshFailure.HOST_KEY_UNKNOWN),
    (re.compile(r"open failed: administratively prohibited", re.I), SshFailure.JUMP_FORWARD_REFUSED),
    (re.compile(r"permission denied", re.I), SshFailure.LOGIN_REFUSED),
)

# OpenSSH's words when the device and the client share no algorithm of one kind; the offer
# is the device's list of names
_NO_MATCHING_ALGORITHM = re.compile(
    r"no matching (key exchange method|host key type|cipher|MAC) found\. Their offer: ([A-Za-z0-9@.,_+-]{1,400})"
)

# paramiko's IncompatiblePeer message -> what OpenSSH calls that kind of algorithm
_INCOMPATIBLE = (
    ("kex algorithm", "key exchange method"),
    ("host key", "host key type"),
    ("cipher", "cipher"),
    ("mac", "MAC"),
)


def openssh_failure(text: str) -> SshFailure | None:
    """What OpenSSH's output says went wrong; None if it says nothing known."""
    return next((failure for pattern, failure in _OPENSSH_LINES if pattern.search(text)), None)


def openssh_mismatch(text: str) -> AlgorithmMismatch | None:
    """OpenSSH's "no matching ... found. Their offer: ..." line, read."""
    found = _NO_MATCHING_ALGORITHM.search(text)
    if found is None:
        return None
    return AlgorithmMismatch(found.group(1), tuple(name for name in found.group(2).strip(",.").split(",") if name))


def incompatible_peer_kind(message: str) -> str | None:
    """The kind of algorithm paramiko's ``IncompatiblePeer`` names, in OpenSSH's words."""
    text = message.lower()
    return next((kind for marker, kind in _INCOMPATIBLE if marker in text), None)


def channel_refusal(reason: str) -> SshFailure:
    """A jump host's reason for a ``direct-tcpip`` channel it could not open (code "connect failed")."""
    text = reason.lower()
    if "resolve" in text or "name or service" in text or "not known" in text:
        return SshFailure.UNRESOLVED
    if "timed out" in text or "timeout" in text:
        return SshFailure.TIMEOUT
    return SshFailure.REFUSED


def says_timed_out(exc: BaseException) -> bool:
    """paramiko's timeouts that are no ``TimeoutError`` (``SSHException("... timeout ...")``)."""
    text = str(exc).lower()
    return "timeout" in text or "timed out" in text


def says_banner(exc: BaseException) -> bool:
    """paramiko's "Error reading SSH protocol banner": the server closed before its banner."""
    return "banner" in str(exc).lower()


def unicon_says_eof(exc: BaseException) -> bool:
    """Unicon's ``SubCommandFailure`` for a session that ended, when it carries no EOF as a cause."""
    return "EOF" in str(exc)


def unicon_says_login_refused(exc: BaseException) -> bool:
    """Unicon's ``ConnectionError`` when its login dialog met "Permission denied" (anchored: Unicon's
    timeout messages list every dialog pattern, and are never matched)."""
    return str(exc).startswith("Permission denied for device")
