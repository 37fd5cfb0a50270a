"""Device specs for the fake lab: CLI defaults plus optional per-device JSON overrides.

A spec is plain data (frozen dataclasses) so the server, the shell and the tests all
read one description of a device; nothing here opens sockets or files except
``load_spec_file``, which the CLI calls once at start-up.

Fault and load fields (all per device, all off by default):

* ``chunk_size`` / ``chunk_delay``: write each output in pieces of
  ``chunk_size`` characters (bytes for the ASCII outputs; 0 = one write) with
  ``chunk_delay`` seconds between pieces;
* ``pause_after`` / ``pause_seconds``: regexes searched in each output line;
  after writing a matching line the device waits ``pause_seconds``.  The text
  ``{hostname}`` in a regex stands for the device name (escaped), so
  ``"^{hostname}#$"`` matches a line equal to the device's prompt;
* ``large_outputs``: generated outputs of an exact size (see
  ``service.devtools.lab.generated``), JSON ``{"show logging": 5000000}`` or
  ``{"show logging": {"size": 5000000, "kind": "logging", "prompt_line": true}}``;
* ``max_sessions``: authenticated SSH connections served at once (0 =
  unlimited); one more is refused like a device with no free VTY line;
* ``max_startups``: SSH connections still before authentication at once (0 = unlimited);
  one more is closed before the SSH version exchange, like OpenSSH's ``MaxStartups`` or an
  IOS device throttling concurrent logins;
* ``login_delay``: seconds between the session opening and the first prompt
  (slow AAA), for connect-timeout tests;
* ``extra_outputs``: more commands and their exact outputs, JSON ``{"show x": "text"}``;
  the text may hold ANSI escapes, backspaces, and bytes that are not UTF-8 (written
  as ``\udc80``-``\udcff``, Python's surrogateescape);
* ``sequence_outputs``: commands whose answer changes from one run to the next, JSON
  ``{"show ip bgp summary": ["text 1", "text 2"]}``: the k-th run of the command on this
  device (counted across sessions, since the lab started) gets the k-th text, every run after
  the last gets the last one. The whole line is matched (normalised; a ``|`` clause is part
  of it, so ``show version | include up`` is another command) and the text is served as is;
  a sequence wins over ``extra_outputs`` and the stored outputs of the same command;
* ``login_banner``: the SSH authentication banner (IOS ``banner login``), shown before
  the password is asked;
* ``motd``: text the device prints after login, before its first prompt (banner motd,
  banner exec), e.g. with prompt-like lines;
* ``chatter_after`` / ``chatter_delay``: after answering one of these commands and
  printing its prompt, the device waits ``chatter_delay`` seconds and prints a syslog
  line and its prompt again, unasked (console logging on a VTY).

Access fields:

* ``login_privilege``: ``1`` makes a login land in user EXEC (``>``) whatever the
  enable password (a read-only AAA account); without an ``enable_password`` its
  ``enable`` is then refused (``% Error in authentication.``);
* ``authorization_denied``: regexes of command lines that AAA command authorization
  refuses (``% Authorization failed.``), e.g. ``["^terminal length", "^show run"]``;
* ``authorized_keys``: OpenSSH public key lines (``ssh-ed25519 AAAA... comment``)
  accepted for ``username`` besides the password;
* ``bastion``: the listener is a jump host, not a device: no shell, only
  ``direct-tcpip`` forwarding to loopback ports, each one logged as a ``forward``
  event (see ``service.devtools.lab.log``);
* ``auth_methods``: the login methods offered besides ``authorized_keys``, a subset
  of ``password`` and ``keyboard-interactive`` (default both); ``["keyboard-interactive"]``
  is a device behind an AAA server that prompts through keyboard-interactive only.

SSH algorithm fields (empty = asyncssh's defaults):

* ``kex_algs``, ``host_key_algs``, ``encryption_algs``: the only algorithms the device
  offers (asyncssh names); an ``ssh-rsa`` host key algorithm uses the lab's RSA host key;
* ``legacy_only``: shorthand for an old IOS image that offers only
  ``LEGACY_KEX`` / ``LEGACY_HOST_KEYS`` / ``LEGACY_CIPHERS`` (explicit lists win).

Peer field:

* ``mock``: JSON ``{"os": "iosxe", "state": "general_exec"}``: after our SSH
  login, the session's shell is Cisco's own Unicon mock device
  (``mock_device_cli``) for that OS and state, with the mock data shipped in the
  installed unicon package (see ``service.devtools.lab.mock``).  The lab still logs every
  line received; the lab's own outputs, faults and paging do not apply.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from service.devtools.lab.generated import GENERATED_KINDS, infer_kind

SUPPORTED_OS: tuple[str, ...] = ("ios", "iosxe", "nxos", "iosxr", "asa")
AUTH_METHODS: tuple[str, ...] = ("password", "keyboard-interactive")
LEGACY_KEX: tuple[str, ...] = ("diffie-hellman-group14-sha1", "diffie-hellman-group1-sha1")
LEGACY_HOST_KEYS: tuple[str, ...] = ("ssh-rsa",)
LEGACY_CIPHERS: tuple[str, ...] = ("aes128-cbc", "aes256-cbc", "3des-cbc")


class SpecError(ValueError):
    """A spec file or flag is invalid; the CLI reports it and exits non-zero."""


@dataclass(frozen=True)
class LargeOutput:
    """A generated output: ``command`` answers ``size`` characters of ``kind`` text.

    ``prompt_line`` puts a line identical to the device's privileged prompt in
    the middle of the output (the trap of a prompt-like line inside an output).
    """

    command: str
    size: int
    kind: str = ""
    prompt_line: bool = False

    def __post_init__(self) -> None:
        if not self.command.strip():
            raise SpecError("large_outputs commands must not be empty")
        if self.size < 0:
            raise SpecError(f"large_outputs size must be >= 0 for {self.command!r}")
        if not self.kind:
            object.__setattr__(self, "kind", infer_kind(self.command))
        if self.kind not in GENERATED_KINDS:
            raise SpecError(f"unknown large_outputs kind {self.kind!r}; expected one of {', '.join(GENERATED_KINDS)}")


def expand_pattern(pattern: str, hostname: str) -> str:
    """A ``pause_after`` regex with ``{hostname}`` replaced by the escaped name."""
    return pattern.replace("{hostname}", re.escape(hostname))


@dataclass(frozen=True)
class MockSpec:
    """Which Unicon mock device serves a session: its OS folder and initial state."""

    os: str
    state: str

    def __post_init__(self) -> None:
        for value in (self.os, self.state):
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", value):
                raise SpecError(f"mock os and state must be plain names, got {value!r}")


@dataclass(frozen=True)
class DeviceSpec:
    """Everything one fake device needs: identity, credentials, behaviour and faults.

    ``hang_commands`` and ``disconnect_commands`` hold commands (matched like the
    shell matches input, case-insensitive, whitespace normalised); ``"*"`` means
    every command.  ``port`` 0 means "assign one when the lab starts".
    """

    name: str
    os: str = "iosxe"
    host: str = "127.0.0.1"
    port: int = 0
    username: str = "admin"
    password: str = "admin"  # noqa: S105 - the lab's documented default
    enable_password: str | None = None
    latency: float = 0.0
    jitter: float = 0.0
    auth_failure: bool = False
    hang_commands: tuple[str, ...] = ()
    disconnect_commands: tuple[str, ...] = ()
    outputs_dir: Path | None = None
    terminal_length: int = 24
    chunk_size: int = 0
    chunk_delay: float = 0.0
    pause_after: tuple[str, ...] = ()
    pause_seconds: float = 0.0
    large_outputs: tuple[LargeOutput, ...] = ()
    max_sessions: int = 0
    max_startups: int = 0
    login_delay: float = 0.0
    authorized_keys: tuple[str, ...] = ()
    bastion: bool = False
    login_privilege: int | None = None
    authorization_denied: tuple[str, ...] = ()
    chatter_after: tuple[str, ...] = ()
    chatter_delay: float = 0.0
    motd: str = ""
    login_banner: str = ""
    extra_outputs: tuple[tuple[str, str], ...] = ()
    sequence_outputs: tuple[tuple[str, tuple[str, ...]], ...] = ()
    auth_methods: tuple[str, ...] = AUTH_METHODS
    kex_algs: tuple[str, ...] = ()
    host_key_algs: tuple[str, ...] = ()
    encryption_algs: tuple[str, ...] = ()
    legacy_only: bool = False
    mock: MockSpec | None = None

    @property
    def ssh_algorithms(self) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        """(kex, host key, encryption) algorithms offered; an empty list means asyncssh's defaults."""
        if self.legacy_only:
            return (
                self.kex_algs or LEGACY_KEX,
                self.host_key_algs or LEGACY_HOST_KEYS,
                self.encryption_algs or LEGACY_CIPHERS,
            )
        return self.kex_algs, self.host_key_algs, self.encryption_algs

    def __post_init__(self) -> None:
        if self.os not in SUPPORTED_OS:
            raise SpecError(f"unsupported os {self.os!r}; expected one of {', '.join(SUPPORTED_OS)}")
        self._check_ranges()
        self._check_login()
        self._check_patterns()

    def _check_ranges(self) -> None:
        if not 0 <= self.port <= 65535:
            raise SpecError(f"invalid port {self.port} for device {self.name}")
        if self.latency < 0 or self.jitter < 0:
            raise SpecError(f"latency and jitter must be >= 0 for device {self.name}")
        if self.terminal_length < 0:
            raise SpecError(f"terminal_length must be >= 0 for device {self.name}")
        if self.chunk_size < 0 or self.max_sessions < 0 or self.max_startups < 0:
            raise SpecError(f"chunk_size, max_sessions and max_startups must be >= 0 for device {self.name}")
        if self.chunk_delay < 0 or self.pause_seconds < 0 or self.login_delay < 0 or self.chatter_delay < 0:
            raise SpecError(f"chunk_delay, pause_seconds and login_delay must be >= 0 for device {self.name}")
        if self.login_privilege is not None and not 0 <= self.login_privilege <= 15:
            raise SpecError(f"login_privilege must be 0-15 for device {self.name}")

    def _check_login(self) -> None:
        if unknown := set(self.auth_methods) - set(AUTH_METHODS):
            raise SpecError(f"auth_methods of device {self.name}: unknown {', '.join(sorted(unknown))}")
        if not self.auth_methods and not self.authorized_keys:
            raise SpecError(f"device {self.name} offers no login method (auth_methods and authorized_keys empty)")
        if self.mock is not None and self.bastion:
            raise SpecError(f"device {self.name} cannot be both a bastion and a mock device")

    def _check_patterns(self) -> None:
        """Every regular expression compiles (``pause_after`` once expanded for this device)."""
        for pattern in self.authorization_denied:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise SpecError(
                    f"invalid authorization_denied regex {pattern!r} for device {self.name}: {exc}"
                ) from exc
        for pattern in self.pause_after:
            try:
                re.compile(expand_pattern(pattern, self.name))
            except re.error as exc:
                raise SpecError(f"invalid pause_after regex {pattern!r} for device {self.name}: {exc}") from exc


