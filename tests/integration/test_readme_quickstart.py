"""The README's first-request steps, run as written in a fresh copy of the repository.

The steps are the ```bash blocks between ``<!-- quickstart -->`` and ``<!-- /quickstart -->``
in README.md. A command whose comment says "keeps running" (``make run``, ``make lab``) is
started in the background, the way a reader starts it in its own terminal, and stopped at
the end with Ctrl-C; every other command must finish with exit code 0. Editing the README
so that a step no longer works, or no longer stops on Ctrl-C, fails this test.

What "fresh copy" means: every file git would commit now (``git ls-files --cached --others
--exclude-standard``: tracked files plus new files that are not ignored), copied from the
working tree. In CI that is exactly a clean clone; on a developer's machine it also holds
the README and code being changed, which a ``git clone`` of HEAD would miss. Ignored files
(.venv, .data, .env, caches) are not copied, so nothing local leaks in.

Reinstalling every dependency would take minutes, so the copy's ``.venv`` is a symlink to
the virtual environment running this test. The Makefile reinstalls when its stamp
``.venv/.installed-<cksum of pyproject.toml>`` is missing or older than pyproject.toml; the
copy's pyproject.toml is therefore dated back, and the test is skipped when the stamp is
missing (run ``make`` once), because a reinstall from the copy would repoint the shared
environment's editable install at a temporary folder.

The README uses fixed ports (4222, 9464, 10022-10031). Where unprivileged user namespaces
work, the steps run in a private network namespace (``unshare --net --map-root-user``) with
its own loopback, so they collide with nothing on the machine; elsewhere the test runs on
the host's ports and is skipped when one is taken. ``make test`` itself is not run here:
CI runs it (``.ci/run``), and it would include this test.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from service.cli.main import parser as cli_parser
from service.config import Settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RUNNER = Path(__file__).with_name("quickstart_runner.py")
BEGIN, END = "<!-- quickstart -->", "<!-- /quickstart -->"
SUMMARY = re.compile(r"^request \S+: (\d+)/(\d+) devices ok in [\d.]+s$", re.MULTILINE)


@dataclass(frozen=True)
class Step:
    command: str
    background: bool


def quickstart_region(readme: str) -> str:
    assert readme.count(BEGIN) == 1 and readme.count(END) == 1, f"README.md needs one {BEGIN} ... {END} block"
    return readme.split(BEGIN, 1)[1].split(END, 1)[0]


def fenced_blocks(region: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced code block, in order."""
    return re.findall(r"^```(\w*)\n(.*?)^```$", region, flags=re.MULTILINE | re.DOTALL)


def split_comment(line: str) -> tuple[str, str]:
    """A shell line's command and its trailing ``# comment`` (a ``#`` inside quotes is kept)."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].strip(), line[index + 1 :].strip()
    return line.strip(), ""


def quickstart_steps(readme: str) -> list[Step]:
    steps = []
    for language, body in fenced_blocks(quickstart_region(readme)):
        if language not in {"bash", "sh"}:
            continue
        for line in re.sub(r"\\\n\s*", " ", body).splitlines():
            command, comment = split_comment(line)
            if command:
                steps.append(Step(command, background="keeps running" in comment))
    return steps


def request_devices(command: str) -> list[str]:
    """The ``-d host:port`` targets of a ``pyats-ro request`` command, read by the CLI's own parser."""
    words = shlex.split(command)
    starts = [i for i, word in enumerate(words) if word.rsplit("/", 1)[-1] == "pyats-ro"]
    if not starts or words[starts[0] + 1 : starts[0] + 2] != ["request"]:
        return []
    args = cli_parser().parse_args(words[starts[0] + 1 :])
    return list(args.device or [])


def copy_repository(destination: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is not copied
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


def install_stamp(venv: Path) -> Path:
    """The Makefile's stamp name: ``$(VENV)/.installed-$(cat pyproject.toml | cksum | cut -d' ' -f1)``."""
    cksum = subprocess.run(
        ["cksum"], input=(ROOT / "pyproject.toml").read_bytes(), capture_output=True, check=True
    ).stdout.split()[0]
    return venv / f".installed-{cksum.decode()}"


def private_network() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--net", "--map-root-user", "true"], capture_output=True, check=False)
    return probe.returncode == 0


def port_taken(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_readme_steps_are_found() -> None:
    steps = quickstart_steps((ROOT / "README.md").read_text())
    assert "make run" in [s.command for s in steps if s.background], "the service step keeps running"
    foreground = [s for s in steps if not s.background]
    assert foreground and request_devices(foreground[-1].command), "the last step sends a request to lab devices"


def test_readme_first_request_works_in_a_fresh_copy(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    steps = quickstart_steps(readme)
    devices = [device for step in steps for device in request_devices(step.command)]
    venv = Path(sys.prefix)
    if not install_stamp(venv).exists():
        pytest.skip(f"{venv} has no install stamp for this pyproject.toml: run `make` once")

    workdir, logs = tmp_path / "copy", tmp_path / "logs"
    workdir.mkdir()
    logs.mkdir()
    copy_repository(workdir)
    (workdir / ".venv").symlink_to(venv, target_is_directory=True)
    os.utime(workdir / "pyproject.toml", (0, 0))  # older than the stamp: make does not reinstall

    metrics_port = Settings.defaults().metrics.port
    isolated = private_network()
    if not isolated:
        fixed = [
            cli_parser().parse_args(["serve"]).nats_port,
            metrics_port,
            *(int(d.rsplit(":", 1)[1]) for d in devices),
        ]
        if taken := [port for port in fixed if port_taken(port)]:
            pytest.skip(f"no private network namespace here, and ports {taken} are in use")

    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYATS_", "VENV", "MAKE"))}
    plan = {
        "workdir": str(workdir),
        "steps": [{"command": s.command, "background": s.background} for s in steps],
        "wait_http": [f"http://127.0.0.1:{metrics_port}/readyz"],
        "wait_tcp": devices,
        "timeout": 90,
        "stop_grace": 30,
        "env": env,
    }
    (logs / "plan.json").write_text(json.dumps(plan))
    command = [sys.executable, str(RUNNER), str(logs / "plan.json"), str(logs / "report.json")]
    if isolated:
        command = ["unshare", "--net", "--map-root-user", *command, "--private-network"]
    runner = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert runner.returncode == 0, runner.stderr
    report = json.loads((logs / "report.json").read_text())
    transcript = json.dumps(report, indent=2)

    assert report["error"] is None, transcript
    assert len(report["steps"]) == len(steps), transcript
    for step in report["steps"]:
        if step["background"]:
            assert step["stopped_by_ctrl_c"], f"{step['command']!r} did not stop on Ctrl-C:\n{transcript}"
        else:
            assert step["returncode"] == 0, f"{step['command']!r} failed:\n{transcript}"

    summary = SUMMARY.findall(report["steps"][-1]["stdout"])
    assert summary == [(str(len(devices)), str(len(devices)))], transcript
    shown = [SUMMARY.findall(body) for language, body in fenced_blocks(quickstart_region(readme)) if language == "text"]
    assert summary in shown, "the README's sample output no longer looks like the real output"
    service_log = next(s["output"] for s in report["steps"] if s["command"] == "make run")
    assert "started bundled nats-server" in service_log, service_log
    assert re.search(r"\| stopped$", service_log, re.MULTILINE), f"no orderly shutdown on Ctrl-C:\n{service_log}"
