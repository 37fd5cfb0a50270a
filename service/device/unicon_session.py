"""Unicon sessions that are read-only from the first byte.

Unicon's default login enters config mode (``HA_INIT_CONFIG_COMMANDS``, and on IOS-XR
``IOSXR_INIT_CONFIG_COMMANDS``); both are emptied here, and the exec commands sent at
login are only ``terminal`` settings. Unicon answers the password prompts itself from
``credentials``, so no password is ever on a command line. Library errors become our
``ConnectError`` / ``CommandError`` here, and nowhere else.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import shlex
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger
from unicon import Connection
from unicon.core import errors as unicon_errors
from unicon.utils import Utils

from service.contract.errors import CommandError, ConnectError, ErrorCode, SessionOutOfStepError
from service.device import reading_services, regex_cache
from service.device.device_text import OutputLimitError, over_limit, replaced_so_far, start_command
from service.domain.legacy_ssh import AlgorithmKind, of_kind
from service.domain.models import FREE_TEXT_PREFIXES, DeviceOS, DeviceTarget
from service.observability.logging import LIVE_SECRETS, forget_library_logger, route_library_logger

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

# Errnos of a machine out of processes, file descriptors or memory (fork, socket, pty).
_EXHAUSTED = frozenset({errno.EAGAIN, errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
_CONNECT_PATTERNS: tuple[tuple[re.Pattern[str], ErrorCode, str], ...] = (
    (  # OpenSSH's words (and the paramiko backend's) for a server that closes before its banner
        re.compile(r"kex_exchange_identification: (?:connection closed|read: connection reset)", re.I),
        ErrorCode.OVERLOADED,
        "the device closed the connection before the SSH handshake: too many logins at once (its MaxStartups "
        "or login throttling), or an access list refuses this host",
    ),
    (
        re.compile(r"timed out during banner exchange", re.I),
        ErrorCode.CONNECT_TIMEOUT,
        "the device took the connection but did not finish the SSH handshake in time (it, or this machine, is busy)",
    ),
    (re.compile(r"connection refused", re.I), ErrorCode.CONNECT_REFUSED, "the device refused the SSH connection"),
    (
        re.compile(r"timed out|no route to host", re.I),
        ErrorCode.CONNECT_TIMEOUT,
        "the device did not answer on its SSH port",
    ),
    (
        re.compile(r"could not resolve hostname|name or service not known", re.I),
        ErrorCode.CONNECT_FAILED,
        "the hostname does not resolve",
    ),
    (  # before "host key verification failed": OpenSSH prints both lines for a changed key
        re.compile(r"remote host identification has changed", re.I),
        ErrorCode.HOST_KEY_MISMATCH,
        "the SSH host key differs from the one in known_hosts: refused (a reinstalled device or an interception)",
    ),
    (
        re.compile(r"host key verification failed", re.I),
        ErrorCode.CONNECT_FAILED,
        "the SSH host key is not in known_hosts and strict checking is on (see PYATS_SSH_STRICT_HOST_KEY_CHECKING)",
    ),
    (
        re.compile(r"open failed: administratively prohibited", re.I),
        ErrorCode.CONNECT_FAILED,
        "the jump host refused to forward the connection to the device",
    ),
    (
        re.compile(r"jump host \S+: permission denied", re.I),
        ErrorCode.CONNECT_FAILED,
        "the jump host rejected its login (its key or password setting, not the device credentials)",
    ),
    (re.compile(r"permission denied", re.I), ErrorCode.AUTH_FAILED, "the device rejected the credentials"),
)

# OpenSSH's words when the device and the client share no algorithm of one kind; the
# paramiko backend words its failure the same way. The offer is the device's list of names.
_NO_MATCHING_ALGORITHM = re.compile(
    r"no matching (key exchange method|host key type|cipher|MAC) found\. Their offer: ([A-Za-z0-9@.,_+-]{1,400})"
)
_KEX_MARKERS = ("ext-info-", "kex-strict-")
LEGACY_HINT = (
    "legacy SSH algorithms are off unless named in PYATS_SSH_LEGACY_ALGORITHMS or in the inventory's "
    "custom.ssh_legacy_algorithms (weak: enable only what this device needs)"
)


@dataclass(frozen=True, slots=True)
class SessionOptions:
    strict_host_key_checking: str = "accept-new"
    known_hosts_file: Path | None = None
    backend: str = "pty"
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


def matched_retries_for(line: str, options: SessionOptions) -> tuple[int, float]:
    """Unicon's after-prompt re-check for one command: none for structured output."""
    if options.free_text_retry_sleep > 0 and line.lower().startswith(options.free_text_prefixes):
        return 1, options.free_text_retry_sleep
    return 0, 0.0


