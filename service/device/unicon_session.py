"""Unicon sessions that are read-only from the first byte.

Unicon's default login enters config mode (``HA_INIT_CONFIG_COMMANDS``, and on IOS-XR
``IOSXR_INIT_CONFIG_COMMANDS``); both are emptied here, and the exec commands sent at
login are only ``terminal`` settings. Unicon answers the password prompts itself from
``credentials``, so no password is ever on a command line. Library errors become our
``CommandError`` here and our ``ConnectError`` in ``connect_errors``, and nowhere else.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger
from unicon import Connection
from unicon.core import errors as unicon_errors
from unicon.utils import Utils

from service.contract.errors import CommandError, ErrorCode, SessionOutOfStepError
from service.device import error_text, reading_services, unicon_logs
from service.device.connect_errors import causes, classify_connect_error
from service.device.device_text import OutputLimitError, over_limit, replaced_so_far, start_command
from service.device.ssh.options import HostKeyPolicy, SshBackend, SshOptions, openssh_command
from service.device.unicon_logs import LogRouter
from service.domain.live_secrets import LIVE_SECRETS
from service.domain.models import FREE_TEXT_PREFIXES, DeviceOS, DeviceTarget, Privilege

if TYPE_CHECKING:
    from service.config import SshSettings
    from service.device.ssh.jumps import JumpHosts

# Sent after login, best effort: a device (or AAA command authorization) may refuse them,
# and the session then answers --More-- itself. The spellings are Unicon's own defaults,
# which both real devices and Unicon's recorded mock devices accept (the IOS, IOS-XE and
# NX-OS mocks refuse the long ``terminal length 0``).
TERMINAL_SETTINGS: dict[DeviceOS, tuple[str, ...]] = {
    DeviceOS.IOS: ("term length 0", "term width 0"),
    DeviceOS.IOSXE: ("term length 0", "term width 0"),
    DeviceOS.IOSXR: ("terminal length 0", "terminal width 0"),
    DeviceOS.NXOS: ("term length 0", "term width 511"),
    DeviceOS.ASA: ("terminal pager 0",),
}

# Settings only take effect when passed at construction (FACTS.md). Unicon's fixed waits
# (a 6-poll "still connected?" check and a 0.1 s re-check after every prompt) cost ~245 ms
# per command; they are off here, and exactness is kept per command instead:
# - liveness: ``is_alive()`` before a warm session is reused, one retry on a fresh login;
# - free-text commands, whose output may hold a prompt-like line (banners, logs), keep one
#   0.1 s re-check after the prompt, so a pause after such a line cannot truncate them.
BASE_SETTINGS: dict[str, Any] = {
    "HA_INIT_CONFIG_COMMANDS": [],
    "IOSXR_INIT_CONFIG_COMMANDS": [],
    "POST_DISCONNECT_WAIT_SEC": 0,
    "GRACEFUL_DISCONNECT_WAIT_SEC": 0,
    "CONNECTED_CHECK_COUNT": 0,
    "EXECUTE_MATCHED_RETRIES": 0,
}


# A device's refusal of a command, as the first lines of its output.
_REFUSAL = re.compile(
    r"^\s*(\^\s*)?(ERROR:\s*)?%\s*(invalid|incomplete|ambiguous|unrecognized) (command|input)", re.I | re.M
)
# AAA command authorization (TACACS+) or a privilege level that lacks the command.
_NOT_AUTHORIZED = re.compile(
    r"^\s*%\s*(authorization failed|command authorization failed|not authorized|permission denied)", re.I | re.M
)
WARNED_SETTINGS: set[tuple[str, int, str]] = set()  # (host, port, line) already warned about
WARNED_SETTINGS_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """The device layer's options, the same for every device (``ssh_for`` adds the device's own)."""

    strict_host_key_checking: HostKeyPolicy = HostKeyPolicy.ACCEPT_NEW
    known_hosts_file: Path | None = None
    backend: SshBackend = SshBackend.PTY
    free_text_prefixes: tuple[str, ...] = FREE_TEXT_PREFIXES
    free_text_retry_sleep: float = 0.1
    # OpenSSH-style ssh_config (``-F``): Host patterns, HostName, ProxyJump, IdentityFile, ... (both backends)
    ssh_config_file: Path | None = None
    identity_file: Path | None = None  # a device key (``-i``), tried before the password
    jump_host: str | None = None  # ProxyJump for every device (``-J [user@]host[:port][,...]``)
    # paramiko backend only (OpenSSH has no such options): new connections per second through
    # one jump host, and the environment variable holding the jump hosts' password
    jump_rate: float | None = None
    jump_password_env: str | None = None
    # legacy SSH algorithms accepted from every device (``service.domain.legacy_ssh``); a
    # device's own ``DeviceTarget.legacy_algorithms`` (the inventory) replaces this list
    legacy_algorithms: tuple[str, ...] = ()
    # bytes one command's output may bring (0: no limit); past it the command fails with
    # output_too_large and the session is closed, so memory stays bounded
    max_output_bytes: int = 32 << 20

    def __post_init__(self) -> None:
        # their words are accepted too (``"no"``, ``"paramiko"``); kept as the enums
        object.__setattr__(self, "strict_host_key_checking", HostKeyPolicy(self.strict_host_key_checking))
        object.__setattr__(self, "backend", SshBackend(self.backend))

    @classmethod
    def of(cls, ssh: SshSettings) -> SessionOptions:
        """The device layer's options, all from the ``ssh`` settings section."""
        return cls(
            strict_host_key_checking=ssh.strict_host_key_checking,
            known_hosts_file=ssh.known_hosts_file,
            backend=ssh.backend,
            free_text_prefixes=tuple(ssh.free_text_commands),
            free_text_retry_sleep=ssh.free_text_retry_sleep,
            ssh_config_file=ssh.config_file,
            identity_file=ssh.identity_file,
            jump_host=ssh.jump_host,
            jump_rate=ssh.jump_rate,
            jump_password_env=ssh.jump_password_env,
            max_output_bytes=ssh.max_output_bytes,
            legacy_algorithms=tuple(ssh.legacy_algorithms),
        )

    def ssh_for(self, target: DeviceTarget, connect_timeout: float) -> SshOptions:
        """One device's SSH options: these, with the device's own legacy algorithms if it has a list."""
        legacy = target.legacy_algorithms if target.legacy_algorithms is not None else self.legacy_algorithms
        return SshOptions(
            host=target.hostname,
            port=target.port,
            username=target.username,
            connect_timeout=max(1, math.ceil(connect_timeout)),
            host_key_policy=self.strict_host_key_checking,
            known_hosts_file=self.known_hosts_file,
            config_file=self.ssh_config_file,
            identity_file=self.identity_file,
            jump_host=self.jump_host,
            jump_rate=self.jump_rate,
            jump_password_env=self.jump_password_env,
            legacy_algorithms=legacy,
        )


