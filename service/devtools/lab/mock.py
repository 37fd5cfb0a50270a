"""A lab session whose shell is Cisco's own Unicon mock device (``mock_device_cli``).

The mock is an independent peer: Cisco wrote its prompts, state machine and
recorded outputs (``unicon/plugins/tests/mock_data/<os>/*.yaml``), so a client
that works against it is not merely agreeing with our own fake.  The lab keeps
the SSH side (listener, auth, VTY accounting) and runs the mock behind it:

    SSH channel  --lines logged here-->  pty master  <-->  mock_device_cli --os OS --state STATE

Why a child process on a pty and not ``unicon.mock.mock_device.MockDevice`` in
the lab's event loop: the CLI is the mock's public interface; the class wants
socket-like transports registered by port (private API), and its recorded
``timing`` sleeps would block every other device of the lab.  The pty matters
too: the mock reads with linenoise, which echoes and edits like a terminal only
on a tty, and which asks the terminal for its cursor position unless the pty
has a window size (set here, wide enough that no command wraps).

Every line received from the client is logged before the mock sees it, with
the mode taken from the mock's last prompt, so the read-only proof covers these
sessions: a line typed at a ``(config...)#`` prompt, or one that enters config
mode, is flagged ``config``.  A line typed right after a ``Password:`` prompt is
logged as the placeholder.

The mock program and its data come from the installed unicon package, found
through ``importlib`` at run time; nothing of them is copied into this project.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import fcntl
import importlib.util
import os
import pty
import re
import struct
import sys
import termios
from functools import cache
from pathlib import Path

from service.devtools.lab.log import PASSWORD_PLACEHOLDER, CommandLog, enters_config_mode
from service.devtools.lab.spec import DeviceSpec, MockSpec, SpecError
from service.devtools.lab.terminal import CTRL_C, CTRL_Z, Channel

# What the ``mock_device_cli`` console script runs, without depending on PATH.
MOCK_PROGRAM = "import sys; from unicon.mock import main; sys.argv[0] = 'mock_device_cli'; sys.exit(main())"
WINDOW_ROWS = 24
WINDOW_COLUMNS = 511
STOP_GRACE = 2.0
_TAIL = 256
_PASSWORD_PROMPT = re.compile(r"password:\s*$", re.I)
_CONFIG_PROMPT = re.compile(r"\((?:conf|config)[^)]*\)#\s*$")
_PRIVILEGED_PROMPT = re.compile(r"#\s*$")


class MockUnavailableError(SpecError):
    """Unicon's mock program or its data for an OS/state is not installed."""


def mock_program_available() -> bool:
    """Whether the installed unicon ships the compiled mock device."""
    try:
        return importlib.util.find_spec("unicon.mock.mock_device") is not None
    except ModuleNotFoundError:
        return False


def mock_data_root() -> Path | None:
    """``unicon/plugins/tests/mock_data`` of the installed unicon, if present."""
    try:
        found = importlib.util.find_spec("unicon.plugins.tests")
    except ModuleNotFoundError:
        return None
    if found is None or not found.submodule_search_locations:
        return None
    root = Path(next(iter(found.submodule_search_locations))) / "mock_data"
    return root if root.is_dir() else None


@cache
def _mock_texts(os_name: str) -> tuple[str, ...]:
    """The YAML files of ``os_name``'s mock data, read once per process."""
    root = mock_data_root()
    folder = None if root is None else root / os_name
    if folder is None or not folder.is_dir():
        return ()
    return tuple(path.read_text(encoding="utf-8") for path in sorted(folder.glob("*.yaml")))


def has_state(os_name: str, state: str) -> bool:
    """Whether the mock data defines ``state`` as a top-level key.

    A line scan, not a YAML parse: parsing every file of every OS took ~1 s at
    each lab and test start-up, and the mock itself stays the authority.
    """
    pattern = re.compile(rf"^[\"']?{re.escape(state)}[\"']?\s*:", re.M)
    return any(pattern.search(text) for text in _mock_texts(os_name))


def check_mock(mock: MockSpec) -> Path:
    """The mock data folder for ``mock``; a clear error when it cannot be served."""
    if not mock_program_available():
        raise MockUnavailableError("unicon's mock device (unicon.mock.mock_device) is not installed")
    root = mock_data_root()
    if root is None:
        raise MockUnavailableError("unicon's mock data (unicon/plugins/tests/mock_data) is not installed")
    if not (root / mock.os).is_dir():
        raise MockUnavailableError(f"unicon ships no mock data for os {mock.os!r} (looked in {root})")
    if not has_state(mock.os, mock.state):
        raise MockUnavailableError(f"unicon's {mock.os} mock data has no state {mock.state!r}")
    return root / mock.os


