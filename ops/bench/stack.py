"""Child processes of the bench: nats-server, the lab, the service under test.

nats-server and the lab come from the service's own helpers (``LocalNatsServer``,
``LabProcess``); the service is ``python -m service serve`` with the bench settings
in its environment.  Every child is stopped in ``stop()`` (SIGTERM, then kill).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bus import wait_ready
from procfs import ProcessTree, stat_fields

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


class ServiceProcess:
    """``with ServiceProcess(env, log_path) as service: service.pid``; ready once entered."""

    def __init__(self, env: dict[str, str], log_path: Path, nats_url: str, external_workers: int = 0) -> None:
        self._external_workers = external_workers
        self._env = env
        self._log_path = log_path
        self._nats_url = nats_url
        self._process: subprocess.Popen[bytes] | None = None

    def _command(self) -> list[str]:
        """``pyats-ro serve``; with external workers, ``pyats-ro worker`` commands started first by a shell
        that then becomes the service (``exec``), so the workers count in the service's process tree."""
        serve = [sys.executable, "-m", "service", "serve", "--env-file", os.devnull]
        if not self._external_workers:
            return serve
        worker = f"{shlex.quote(sys.executable)} -m service worker --env-file /dev/null --id"
        starts = " ".join(f"{worker} bench-x{n} &" for n in range(1, self._external_workers + 1))
        return ["/bin/sh", "-c", f"{starts} exec {shlex.join(serve)}"]

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self._log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def start(self) -> ServiceProcess:
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._log_path.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                self._command(),
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            asyncio.run(wait_ready(self._nats_url, SERVICE_START_TIMEOUT, self.alive))
            self._wait_parsers_warm()
        except (TimeoutError, RuntimeError) as exc:
            code = self._process.poll()
            self.stop()
            raise ServiceStartError(f"{exc} (exit code {code}); service log tail:\n{self.log_tail()}") from None
        return self

    def _wait_parsers_warm(self) -> None:
        """Until /readyz says ready: Genie's parsers load in the background at start (seconds of
        CPU), and a cold scenario started before would count that load as device work."""
        port = self._env.get("PYATS_METRICS_PORT")
        if not port or port == "0":
            return
        deadline = time.monotonic() + SERVICE_START_TIMEOUT
        while time.monotonic() < deadline and self.alive():
            url = f"http://127.0.0.1:{port}/readyz"
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"/readyz did not say ready within {SERVICE_START_TIMEOUT:g}s")

    def stop(self) -> int | None:
        """SIGTERM, wait, then SIGKILL; also kills any descendant left behind (e.g. ssh clients)."""
        process, self._process = self._process, None
        if process is None:
            return None
        leftovers = [pid for pid in ProcessTree(process.pid).members() if pid != process.pid]
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(SERVICE_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        for pid in leftovers:  # descendants of a moment ago still running (pid reuse within seconds is unlikely)
            fields = stat_fields(pid)
            if fields is None or fields[0] == "Z":
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        return process.returncode

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
