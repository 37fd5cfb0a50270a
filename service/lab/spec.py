"""Device specs for the fake lab: CLI defaults plus optional per-device JSON overrides.

A spec is plain data (frozen dataclasses) so the server, the shell and the tests all
read one description of a device; nothing here opens sockets or files except
``load_spec_file``, which the CLI calls once at start-up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

SUPPORTED_OS: tuple[str, ...] = ("ios", "iosxe", "nxos", "iosxr", "asa")


class SpecError(ValueError):
    """A spec file or flag is invalid; the CLI reports it and exits non-zero."""


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

    def __post_init__(self) -> None:
        if self.os not in SUPPORTED_OS:
            raise SpecError(f"unsupported os {self.os!r}; expected one of {', '.join(SUPPORTED_OS)}")
        if not 0 <= self.port <= 65535:
            raise SpecError(f"invalid port {self.port} for device {self.name}")
        if self.latency < 0 or self.jitter < 0:
            raise SpecError(f"latency and jitter must be >= 0 for device {self.name}")
        if self.terminal_length < 0:
            raise SpecError(f"terminal_length must be >= 0 for device {self.name}")


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


def _coerce(name: str, value: Any) -> Any:
    """Turn JSON values into the field's Python type (lists to tuples, str to Path)."""
    if name in ("hang_commands", "disconnect_commands"):
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SpecError(f"{name} must be a list of strings")
        return tuple(value)
    if name == "outputs_dir":
        return None if value is None else Path(value)
    if name in ("latency", "jitter"):
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise SpecError(f"{name} must be a number")
        return float(value)
    if name in ("port", "terminal_length"):
        if not isinstance(value, int) or isinstance(value, bool):
            raise SpecError(f"{name} must be an integer")
        return value
    if name == "auth_failure":
        if not isinstance(value, bool):
            raise SpecError(f"{name} must be true or false")
        return value
    if name == "enable_password":
        if value is not None and not isinstance(value, str):
            raise SpecError(f"{name} must be a string or null")
        return value
    if not isinstance(value, str):
        raise SpecError(f"{name} must be a string")
    return value


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
