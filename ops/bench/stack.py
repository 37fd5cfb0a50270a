"""Child processes of the bench: nats-server, the lab, the service under test.

nats-server and the lab come from the service's own helpers (``LocalNatsServer``,
``LabProcess``); the service is ``python -m service serve`` with the bench settings
in its environment.  Every child is stopped in ``stop()`` (SIGTERM, then kill).
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from service.devtools.child import SERVE
from service.devtools.child import ServiceProcess as ChildService
from service.devtools.local_server import free_port

SERVICE_START_TIMEOUT = 90.0
SERVICE_STOP_TIMEOUT = 30.0


class ServiceStartError(RuntimeError):
    """The service exited or did not answer $SRV.PING; carries the tail of its log."""


def service_env(nats_url: str, backend: str, concurrency: int, max_devices: int, **extra: str) -> dict[str, str]:
    """The service's settings for one bench run (``extra``: more PYATS_* overrides, without the prefix)."""
    env = {
        **os.environ,
        "PYATS_NATS_URL": nats_url,
        "PYATS_METRICS_PORT": str(free_port()),
        "PYATS_SSH_STRICT_HOST_KEY_CHECKING": "no",
        "PYATS_LOG_LEVEL": "WARNING",
        "PYATS_LOGIN_RATE_PER_SECOND": "0",
        "PYATS_RATE_LIMIT_REQUESTS": "0",
        "PYATS_MAX_CONCURRENT_DEVICES": str(concurrency),
        "PYATS_MAX_PARALLEL_PER_REQUEST": str(concurrency),
        "PYATS_MAX_DEVICES_PER_REQUEST": str(max(max_devices, 1)),
        "PYATS_MAX_PAYLOAD_BYTES": str(max(1_000_000, 400 * max_devices)),
        "PYATS_SESSION_IDLE_TTL": "60",
        "PYATS_SSH_BACKEND": backend,
    }
    env.update({f"PYATS_{key.upper()}": value for key, value in extra.items()})
    return env


class ServiceProcess(ChildService):
    """``with ServiceProcess(env, log_path) as service: service.pid``; ready once entered."""

    def __init__(self, env: dict[str, str], log_path: Path, nats_url: str, external_workers: int = 0) -> None:
        super().__init__(env, log_path, self._command(external_workers))

    @staticmethod
    def _command(external_workers: int) -> list[str]:
        """``pyats-ro serve``; with external workers, ``pyats-ro worker`` commands started first by a shell
        that then becomes the service (``exec``), so the workers count in the service's process tree."""
        if not external_workers:
            return SERVE
        worker = f"{shlex.quote(sys.executable)} -m service worker --env-file /dev/null --id"
        starts = " ".join(f"{worker} bench-x{n} &" for n in range(1, external_workers + 1))
        return ["/bin/sh", "-c", f"{starts} exec {shlex.join(SERVE)}"]

    def start(self) -> ServiceProcess:
        """Started and ready: /readyz also waits for Genie's parsers, which load in the background at
        start (seconds of CPU); a cold scenario started before would count that load as device work."""
        super().start()
        try:
            self.wait_ready(SERVICE_START_TIMEOUT)
        except (TimeoutError, RuntimeError) as exc:
            self.stop()
            raise ServiceStartError(str(exc)) from None
        return self

    def stop(self, timeout: float = SERVICE_STOP_TIMEOUT) -> int | None:
        return super().stop(timeout)

    def __enter__(self) -> ServiceProcess:
        return self.start()
