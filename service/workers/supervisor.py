"""The device worker processes ``pyats-ro serve`` starts on its own host, kept running.

Each is ``python -m service worker --id <front>-<n>``, with the front's environment (and
``--env-file``), so it reads the same settings. A worker that exits is started again after
a back-off (1 s, doubling to 30 s; back to 1 s once one ran for a minute); while it is
away, the other workers own its partitions.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from loguru import logger

RESTART_FIRST = 1.0
RESTART_MAX = 30.0
HEALTHY_AFTER = 60.0


class _Child:
    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.delay = RESTART_FIRST
        self.restart_at = 0.0


class WorkerSupervisor:
    def __init__(self, count: int, front: str, env_file: str | None, env: dict[str, str] | None = None) -> None:
        self._children = [_Child(f"{front}-{n}") for n in range(1, count + 1)]
        self._env_file = env_file
        self._env = {**os.environ, **(env or {})}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="worker-supervisor", daemon=True)
        self.restarts = 0

    @property
    def worker_ids(self) -> list[str]:
        return [child.worker_id for child in self._children]

    def pids(self) -> list[int]:
        return [c.process.pid for c in self._children if c.process is not None and c.process.poll() is None]

    def start(self) -> None:
        for child in self._children:
            self._spawn(child)
        self._thread.start()

    def _spawn(self, child: _Child) -> None:
        command = [sys.executable, "-m", "service", "worker", "--id", child.worker_id, "--parent", str(os.getpid())]
        if self._env_file:
            command += ["--env-file", self._env_file]
        child.process = subprocess.Popen(command, env=self._env, stdin=subprocess.DEVNULL)  # noqa: S603 - our own module
        child.started = time.monotonic()

    def _watch(self) -> None:
        while not self._stopping.wait(0.5):
            now = time.monotonic()
            for child in self._children:
                process = child.process
                if process is None or process.poll() is None:
                    continue
                if child.restart_at == 0.0:
                    if now - child.started >= HEALTHY_AFTER:
                        child.delay = RESTART_FIRST
                    child.restart_at = now + child.delay
                    logger.warning(
                        "device worker {} exited with {}; starting it again in {:.0f}s",
                        child.worker_id,
                        process.returncode,
                        child.delay,
                    )
                    child.delay = min(child.delay * 2, RESTART_MAX)
                elif now >= child.restart_at and not self._stopping.is_set():
                    child.restart_at = 0.0
                    self.restarts += 1
                    self._spawn(child)

    def stop(self, grace: float) -> None:
        """SIGTERM every worker (each finishes its devices and leaves), then SIGKILL after ``grace``."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(5)
        running = [c.process for c in self._children if c.process is not None and c.process.poll() is None]
        for process in running:
            process.terminate()
        deadline = time.monotonic() + grace
        for process in running:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("device worker {} did not stop within {:g}s; killed", process.pid, grace)
                process.kill()
                process.wait(5)
