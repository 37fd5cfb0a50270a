"""paramiko's transport and auth handler, with four fixes; they override paramiko internals.

Subclasses only: nothing in paramiko is changed for other users in the process. Check
them when paramiko is upgraded (``tests/lab/test_paramiko_backend.py`` and
``tests/lab/test_jump_hosts.py`` exercise each).

1. The ``ssh-userauth`` service is requested once, so a refused key can be followed by a
   password: paramiko's plain ``Transport`` requests it again for every attempt, and
   servers such as asyncssh drop the connection at the second request. paramiko's
   ``ensure_session`` waits for the service accept without end; this one gives up when
   the connection ends or after ``auth_timeout``.
2. The auth handler makes its wait event before sending the request: paramiko makes it
   after, so a fast answer (a local or nearby server) can arrive first, set no event, and
   leave the login waiting until ``auth_timeout``.
3. The device's algorithm lists from its KEXINIT are kept, to name them when none is
   acceptable (``legacy.algorithm_mismatch``).
4. The transport's thread wakes once a second, not ten times, to check whether it was
   stopped: with many warm sessions idle between polls, paramiko's 0.1 s made the idle
   transports the device worker's main cost (1000 sessions: ~0.2 cores of 2, py-spy in
   docs/PERFORMANCE.md, "Schedules at scale"). Data still wakes the thread at once, and
   ``close()`` does not wait for it: it closes the packetizer, which ends paramiko's join loop.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import paramiko
from paramiko.auth_handler import AuthOnlyHandler
from paramiko.transport import ServiceRequestingTransport

from service.device.ssh.legacy import apply_legacy_algorithms, disabled_algorithms

__all__ = ["IDLE_CHECK_SECONDS", "SshTransport"]


class _AuthHandler(AuthOnlyHandler):  # type: ignore[misc]  # paramiko is untyped
    """paramiko's, with the wait event made before the request is sent (fix 2)."""

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


IDLE_CHECK_SECONDS = 1.0  # fix 4: paramiko's own is 0.1


class SshTransport(ServiceRequestingTransport):  # type: ignore[misc]  # paramiko is untyped
    """A client transport with the given legacy algorithms added (this transport only) and fixes 1-4."""

    _active_check_timeout = IDLE_CHECK_SECONDS  # the socket timeout of the transport's read loop (fix 4)

    def __init__(self, sock: Any, legacy_algorithms: tuple[str, ...] = ()) -> None:
        super().__init__(sock, disabled_algorithms=disabled_algorithms(legacy_algorithms))
        apply_legacy_algorithms(self, legacy_algorithms)
        self.peer_offer: dict[str, list[str]] | None = None

    def _really_parse_kex_init(self, m: Any, ignore_first_byte: bool = False) -> Any:
        """Keep the device's algorithm lists (fix 3)."""
        parsed = super()._really_parse_kex_init(m, ignore_first_byte)
        self.peer_offer = parsed
        return parsed

    def ensure_session(self) -> None:
        """The ``ssh-userauth`` service, requested once (fix 1)."""
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
