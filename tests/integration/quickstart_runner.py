"""Run shell steps the way a reader of the README would, and write down what happened.

``test_readme_quickstart.py`` hands this script a plan (JSON): the working directory, the
steps in order, each either a long-running one ("keeps running" in the README: started in
the background, stopped at the end with Ctrl-C) or a one-shot one (must finish), and what
to wait for before the one-shot steps (HTTP URLs answering 200, TCP ports accepting).

It is a separate script so that the test can run it inside a private network namespace
(``unshare --net --map-root-user``): the README's fixed ports (4222, 9464, 10022...) are
then the namespace's own, and never collide with anything else on the machine. With
``--private-network`` it brings the namespace's loopback up first.

    python tests/integration/quickstart_runner.py plan.json report.json [--private-network]
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1


def loopback_up() -> None:
    """A new network namespace starts with ``lo`` down (what ``ip link set lo up`` does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | _IFF_UP))


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _tcp_open(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return False
    return True


def _tail(path: Path, size: int = 4000) -> str:
    return path.read_text(errors="replace")[-size:] if path.exists() else ""


class Background:
    """A long-running step in its own session, so Ctrl-C can be sent to all it started."""

    def __init__(self, index: int, command: str, workdir: Path, env: dict[str, str], log: Path) -> None:
        self.index, self.command, self.log = index, command, log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                ["bash", "-c", command],
                cwd=workdir,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def group_alive(self) -> bool:
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self, grace: float) -> dict[str, Any]:
        """Ctrl-C to the whole group, as in a terminal; SIGKILL whatever is left after ``grace``."""
        started = time.monotonic()
        if self.group_alive():
            os.killpg(self.process.pid, signal.SIGINT)
        while self.group_alive() and time.monotonic() - started < grace:
            self.process.poll()
            time.sleep(0.1)
        stopped_by_ctrl_c = not self.group_alive()
        if not stopped_by_ctrl_c:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        return {
            "index": self.index,
            "command": self.command,
            "background": True,
            "stopped_by_ctrl_c": stopped_by_ctrl_c,
            "stop_seconds": round(time.monotonic() - started, 2),
            "output": _tail(self.log),
        }


def wait_until_ready(plan: dict[str, Any], running: list[Background], deadline: float) -> str | None:
    """None when every URL and port answers; otherwise why not."""
    pending_http, pending_tcp = list(plan.get("wait_http", [])), list(plan.get("wait_tcp", []))
    while time.monotonic() < deadline:
        for step in running:
            if step.process.poll() is not None:
                return f"step {step.index} ({step.command!r}) exited with {step.process.returncode} before ready"
        pending_http = [url for url in pending_http if not _http_ok(url)]
        pending_tcp = [address for address in pending_tcp if not _tcp_open(address)]
        if not pending_http and not pending_tcp:
            return None
        time.sleep(0.2)
    return f"not ready in time: {pending_http + pending_tcp}"


def run(plan: dict[str, Any], logs: Path) -> dict[str, Any]:
    workdir = Path(plan["workdir"])
    env = {**os.environ, **plan.get("env", {})}
    started = time.monotonic()
    deadline = started + float(plan["timeout"])
    running: list[Background] = []
    report: dict[str, Any] = {"steps": [], "error": None}
    try:
        for index, step in enumerate(plan["steps"]):
            if step["background"]:
                running.append(Background(index, step["command"], workdir, env, logs / f"step-{index}.log"))
                continue
            problem = wait_until_ready(plan, running, deadline)
            if problem:
                report["error"] = problem
                break
            begun = time.monotonic()
            try:
                done = subprocess.run(
                    ["bash", "-c", step["command"]],
                    cwd=workdir,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=max(1.0, deadline - time.monotonic()),
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                report["error"] = f"step {index} ({step['command']!r}) still running after the deadline: {exc}"
                break
            report["steps"].append(
                {
                    "index": index,
                    "command": step["command"],
                    "background": False,
                    "returncode": done.returncode,
                    "stdout": done.stdout,
                    "stderr": done.stderr[-4000:],
                    "seconds": round(time.monotonic() - begun, 2),
                }
            )
    finally:
        for background in running:
            report["steps"].append(background.stop(float(plan.get("stop_grace", 30))))
        report["steps"].sort(key=lambda entry: entry["index"])
        report["seconds"] = round(time.monotonic() - started, 2)
    return report


def main(argv: list[str]) -> int:
    plan_path, report_path = Path(argv[0]), Path(argv[1])
    if "--private-network" in argv:
        loopback_up()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # still stop the background steps
    plan = json.loads(plan_path.read_text())
    report = run(plan, report_path.parent)
    report_path.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