def matched_retries_for(line: str, options: SessionOptions) -> tuple[int, float]:
    """Unicon's after-prompt re-check for one command: none for structured output."""
    if options.free_text_retry_sleep > 0 and line.lower().startswith(options.free_text_prefixes):
        return 1, options.free_text_retry_sleep
    return 0, 0.0


class _Transcript(logging.Handler):
    """What the SSH client printed during login, kept in memory only to classify a failure.

    Unicon drops the pty spawn (and OpenSSH's "REMOTE HOST IDENTIFICATION HAS CHANGED")
    when login fails; its connection log still saw the text. Never logged or returned.
    """

    _LIMIT = 16_384

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self._parts: list[str] = []
        self._size = 0

    def emit(self, record: logging.LogRecord) -> None:
        if self._size < self._LIMIT and not record.getMessage().startswith(">>>"):  # skip what Unicon sent
            text = record.getMessage()[: self._LIMIT - self._size]
            self._parts.append(text)
            self._size += len(text)

    def text(self) -> str:
        return " ".join(self._parts)


def _release(connection: Any, secret_forms: list[str]) -> None:
    """Disconnect, close Unicon's per-connection log file (it never closes it itself), drop
    its per-connection logger from the logging registry (one per login otherwise), and stop
    masking this session's secrets once nothing of it can log any more."""
    with contextlib.suppress(Exception):
        connection.disconnect()
    log = getattr(connection, "log", None)
    if isinstance(log, logging.Logger):
        unicon_logs.release(log)
    LIVE_SECRETS.remove(secret_forms)


def _spawn_buffer(connection: Any) -> str:
    try:
        return str(connection.spawn.buffer or "")
    except Exception:  # noqa: BLE001 - best-effort diagnostics only
        return ""