def mock_command(mock: MockSpec, hostname: str) -> list[str]:
    """The child's argv: ``mock_device_cli`` run by this interpreter.

    No ``--mock_data_dir``: the mock then reads the data of its own package, where
    its ``file:`` responses (``mock_data/<os>/*.txt``) resolve; ``check_mock`` has
    found that data through ``importlib`` first.
    """
    check_mock(mock)
    return [
        sys.executable,
        "-c",
        MOCK_PROGRAM,
        "--os",
        mock.os,
        "--state",
        mock.state,
        "--hostname",
        hostname,
    ]


def _mode(tail: str) -> str:
    """The log's mode name for the prompt the mock printed last."""
    last = tail.rsplit("\n", 1)[-1]
    if _CONFIG_PROMPT.search(last):
        return "config"
    if _PRIVILEGED_PROMPT.search(last):
        return "privileged"
    return "exec"


class MockShell:
    """One SSH session served by one mock device child process."""

    def __init__(self, device: DeviceSpec, channel: Channel, log: CommandLog) -> None:
        if device.mock is None:
            raise SpecError(f"device {device.name} has no mock")
        self._device = device
        self._mock = device.mock
        self._channel = channel
        self._log = log
        self._tail = ""
        self._line: list[str] = []
        self._line_context: tuple[str, bool] | None = None  # mode and secrecy when the line began
        self._skip_lf = False

    async def run(self) -> None:
        """Serve until the client leaves or the mock exits; the child is always stopped."""
        command = mock_command(self._mock, self._device.name)
        master, replica = pty.openpty()
        fcntl.ioctl(replica, termios.TIOCSWINSZ, struct.pack("HHHH", WINDOW_ROWS, WINDOW_COLUMNS, 0, 0))
        try:
            process = await asyncio.create_subprocess_exec(
                *command, stdin=replica, stdout=replica, stderr=replica, close_fds=True
            )
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(replica)
        os.set_blocking(master, False)
        reader = asyncio.create_task(self._from_mock(master))
        writer = asyncio.create_task(self._from_client(master))
        try:
            await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, writer):
                task.cancel()
            await asyncio.gather(reader, writer, return_exceptions=True)
            await _stop(process)
            os.close(master)

    async def _from_mock(self, master: int) -> None:
        """Copy the mock's output to the client, remembering its tail (the prompt)."""
        loop = asyncio.get_running_loop()
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        readable = asyncio.Event()
        loop.add_reader(master, readable.set)
        try:
            while True:
                await readable.wait()
                readable.clear()
                try:
                    data = os.read(master, 65536)
                except BlockingIOError:
                    continue
                except OSError:  # EIO: the mock exited and the pty closed
                    return
                if not data:
                    return
                text = decoder.decode(data)
                self._tail = (self._tail + text)[-_TAIL:]
                self._channel.write(text)
                await self._channel.drain()
        finally:
            loop.remove_reader(master)

    async def _from_client(self, master: int) -> None:
        """Log each completed line, then hand the bytes to the mock unchanged."""
        loop = asyncio.get_running_loop()
        while True:
            data = await self._channel.read()
            if not data:
                return
            self._log_lines(data)
            pending = data.encode("utf-8")
            while pending:
                try:
                    written = os.write(master, pending)
                except BlockingIOError:
                    ready = loop.create_future()
                    loop.add_writer(master, ready.set_result, None)
                    try:
                        await ready
                    finally:
                        loop.remove_writer(master)
                    continue
                pending = pending[written:]

    def _log_lines(self, data: str) -> None:
        for char in data:
            if self._skip_lf:
                self._skip_lf = False
                if char == "\n":
                    continue
            if self._line_context is None:  # before any echo of this line can change the tail
                last = self._tail.rsplit("\n", 1)[-1]
                self._line_context = (_mode(self._tail), bool(_PASSWORD_PROMPT.search(last)))
            self._log_key(char)

    def _log_key(self, char: str) -> None:
        """One key typed into the line being logged, as the device's line editor takes it."""
        if char in "\r\n":
            self._skip_lf = char == "\r"
            self._record("".join(self._line))
        elif char in "\b\x7f":
            if self._line:
                self._line.pop()
        elif char == CTRL_C:
            self._line.clear()
            self._line_context = None
        elif char == CTRL_Z:
            self._record("^Z")
        elif char >= " " or char == "\t":
            self._line.append(char)

    def _record(self, line: str) -> None:
        mode, secret = self._line_context or (_mode(self._tail), False)
        self._line_context = None
        self._line.clear()
        if secret:
            self._log.record(
                device=self._device.name, port=self._device.port, mode=mode, line=PASSWORD_PLACEHOLDER, config=False
            )
            return
        config = mode == "config" or enters_config_mode(line)
        self._log.record(device=self._device.name, port=self._device.port, mode=mode, line=line, config=config)


async def _stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM the mock, then SIGKILL after ``STOP_GRACE``."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