def ssh_command(target: DeviceTarget, options: SessionOptions, connect_timeout: float) -> str:
    """The OpenSSH command line. Holds no secret: Unicon types the password at the prompt."""
    parts = [
        "ssh",
        "-o",
        f"StrictHostKeyChecking={options.strict_host_key_checking}",
        "-o",
        f"ConnectTimeout={max(1, int(connect_timeout))}",
        "-o",
        "PreferredAuthentications=password,keyboard-interactive",
        "-o",
        "PubkeyAuthentication=no",
        "-o",
        "NumberOfPasswordPrompts=1",
        "-o",
        # INFO, not ERROR: OpenSSH reports "no matching ... found. Their offer: ..." (no common
        # algorithm) at INFO only; without it a legacy-only device is a bare EOF
        "LogLevel=INFO",
    ]
    if options.identity_file is not None or options.ssh_config_file is not None:
        # keys may apply: named identities first (no agent), then the password Unicon types
        keys_first = {
            "PreferredAuthentications=password,keyboard-interactive": "PreferredAuthentications=publickey,password,"
            "keyboard-interactive",
            "PubkeyAuthentication=no": "IdentitiesOnly=yes",
        }
        parts = [keys_first.get(part, part) for part in parts]
    legacy = target.legacy_algorithms if target.legacy_algorithms is not None else options.legacy_algorithms
    for option, kind in (("KexAlgorithms", AlgorithmKind.KEX), ("Ciphers", AlgorithmKind.CIPHER)):
        if names := of_kind(legacy, kind):
            parts += ["-o", f"{option}=+{','.join(names)}"]  # '+': appended to OpenSSH's defaults
    if names := of_kind(legacy, AlgorithmKind.HOST_KEY):
        # ssh-rsa for the device's host key and for our own RSA key's signature
        parts += ["-o", f"HostKeyAlgorithms=+{','.join(names)}", "-o", f"PubkeyAcceptedAlgorithms=+{','.join(names)}"]
    if options.ssh_config_file is not None:
        parts += ["-F", shlex.quote(str(options.ssh_config_file))]
    if options.identity_file is not None:
        parts += ["-i", shlex.quote(str(options.identity_file))]
    if options.jump_host is not None:
        parts += ["-J", shlex.quote(options.jump_host)]
    if options.backend == "paramiko":  # OpenSSH refuses options it does not know
        if options.jump_rate is not None:
            parts += ["-o", f"PyatsJumpRate={options.jump_rate:g}"]
        if options.jump_password_env is not None:
            parts += ["-o", f"PyatsJumpPasswordEnv={shlex.quote(options.jump_password_env)}"]
    if options.strict_host_key_checking == "no":
        parts += ["-o", f"UserKnownHostsFile={os.devnull}"]
    elif options.known_hosts_file is not None:
        parts += ["-o", f"UserKnownHostsFile={options.known_hosts_file}"]
    # policy has validated hostname and username: no spaces, no leading '-'
    parts += ["-p", str(target.port), "-l", target.username, "--", target.hostname]
    return " ".join(parts)


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
        forget_library_logger(log)
    LIVE_SECRETS.remove(secret_forms)


def _spawn_buffer(connection: Any) -> str:
    try:
        return str(connection.spawn.buffer or "")
    except Exception:  # noqa: BLE001 - best-effort diagnostics only
        return ""


def _chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 5:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return chain


def classify_connect_error(exc: BaseException, buffer: str) -> ConnectError:
    """Map a failed login to a code. What the SSH client printed decides first; then the type.

    Unicon's timeout messages list every dialog pattern (one says "Connection refused") and
    the last line sent, which may be a password: their text is never matched nor shown.
    """
    chain = _chain(exc)
    if any(
        isinstance(e, unicon_errors.CredentialsExhaustedError | unicon_errors.UniconAuthenticationError) for e in chain
    ):
        return ConnectError(ErrorCode.AUTH_FAILED, "the device rejected the login or enable password")
    if any(isinstance(e, OSError) and e.errno in _EXHAUSTED for e in chain):
        return ConnectError(
            ErrorCode.OVERLOADED,
            "this machine ran out of processes, file descriptors or memory while logging in "
            "(lower PYATS_MAX_CONCURRENT_DEVICES or add device workers)",
        )
    haystack = " ".join(str(e) for e in chain)  # in-process backends raise OpenSSH-worded errors
    if mismatch := _NO_MATCHING_ALGORITHM.search(buffer) or _NO_MATCHING_ALGORITHM.search(haystack):
        what = mismatch.group(1)
        # OpenSSH shows the kex markers (ext-info-s, kex-strict-s-...) in the offer: not algorithms
        offer = [name for name in mismatch.group(2).strip(",.").split(",") if not name.startswith(_KEX_MARKERS)]
        return ConnectError(
            ErrorCode.CONNECT_FAILED,
            f"no matching {what} with the device (its offer: {','.join(offer)}); {LEGACY_HINT}",
            {"mismatch": what, "offer": offer},
        )
    for pattern, code, message in _CONNECT_PATTERNS:
        if pattern.search(buffer):
            return ConnectError(code, message)
    if any(isinstance(e, unicon_errors.TimeoutError | TimeoutError) for e in chain):
        return ConnectError(ErrorCode.CONNECT_TIMEOUT, "login did not complete before the connect timeout")
    for pattern, code, message in _CONNECT_PATTERNS:
        if pattern.search(haystack):
            return ConnectError(code, message)
    return ConnectError(ErrorCode.CONNECT_FAILED, f"login failed ({type(exc).__name__})")