class UniconSession:
    def __init__(
        self,
        connection: Any,
        target: DeviceTarget,
        options: SessionOptions,
        secret_forms: list[str],
        privilege: Privilege = Privilege.ENABLED,
        pages: bool = False,
    ) -> None:
        self._connection = connection
        self.privilege = privilege
        self.last_transformed: tuple[str, ...] = ()  # what was changed in the last output, if anything
        self.pages = pages  # the device refused to stop paging: its --More-- prompts are answered
        keep_device_text(connection)
        self._target = target
        self._options = options
        self._secret_forms = secret_forms
        self._closed = False
        self._close_lock = threading.Lock()

    def is_alive(self) -> bool:
        try:
            return bool(self._connection.spawn.is_alive())
        except Exception:  # noqa: BLE001 - a broken spawn is a dead session
            return False

    def _drain(self) -> None:
        """Read what the device sent after the last prompt; any of it means an earlier output
        went on after the reader stopped, so this session may not serve another command."""
        spawn = self._connection.spawn
        try:
            while spawn.is_readable(0):  # no waiting: only what already arrived
                spawn.read_update_buffer()
            leftover = len(str(spawn.buffer or ""))
        except Exception as exc:
            raise CommandError(ErrorCode.DISCONNECTED, "the session is gone") from exc
        if leftover:
            raise SessionOutOfStepError(leftover)

    def _rest_after_prompt_like_lines(self, output: str, timeout: float) -> str:
        """Unicon stops at the first text that looks like a prompt, even a line of the output
        followed by a line break (a banner, a log line, ``host#`` in a config); a real prompt is
        never followed by one. Read on to the real prompt and put the pieces back together."""
        spawn = self._connection.spawn
        match = getattr(getattr(spawn, "match", None), "last_match", None)
        seen = match.group(0) if isinstance(match, re.Match) else ""
        if not seen.endswith("\n"):
            return output
        prompt_line = seen.strip()
        # what Unicon's rstrip() took off between the output and that line, and the line break after it
        consumed = str(getattr(spawn.match, "match_output", "") or "")
        head = consumed[: len(consumed) - len(seen)] if consumed.endswith(seen) else consumed
        gap = head[len(head.rstrip()) :] or "\r\n"
        tail = seen[len(seen.rstrip()) :]
        rest = self._read_to_prompt(time.monotonic() + timeout)
        return f"{output}{gap}{prompt_line}{tail}{rest.rstrip()}"

    def _read_to_prompt(self, deadline: float) -> str:
        """Everything up to the real prompt: a last line ending like a prompt with nothing after
        it (its hostname may differ from the prompt-like line's: an output captured elsewhere
        ends with that device's prompt). Only the buffer's tail is searched, so this is linear
        in the output's size; what is read stays subject to the output limit."""
        spawn = self._connection.spawn
        while True:
            text = str(spawn.buffer or "")
            window = len(text) - min(len(text), _PROMPT_WINDOW)
            found = _PROMPT_AT_END.search(text, window)
            if found is not None:
                spawn.buffer = ""
                return text[: found.start()]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CommandError(ErrorCode.COMMAND_TIMEOUT, "no prompt after a prompt-like line in the output")
            if spawn.is_readable(min(remaining, 0.5)):
                spawn.read_update_buffer()

    def execute(self, line: str, timeout: float) -> str:
        retries, sleep = matched_retries_for(line, self._options)
        self._drain()
        spawn = self._connection.spawn
        replaced = replaced_so_far(spawn)
        start_command(spawn, self._options.max_output_bytes)
        self.last_transformed = ()
        try:
            text = self._run(line, timeout, retries, sleep)
        except CommandError as exc:
            if over_limit(spawn):
                raise CommandError(
                    ErrorCode.OUTPUT_TOO_LARGE,
                    f"the output passed {self._options.max_output_bytes} bytes (PYATS_MAX_OUTPUT_BYTES) and was "
                    "not read further; narrow the command with a pipe option",
                ) from exc
            raise
        finally:
            start_command(spawn, 0)
        return self._checked(text, replaced_so_far(spawn) > replaced)

    def _run(self, line: str, timeout: float, retries: int, sleep: float) -> str:
        started = time.monotonic()
        try:
            # error_pattern=[]: output lines such as "WARNING:" are data, not failures; refusals are checked below.
            # Unicon drops a timeout's fraction (0.5 s fired at once, 1.5 s after 1 s): round up, so a
            # command gets at least the time it was given (tests/lab/test_unicon_session.py)
            output = self._connection.execute(
                line, timeout=math.ceil(timeout), error_pattern=[], matched_retries=retries, matched_retry_sleep=sleep
            )
            return self._rest_after_prompt_like_lines(str(output), timeout - (time.monotonic() - started))
        except unicon_errors.TimeoutError as exc:
            raise _no_prompt(timeout) from exc
        except (unicon_errors.EOF, unicon_errors.ConnectionError, OSError, OutputLimitError) as exc:
            raise _closed_during_command() from exc
        except unicon_errors.SubCommandFailure as exc:
            raise _command_failure(exc, timeout) from exc

    def _checked(self, text: str, invalid_utf8: bool) -> str:
        """What changed in the output (flags), and the device's refusals as errors."""
        transformed: list[str] = []
        if invalid_utf8:
            transformed.append(INVALID_UTF8)
        if self.pages:
            erased = _PAGER_ERASE.sub(_unpage, text)
            if erased != text:
                text = erased
                transformed.append(PAGER_REMOVED)
        self.last_transformed = tuple(transformed)
        head = "\n".join(text.splitlines()[:4])
        if _NOT_AUTHORIZED.search(head):
            raise CommandError(
                ErrorCode.NOT_AUTHORIZED,
                f"the device refused this command at {self.privilege} privilege (command authorization)",
                output=text,
            )
        if _REFUSAL.search(head):
            raise CommandError(ErrorCode.INVALID_COMMAND, "the device does not accept this command", output=text)
        return text

    def close(self) -> None:
        with self._close_lock:  # the watchdog and the worker may both close it
            if self._closed:
                return
            self._closed = True
        _release(self._connection, self._secret_forms)


