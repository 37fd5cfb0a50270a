"""The service as a child process (``python -m service serve``), for the tests, the bench and the demo.

Configured by environment only (``--env-file /dev/null``), logging to a file, ready once its own
``/readyz`` answers 200 (so parsers are warm and device workers live), and stopped with SIGTERM,
then SIGKILL, along with any descendant it left behind (device workers, ssh clients).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

SERVE = [sys.executable, "-m", "service", "serve", "--env-file", os.devnull]


class ServiceExitedError(RuntimeError):
    """The service stopped before it was ready; the message ends with its log's tail."""


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux /proc; empty elsewhere)."""
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            with contextlib.suppress(OSError):
                children = [int(child) for child in (task / "children").read_text().split()]
                found.extend(children)
                pending.extend(children)
    return found


class ServiceProcess:
    """``with ServiceProcess(env, log_path).start().wait_ready() as service: ...``"""

    def __init__(
        self, env: dict[str, str], log_path: Path, command: list[str] | None = None, ready_url: str | None = None
    ) -> None:
        """``ready_url``: what answers 200 once ready (default: this service's /readyz on PYATS_METRICS_PORT);
        a front door (``pyats-ro http``) gives its own."""
        self.env = env
        self.log_path = log_path
        self.command = command or SERVE
        self.metrics_port = int(env.get("PYATS_METRICS_PORT", "0"))
        self.ready_url = ready_url or (f"http://127.0.0.1:{self.metrics_port}/readyz" if self.metrics_port else None)
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = False
        self._below: list[int] = []  # its descendants when it was asked to stop

    @property
    def pid(self) -> int:
        assert self._process is not None, "not started"
        return self._process.pid

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> ServiceProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                self.command, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    def wait_ready(self, timeout: float = 60.0) -> ServiceProcess:
        """Poll this instance's own /readyz (other replicas may already answer pings)."""
        url = self.ready_url
        if url is None or not url.startswith("http://"):
            raise ValueError("wait_ready needs PYATS_METRICS_PORT set to a port, or an http:// ready_url")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                code = self._process.poll() if self._process is not None else None
                raise ServiceExitedError(f"service exited early (exit code {code}):\n{self.log_tail(40)}")
            with contextlib.suppress(urllib.error.URLError, OSError), urllib.request.urlopen(url, timeout=1) as answer:  # noqa: S310 - http only, checked above
                if answer.status == 200:
                    return self
            time.sleep(0.1)
        raise TimeoutError(f"service not ready after {timeout:g}s:\n{self.log_tail(40)}")

    def begin_stop(self) -> None:
        """SIGTERM without waiting (``stop`` then waits): many services stop at once."""
        if self._process is not None and self._process.poll() is None and not self._stopping:
            self._below = descendants(self._process.pid)
            self._process.send_signal(signal.SIGTERM)
            self._stopping = True

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, wait up to ``timeout``, then SIGKILL; descendants still running are killed too."""
        process = self._process
        if process is None:
            return None
        self.begin_stop()
        self._process, self._stopping = None, False
        below, self._below = self._below, []
        if process.poll() is None:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        for pid in below:  # still running a moment later (pid reuse within seconds is unlikely)
            with contextlib.suppress(OSError):
                if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    os.kill(pid, signal.SIGKILL)
        return process.returncode

    def __enter__(self) -> ServiceProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
