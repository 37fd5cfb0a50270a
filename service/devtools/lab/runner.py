"""Start the lab as a subprocess for tests and the demo, and read its log.

A separate process keeps the lab's event loop and CPU apart from the client under
test, as real devices are.  ``LabProcess`` waits for the ready file (not a fixed
sleep), surfaces the lab's stderr if it dies, and always stops it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from service.devtools.lab.log import config_lines, max_concurrent_sessions, read_events, read_log

__all__ = ["LabProcess", "LabStartError", "config_lines", "max_concurrent_sessions", "read_events", "read_log"]


class LabStartError(RuntimeError):
    """The lab exited or did not announce itself in time; carries its stderr."""


class LabProcess:
    """``with LabProcess(["--count", "3", "--os", "ios,nxos"]) as lab: lab.devices``.

    ``args`` are the lab's CLI flags except ``--ready-file`` (always managed
    here) and ``--log`` (use ``log_path``).  Without ``log_path`` the log lives in
    a temporary folder removed by ``stop()``: read it inside the ``with`` block.
    """

    def __init__(
        self,
        args: Sequence[str] = (),
        *,
        log_path: Path | None = None,
        ready_timeout: float = 20.0,
        stop_timeout: float = 5.0,
    ) -> None:
        self._args = list(args)
        self._requested_log = log_path
        self._ready_timeout = ready_timeout
        self._stop_timeout = stop_timeout
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._stderr: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self.devices: list[dict[str, Any]] = []
        self.log_path: Path = Path()

    def start(self) -> LabProcess:
        """Launch the lab and block until it is ready (or raise ``LabStartError``)."""
        self._tmp = tempfile.TemporaryDirectory(prefix="pyats-ro-lab-")
        folder = Path(self._tmp.name)
        self.log_path = self._requested_log or folder / "lab.jsonl"
        ready = folder / "ready.json"
        self._stderr = (folder / "stderr.txt").open("w+b")
        command = [sys.executable, "-m", "service.devtools.lab", *self._args]
        command += ["--ready-file", str(ready), "--log", str(self.log_path)]
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr
        )
        deadline = time.monotonic() + self._ready_timeout
        while not ready.exists():
            if self._process.poll() is not None:
                message = f"lab exited with code {self._process.returncode}: {self.stderr()}"
                self.stop()
                raise LabStartError(message)
            if time.monotonic() > deadline:
                message = f"lab not ready after {self._ready_timeout} s: {self.stderr()}"
                self.stop()
                raise LabStartError(message)
            time.sleep(0.02)
        document = json.loads(ready.read_text(encoding="utf-8"))
        self.devices = list(document["devices"])
        return self

    def stderr(self) -> str:
        """What the lab wrote to stderr so far."""
        if self._stderr is None:
            return ""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", errors="replace")

    def stop(self) -> int | None:
        """SIGTERM, then kill after ``stop_timeout``; returns the exit code."""
        code: int | None = None
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
                try:
                    self._process.wait(self._stop_timeout)
                except subprocess.TimeoutExpired:
                    self._process.kill()
                    self._process.wait()
            code = self._process.returncode
            self._process = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        return code

    def read_log(self) -> list[dict[str, Any]]:
        """The lab's received-line entries so far (session events left out)."""
        return read_log(self.log_path)

    def read_events(self) -> list[dict[str, Any]]:
        """The lab's session events so far (``session_open``, ``session_close``, ...)."""
        return read_events(self.log_path)

    def max_concurrent_sessions(self) -> dict[int, int]:
        """The most sessions each device port had open at once, so far."""
        return max_concurrent_sessions(self.log_path)

    def config_lines(self) -> list[dict[str, Any]]:
        """Entries flagged ``config``: should be empty for a read-only client."""
        return config_lines(self.log_path)

    def __enter__(self) -> LabProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