def _no_prompt(timeout: float) -> CommandError:
    return CommandError(ErrorCode.COMMAND_TIMEOUT, f"no prompt within {timeout:g}s")


def _closed_during_command() -> CommandError:
    return CommandError(ErrorCode.DISCONNECTED, "the device closed the session during the command")


def _command_failure(exc: BaseException, timeout: float) -> CommandError:
    """Unicon's ``SubCommandFailure``, by what caused it."""
    chain = causes(exc)
    # builtin TimeoutError is an OSError: look for timeouts first
    if any(isinstance(e, unicon_errors.TimeoutError | TimeoutError) for e in chain):
        return _no_prompt(timeout)
    if any(isinstance(e, unicon_errors.EOF | OSError) for e in chain) or error_text.unicon_says_eof(exc):
        return _closed_during_command()
    return CommandError(ErrorCode.COMMAND_FAILED, f"command failed ({type(exc).__name__})")


PTY_BACKEND = "service.device.ssh.pty_backend"  # the paramiko backend names itself (``unicon_settings``)


class UniconSessionFactory:
    """Read-only Unicon sessions; owns the jump host sessions its devices share (``close()``).

    ``route_logs`` sends each connection's Unicon log lines where the service wants them
    (``service.observability.logging.route_library_logger``); without it they go nowhere.
    ``jump_hosts``: the paramiko backend's shared jump sessions (default: new ones); the
    factory closes them in ``close()`` either way.
    """

    def __init__(
        self,
        options: SessionOptions | None = None,
        *,
        route_logs: LogRouter | None = None,
        jump_hosts: JumpHosts | None = None,
    ) -> None:
        self._options = options or SessionOptions()
        self._route_logs = route_logs
        self._jump_hosts: JumpHosts | None = None
        if self._options.backend is SshBackend.PARAMIKO:
            from service.device.ssh.jumps import JumpHosts  # paramiko is loaded with its backend only

            self._jump_hosts = jump_hosts or JumpHosts()

    @property
    def jump_hosts(self) -> JumpHosts | None:
        """The jump host sessions this factory's devices share (paramiko backend); None with pty."""
        return self._jump_hosts

    def close(self) -> None:
        """Close the shared jump host sessions now (shutdown); device sessions through them end."""
        if self._jump_hosts is not None:
            self._jump_hosts.close()

    def open(self, target: DeviceTarget, connect_timeout: float) -> UniconSession:
        credentials = _credentials(target)
        # masked in every library log line while the session lives (Unicon logs what it sends)
        secret_forms = LIVE_SECRETS.add([entry["password"] for entry in credentials.values()])
        try:
            reading_services.narrow(target.os.value)
            connection = self._connection(target, credentials, connect_timeout)
        except BaseException:
            LIVE_SECRETS.remove(secret_forms)
            raise
        unicon_logs.hold(connection.log, self._route_logs)  # Unicon's per-connection logger does not propagate
        privilege, pages = _login(connection, target, connect_timeout, secret_forms)
        return UniconSession(connection, target, self._options, secret_forms, privilege, pages)

    def _connection(self, target: DeviceTarget, credentials: dict[str, dict[str, str]], timeout: float) -> Any:
        ssh = self._options.ssh_for(target, timeout)
        return Connection(
            hostname=target.hostname,
            # what the pty backend runs; the paramiko backend reads ``ssh`` from the settings instead
            start=[openssh_command(ssh)],
            os=target.os.value,
            credentials=credentials,
            # mit: Unicon connects and learns the prompt but changes nothing: no `enable` (it
            # would answer the enable prompt with the login password), no init commands
            mit=True,
            init_exec_commands=[],
            init_config_commands=[],
            learn_hostname=True,
            # Skips IOS-XE's operating-mode probe: on a Controller-Managed device it would send
            # 'pnpa service discovery stop' (not a show command) and wait for a reload.
            operating_mode=True,
            connection_timeout=timeout,
            settings=self._settings(ssh),
            log_stdout=False,
            logfile=os.devnull,
            no_pyats_tasklog=True,
        )

    def _settings(self, ssh: SshOptions) -> dict[str, Any]:
        """Unicon's settings for one connection: ours, and the backend with what it reads."""
        if self._jump_hosts is None:
            return {**BASE_SETTINGS, "BACKEND": PTY_BACKEND}
        from service.device.ssh import paramiko_backend

        return {**BASE_SETTINGS, **paramiko_backend.unicon_settings(ssh, self._jump_hosts)}


