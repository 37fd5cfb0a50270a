"""The inventory as an agent may see it: device names, groups, OS, and the address for history.

The service's loader (``service/device/inventory.py``) resolves every device's credentials
(``%ENV{...}``) and fails without them; the MCP server needs none, so it reads the same
testbed file for names, groups, OS and connection address only and never looks at
``credentials``. Groups come from ``groups:`` or ``custom.groups:``, the address from the
first ``ssh`` connection with an ``ip`` (else the first with one), as the loader does.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_ENV = re.compile(r"%ENV\{([A-Za-z_][A-Za-z0-9_]*)\}")


class CatalogError(Exception):
    """The inventory file cannot be read; the message names the file and key, never a value."""


@dataclass(frozen=True, slots=True)
class CatalogDevice:
    name: str
    os: str
    groups: tuple[str, ...] = ()
    address: str | None = None  # HOST or HOST:PORT, how history names the device

    def public(self) -> dict[str, Any]:
        """What an agent sees: no address, no credential."""
        return {"name": self.name, "os": self.os, "groups": list(self.groups)}


@dataclass(frozen=True, slots=True)
class Catalog:
    devices: dict[str, CatalogDevice] = field(default_factory=dict)

    def matching(self, pattern: str) -> list[CatalogDevice]:
        """An exact name or a glob (``core-*``), as the service resolves ``{"name": ...}``."""
        if pattern in self.devices:
            return [self.devices[pattern]]
        return [self.devices[n] for n in sorted(self.devices) if fnmatch.fnmatchcase(n, pattern)]

    def in_group(self, group: str) -> list[CatalogDevice]:
        return [self.devices[n] for n in sorted(self.devices) if group in self.devices[n].groups]

    def count(self, names: list[str], groups: list[str]) -> int | None:
        """How many distinct devices a request names; None when some name or group is unknown here
        (the service decides, and says so)."""
        chosen: set[str] = set()
        for pattern in names:
            found = self.matching(pattern)
            if not found:
                return None
            chosen.update(d.name for d in found)
        for group in groups:
            found = self.in_group(group)
            if not found:
                return None
            chosen.update(d.name for d in found)
        return len(chosen)

    @property
    def groups(self) -> list[str]:
        return sorted({g for d in self.devices.values() for g in d.groups})


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CatalogError(f"{where} must be a mapping")
    return value


def _address(device: dict[str, Any]) -> str | None:
    connections = device.get("connections")
    if not isinstance(connections, dict):
        return None
    candidates = [c for c in connections.values() if isinstance(c, dict) and c.get("ip")]
    ssh = [c for c in candidates if str(c.get("protocol", "ssh")).lower() == "ssh"]
    if not (ssh or candidates):
        return None
    chosen = (ssh or candidates)[0]
    host = _ENV.sub(lambda m: os.environ.get(m.group(1), m.group(0)), str(chosen["ip"]))
    port = str(chosen.get("port", 22))
    return host if port == "22" else f"{host}:{port}"


def parse_catalog(text: str, source: str = "testbed") -> Catalog:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise CatalogError(f"{source}: not valid YAML") from None
    root = _mapping(data, source)
    devices: dict[str, CatalogDevice] = {}
    for name, raw in _mapping(root.get("devices"), f"{source}.devices").items():
        device = _mapping(raw, f"{source}: devices.{name}")
        custom = _mapping(device.get("custom"), f"{source}: devices.{name}.custom")
        groups = tuple(sorted({str(g) for g in device.get("groups") or custom.get("groups") or []}))
        devices[str(name)] = CatalogDevice(str(name), str(device.get("os", "")).lower(), groups, _address(device))
    return Catalog(devices)


def load_catalog(path: Path | None) -> Catalog | None:
    """The catalog of the inventory file, read afresh (the file may change); None without one."""
    if path is None:
        return None
    try:
        text = path.read_text()
    except OSError as exc:
        raise CatalogError(f"cannot read the inventory file {path} ({type(exc).__name__})") from None
    return parse_catalog(text, str(path))