class UniconSession:
    def __init__(
        self,
        connection: Any,
        target: DeviceTarget,
        options: SessionOptions,
        secret_forms: list[str],
        privilege: str = "enabled",
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
            # error_pattern=[]: output lines such as "WARNING:" are data, not failures; refusals are checked below
            output = self._connection.execute(
                line, timeout=timeout, error_pattern=[], matched_retries=retries, matched_retry_sleep=sleep
            )
            return self._rest_after_prompt_like_lines(str(output), timeout - (time.monotonic() - started))
        except unicon_errors.TimeoutError as exc:
            raise CommandError(ErrorCode.COMMAND_TIMEOUT, f"no prompt within {timeout:g}s") from exc
        except (unicon_errors.EOF, unicon_errors.ConnectionError, OSError, OutputLimitError) as exc:
            raise CommandError(ErrorCode.DISCONNECTED, "the device closed the session during the command") from exc
        except unicon_errors.SubCommandFailure as exc:
            chain = _chain(exc)
            # builtin TimeoutError is an OSError: look for timeouts first
            if any(isinstance(e, unicon_errors.TimeoutError | TimeoutError) for e in chain):
                raise CommandError(ErrorCode.COMMAND_TIMEOUT, f"no prompt within {timeout:g}s") from exc
            if any(isinstance(e, unicon_errors.EOF | OSError) for e in chain) or "EOF" in str(exc):
                raise CommandError(ErrorCode.DISCONNECTED, "the device closed the session during the command") from exc
            raise CommandError(ErrorCode.COMMAND_FAILED, f"command failed ({type(exc).__name__})") from exc

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


BACKENDS = {"pty": "service.device.pty_backend", "paramiko": "service.device.paramiko_backend"}


class UniconSessionFactory:
    def __init__(self, options: SessionOptions | None = None) -> None:
        regex_cache.make_room()
        self._options = options or SessionOptions()
        self._settings = dict(BASE_SETTINGS)
        self._settings["BACKEND"] = BACKENDS[self._options.backend]

    def open(self, target: DeviceTarget, connect_timeout: float) -> UniconSession:
        credentials: dict[str, dict[str, str]] = {
            "default": {"username": target.username, "password": target.password.reveal()},
        }
        if target.enable_password is not None:
            credentials["enable"] = {"password": target.enable_password.reveal()}
        # masked in every library log line while the session lives (Unicon logs what it sends)
        secret_forms = LIVE_SECRETS.add([entry["password"] for entry in credentials.values()])
        reading_services.narrow(target.os.value)
        connection = Connection(
            hostname=target.hostname,
            start=[ssh_command(target, self._options, connect_timeout)],
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
            connection_timeout=connect_timeout,
            settings=self._settings,
            log_stdout=False,
            logfile=os.devnull,
            no_pyats_tasklog=True,
        )
        route_library_logger(connection.log)  # Unicon's per-connection logger does not propagate
        transcript = _Transcript()
        connection.log.addHandler(transcript)
        try:
            connection.connect()
            privilege, pages = settle(connection, target, connect_timeout)
        except Exception as exc:  # noqa: BLE001 - Unicon raises many unrelated types; classified here
            error = classify_connect_error(exc, _spawn_buffer(connection) + transcript.text())
            _release(connection, secret_forms)
            raise error from None
        finally:
            connection.log.removeHandler(transcript)
        return UniconSession(connection, target, self._options, secret_forms, privilege, pages)


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


def settle(connection: Any, target: DeviceTarget, timeout: float) -> tuple[str, bool]:
    """After login: ``enable`` only with an enable password, then the terminal settings, best
    effort. Returns where commands will run, ``user`` (``>``) or ``enabled`` (``#``), and
    whether the device still pages (it refused to turn paging off)."""
    pages = False
    if connection.state_machine.current_state == "disable" and target.enable_password is not None:
        connection.enable()  # Unicon answers the prompt from credentials["enable"]
    privilege = "user" if connection.state_machine.current_state == "disable" else "enabled"
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