def _credentials(target: DeviceTarget) -> dict[str, dict[str, str]]:
    """What Unicon's login dialogs answer password prompts with."""
    credentials = {"default": {"username": target.username, "password": target.password.reveal()}}
    if target.enable_password is not None:
        credentials["enable"] = {"password": target.enable_password.reveal()}
    return credentials


def _login(connection: Any, target: DeviceTarget, timeout: float, secret_forms: list[str]) -> tuple[Privilege, bool]:
    """Connect and settle; a failure is classified, and the connection released."""
    transcript = _Transcript()
    connection.log.addHandler(transcript)
    try:
        connection.connect()
        return settle(connection, target, timeout)
    except Exception as exc:  # noqa: BLE001 - Unicon raises many unrelated types; classified here
        error = classify_connect_error(exc, _spawn_buffer(connection) + transcript.text())
        _release(connection, secret_forms)
        raise error from None
    finally:
        connection.log.removeHandler(transcript)


_PROMPT_AT_END = re.compile(r"(?:\r?\n)?[^\r\n]*[#>][ \t]*\Z")
_PROMPT_WINDOW = 4096  # a prompt is one short line at the very end of what was read
_UNICON_UTILS = Utils()
INVALID_UTF8 = "invalid_utf8_replaced"
PAGER_REMOVED = "pager_prompts_removed"
# How a device erases its --More-- prompt after a key: N backspaces, N spaces, N backspaces.
_PAGER_ERASE = re.compile(r"(\x08+)( +)(\x08+)")


def _unpage(match: re.Match[str]) -> str:
    backspaces, spaces, again = (len(group) for group in match.groups())
    return "" if backspaces == spaces == again else match.group(0)


def keep_device_text(connection: Any) -> None:
    """Unicon's execute removes ANSI escapes and applies backspaces in every output (and its
    ANSI pattern mangles 256-colour and truecolour codes). Here that cleaning applies to the
    echoed command line only, where some platforms decorate the echo and Unicon needs a clean
    one to remove it; the output itself stays as the device sent it."""

    def echo_only(output: str) -> str:
        echo, newline, body = output.partition("\n")
        return str(_UNICON_UTILS.remove_backspace_ansi_escape(echo)) + newline + body

    connection.execute.extra_output_process = echo_only


def settle(connection: Any, target: DeviceTarget, timeout: float) -> tuple[Privilege, bool]:
    """After login: ``enable`` only with an enable password, then the terminal settings, best
    effort. Returns where commands will run, ``user`` (``>``) or ``enabled`` (``#``), and
    whether the device still pages (it refused to turn paging off)."""
    pages = False
    if connection.state_machine.current_state == "disable" and target.enable_password is not None:
        connection.enable()  # Unicon answers the prompt from credentials["enable"]
    privilege = Privilege.USER if connection.state_machine.current_state == "disable" else Privilege.ENABLED
    for line in TERMINAL_SETTINGS[target.os]:
        output = str(connection.execute(line, timeout=timeout, error_pattern=[]))
        if _REFUSAL.search(output) or _NOT_AUTHORIZED.search(output):
            pages = pages or "length" in line or "pager" in line
            key = (target.hostname, target.port, line)
            if key not in WARNED_SETTINGS:
                if len(WARNED_SETTINGS) >= WARNED_SETTINGS_LIMIT:
                    WARNED_SETTINGS.clear()
                WARNED_SETTINGS.add(key)
                logger.warning(
                    "the device refused {!r} at login; going on (its paging is answered by the session)", line
                )
    return privilege, pages