@dataclass(frozen=True)
class LabSpec:
    """The whole lab: its devices plus where to log (``None`` = no log)."""

    devices: tuple[DeviceSpec, ...]
    log_path: Path | None = None
    host_key_path: Path | None = None


def default_name(os_name: str, index: int) -> str:
    """Name devices like a small lab would (``lab-iosxe-01``); index is 1-based."""
    return f"lab-{os_name}-{index:02d}"


_FIELD_NAMES = frozenset(f.name for f in fields(DeviceSpec))
_ALGORITHM_LISTS = ("auth_methods", "kex_algs", "host_key_algs", "encryption_algs")


def _strings(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SpecError(f"{name} must be a list of strings")
    return tuple(value)


def _number(name: str, value: Any) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise SpecError(f"{name} must be a number")
    return float(value)


def _integer(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise SpecError(f"{name} must be an integer")
    return value


def _optional_integer(name: str, value: Any) -> int | None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise SpecError(f"{name} must be an integer or null")
    return value


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise SpecError(f"{name} must be true or false")
    return value


def _string(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise SpecError(f"{name} must be a string")
    return value


def _optional_string(name: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise SpecError(f"{name} must be a string or null")
    return value


def _command_outputs(name: str, value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise SpecError(f"{name} must be an object of command -> output text")
    return tuple(value.items())


def _sequence_outputs(name: str, value: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(value, dict) or not all(
        isinstance(command, str) and isinstance(texts, list) and texts and all(isinstance(t, str) for t in texts)
        for command, texts in value.items()
    ):
        raise SpecError(f"{name} must be an object of command -> a non-empty list of output texts")
    return tuple((command, tuple(texts)) for command, texts in value.items())


def _optional_path(_name: str, value: Any) -> Path | None:
    return None if value is None else Path(value)


def _authorized_keys(_name: str, value: Any) -> tuple[str, ...]:
    """OpenSSH public key lines; each must parse."""
    import asyncssh

    keys = (value,) if isinstance(value, str) else value
    if not isinstance(keys, list | tuple) or not all(isinstance(k, str) for k in keys):
        raise SpecError("authorized_keys must be a list of OpenSSH public key lines")
    for key in keys:
        try:
            asyncssh.import_public_key(key)
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise SpecError(f"authorized_keys: not a public key: {key[:40]!r}") from exc
    return tuple(keys)


def _mock(_name: str, value: Any) -> MockSpec | None:
    """``{"os": ..., "state": ...}`` or ``null``."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"os", "state"}:
        raise SpecError('mock must be {"os": ..., "state": ...} or null')
    if not all(isinstance(item, str) for item in value.values()):
        raise SpecError("mock os and state must be strings")
    return MockSpec(os=value["os"], state=value["state"])


def _large_outputs(_name: str, value: Any) -> tuple[LargeOutput, ...]:
    """JSON ``{command: size}`` or ``{command: {"size", "kind"?, "prompt_line"?}}``."""
    if not isinstance(value, dict):
        raise SpecError("large_outputs must be an object of command -> size")
    found: list[LargeOutput] = []
    for command, item in value.items():
        entry = {"size": item} if isinstance(item, int) and not isinstance(item, bool) else item
        if not isinstance(entry, dict) or set(entry) - {"size", "kind", "prompt_line"}:
            raise SpecError(f"large_outputs[{command!r}] must be a size or {{size, kind, prompt_line}}")
        size, kind, prompt = entry.get("size"), entry.get("kind", ""), entry.get("prompt_line", False)
        if not isinstance(size, int) or isinstance(size, bool):
            raise SpecError(f"large_outputs[{command!r}] size must be an integer")
        if not isinstance(kind, str) or not isinstance(prompt, bool):
            raise SpecError(f"large_outputs[{command!r}] kind must be a string, prompt_line true or false")
        found.append(LargeOutput(command, size, kind, prompt))
    return tuple(found)


_COERCERS: dict[str, Callable[[str, Any], Any]] = {
    **dict.fromkeys(
        (
            "hang_commands",
            "disconnect_commands",
            "pause_after",
            "authorization_denied",
            "chatter_after",
            *_ALGORITHM_LISTS,
        ),
        _strings,
    ),
    **dict.fromkeys(("latency", "jitter", "chunk_delay", "pause_seconds", "login_delay", "chatter_delay"), _number),
    **dict.fromkeys(("port", "terminal_length", "chunk_size", "max_sessions", "max_startups"), _integer),
    **dict.fromkeys(("auth_failure", "bastion", "legacy_only"), _flag),
    "login_privilege": _optional_integer,
    "enable_password": _optional_string,
    "extra_outputs": _command_outputs,
    "sequence_outputs": _sequence_outputs,
    "outputs_dir": _optional_path,
    "large_outputs": _large_outputs,
    "authorized_keys": _authorized_keys,
    "mock": _mock,
}


def _coerce(name: str, value: Any) -> Any:
    """Turn JSON values into the field's Python type (lists to tuples, str to Path)."""
    coerce: Callable[[str, Any], Any] = _COERCERS.get(name, _string)
    return coerce(name, value)


def parse_large_output(text: str) -> LargeOutput:
    """The CLI form ``COMMAND=SIZE[:KIND][:prompt]``, e.g. ``show logging=5000000:logging:prompt``."""
    command, sep, rest = text.rpartition("=")
    parts = rest.split(":")
    if not sep or not parts[0].isdigit():
        raise SpecError(f"--large-output expects COMMAND=SIZE[:KIND][:prompt], got {text!r}")
    options = parts[1:]
    prompt = "prompt" in options
    kinds = [option for option in options if option != "prompt"]
    if len(kinds) > 1:
        raise SpecError(f"--large-output takes one kind, got {text!r}")
    return LargeOutput(command.strip(), int(parts[0]), kinds[0] if kinds else "", prompt)


def apply_overrides(device: DeviceSpec, overrides: dict[str, Any]) -> DeviceSpec:
    """Return ``device`` with the JSON ``overrides`` applied; unknown keys are errors."""
    unknown = set(overrides) - _FIELD_NAMES
    if unknown:
        raise SpecError(f"unknown device field(s): {', '.join(sorted(unknown))}")
    changes = {key: _coerce(key, value) for key, value in overrides.items()}
    return replace(device, **changes)


def build_devices(
    template: DeviceSpec,
    count: int,
    os_cycle: list[str],
    base_port: int,
    overrides: list[dict[str, Any]] | None = None,
) -> tuple[DeviceSpec, ...]:
    """Build ``count`` devices from a template, cycling OSes and numbering ports.

    Overrides apply by position; a spec file listing more devices than ``count``
    grows the lab.  A device whose override sets ``os`` but not ``name`` is named
    after its real OS.
    """
    overrides = overrides or []
    total = max(count, len(overrides))
    if total < 1:
        raise SpecError("the lab needs at least one device")
    if not os_cycle:
        raise SpecError("at least one os is required")
    devices: list[DeviceSpec] = []
    for index in range(total):
        os_name = os_cycle[index % len(os_cycle)]
        device = replace(
            template,
            name=default_name(os_name, index + 1),
            os=os_name,
            port=base_port + index if base_port else 0,
        )
        if index < len(overrides):
            override = overrides[index]
            device = apply_overrides(device, override)
            if "os" in override and "name" not in override:
                device = replace(device, name=default_name(device.os, index + 1))
        devices.append(device)
    names = [d.name for d in devices]
    if len(set(names)) != len(names):
        raise SpecError("device names must be unique")
    return tuple(devices)


def load_spec_file(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Read ``{"defaults": {...}, "devices": [{...}, ...]}`` from a JSON file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SpecError(f"cannot read spec file {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise SpecError("spec file must hold a JSON object")
    defaults = data.get("defaults", {})
    devices = data.get("devices", [])
    if not isinstance(defaults, dict):
        raise SpecError("spec 'defaults' must be an object")
    if not isinstance(devices, list) or not all(isinstance(d, dict) for d in devices):
        raise SpecError("spec 'devices' must be a list of objects")
    return defaults, devices
