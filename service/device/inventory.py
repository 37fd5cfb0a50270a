"""Load a pyATS testbed YAML into an ``Inventory``; keep the last good one on errors.

Supported: ``testbed.credentials`` (defaults), per-device ``os``, ``credentials``
(``default`` username/password, ``enable`` password), ``connections`` (the first with
``protocol: ssh``, else the first with an ``ip``; ``port`` defaults to 22), and groups
from ``groups:`` or ``custom.groups:``. Values may be ``%ENV{NAME}``. Errors name the
device and key, never a value (a value may be a secret).

Legacy SSH algorithms (see ``service.domain.legacy_ssh``), a list or a comma-separated
string, replace ``PYATS_SSH_LEGACY_ALGORITHMS`` for the devices they name; an empty list
turns them off there. Per device in ``custom.ssh_legacy_algorithms``; per group in
``testbed.custom.groups.<group>.ssh_legacy_algorithms``. The device's own value wins over
its groups'; two groups of one device that disagree are an error.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Any

import yaml
from loguru import logger

from service.contract.errors import ConfigError, ErrorCode
from service.domain.inventory import Inventory, InventoryDevice
from service.domain.legacy_ssh import parse_legacy_algorithms
from service.domain.models import DeviceOS, Secret
from service.domain.policy import check_hostname

_ENV = re.compile(r"%ENV\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand(value: Any, where: str) -> str:
    text = str(value)

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ConfigError(ErrorCode.CONFIG_INVALID, f"{where}: environment variable {name} is not set")
        return os.environ[name]

    return _ENV.sub(lookup, text)


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(ErrorCode.CONFIG_INVALID, f"{where} must be a mapping")
    return value


def _connection(device: dict[str, Any], where: str) -> tuple[str, int]:
    connections = _mapping(device.get("connections"), f"{where}.connections")
    candidates = [c for c in connections.values() if isinstance(c, dict) and c.get("ip")]
    ssh = [c for c in candidates if str(c.get("protocol", "ssh")).lower() == "ssh"]
    if not (ssh or candidates):
        raise ConfigError(ErrorCode.CONFIG_INVALID, f"{where}.connections: no connection with an ip")
    chosen = (ssh or candidates)[0]
    host = _expand(chosen["ip"], f"{where}.connections.ip")
    why = check_hostname(host)
    if why:
        raise ConfigError(ErrorCode.CONFIG_INVALID, f"{where}.connections.ip: {why}")
    try:
        port = int(chosen.get("port", 22))
    except (TypeError, ValueError):
        raise ConfigError(ErrorCode.CONFIG_INVALID, f"{where}.connections.port is not a number") from None
    if not 1 <= port <= 65535:
        raise ConfigError(ErrorCode.CONFIG_INVALID, f"{where}.connections.port is out of range")
    return host, port


LEGACY_KEY = "ssh_legacy_algorithms"


def _legacy(value: Any, where: str) -> tuple[str, ...]:
    try:
        return parse_legacy_algorithms(value)
    except ValueError as exc:
        raise ConfigError(ErrorCode.CONFIG_INVALID, f"{where}: {exc}") from None


def _group_legacy(testbed: dict[str, Any], source: str) -> dict[str, tuple[str, ...]]:
    """``testbed.custom.groups.<group>.ssh_legacy_algorithms``, by group."""
    custom = _mapping(testbed.get("custom"), f"{source}.testbed.custom")
    groups = _mapping(custom.get("groups"), f"{source}.testbed.custom.groups")
    found: dict[str, tuple[str, ...]] = {}
    for group, raw in groups.items():
        where = f"{source}: testbed.custom.groups.{group}"
        settings = _mapping(raw, where)
        if LEGACY_KEY in settings:
            found[str(group)] = _legacy(settings[LEGACY_KEY], f"{where}.{LEGACY_KEY}")
    return found


def _device_legacy(
    custom: dict[str, Any], groups: frozenset[str], by_group: dict[str, tuple[str, ...]], where: str
) -> tuple[str, ...] | None:
    if LEGACY_KEY in custom:
        return _legacy(custom[LEGACY_KEY], f"{where}.custom.{LEGACY_KEY}")
    chosen = {by_group[group] for group in groups if group in by_group}
    if len(chosen) > 1:
        named = ", ".join(sorted(group for group in groups if group in by_group))
        raise ConfigError(
            ErrorCode.CONFIG_INVALID,
            f"{where}: groups {named} set different {LEGACY_KEY}; set custom.{LEGACY_KEY} on the device",
        )
    return chosen.pop() if chosen else None


def parse_testbed(text: str, source: str = "testbed") -> Inventory:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(ErrorCode.CONFIG_INVALID, f"{source}: not valid YAML{line}") from None
    root = _mapping(data, source)
    testbed = _mapping(root.get("testbed"), f"{source}.testbed")
    defaults = _mapping(testbed.get("credentials"), "testbed.credentials")
    legacy_by_group = _group_legacy(testbed, source)
    devices: dict[str, InventoryDevice] = {}
    for name, raw in _mapping(root.get("devices"), f"{source}.devices").items():
        where = f"{source}: devices.{name}"
        device = _mapping(raw, where)
        os_name = str(device.get("os", "")).lower()
        if os_name not in set(DeviceOS):
            raise ConfigError(ErrorCode.CONFIG_INVALID, f"{where}.os must be one of {', '.join(DeviceOS)}")
        credentials = {**defaults, **_mapping(device.get("credentials"), f"{where}.credentials")}
        default = _mapping(credentials.get("default"), f"{where}.credentials.default")
        enable = _mapping(credentials.get("enable"), f"{where}.credentials.enable")
        if not default.get("username") or not default.get("password"):
            raise ConfigError(ErrorCode.CONFIG_INVALID, f"{where}: credentials.default needs username and password")
        host, port = _connection(device, where)
        custom = _mapping(device.get("custom"), f"{where}.custom")
        groups = frozenset(str(g) for g in device.get("groups") or custom.get("groups") or [])
        devices[str(name)] = InventoryDevice(
            name=str(name),
            hostname=host,
            port=port,
            os=DeviceOS(os_name),
            username=_expand(default["username"], f"{where}.credentials.default.username"),
            password=Secret(_expand(default["password"], f"{where}.credentials.default.password")),
            enable_password=(
                Secret(_expand(enable["password"], f"{where}.credentials.enable.password"))
                if enable.get("password")
                else None
            ),
            groups=groups,
            legacy_algorithms=_device_legacy(custom, groups, legacy_by_group, where),
        )
    return Inventory(devices)


class InventoryStore:
    """The current inventory; ``reload()`` swaps it only when the new file is good."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._inventory = Inventory()
        self._mtime: float | None = None
        if path is not None:
            self._inventory = parse_testbed(path.read_text(), str(path))  # a bad file at start-up is fatal
            self._mtime = path.stat().st_mtime
            logger.info("inventory: {} devices from {}", len(self._inventory.devices), path)

    @property
    def current(self) -> Inventory | None:
        return self._inventory if self.path is not None else None

    def reload(self) -> bool:
        """Re-read the file; on any error keep the last good inventory and log why."""
        if self.path is None:
            return False
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            logger.error("inventory reload failed, keeping the last good one: {} is missing", self.path)
            return False
        self._mtime = mtime  # a broken file is reported once, not on every poll
        try:
            inventory = parse_testbed(self.path.read_text(), str(self.path))
        except (OSError, ConfigError) as exc:
            message = exc.message if isinstance(exc, ConfigError) else f"{type(exc).__name__}"
            logger.error("inventory reload failed, keeping the last good one: {}", message)
            return False
        with self._lock:
            self._inventory = inventory
        logger.info("inventory reloaded: {} devices", len(inventory.devices))
        return True

    def changed_on_disk(self) -> bool:
        if self.path is None:
            return False
        try:
            return self.path.stat().st_mtime != self._mtime
        except OSError:
            return False
