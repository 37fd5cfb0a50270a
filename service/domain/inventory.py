"""Devices known by name, so requests can name them instead of carrying credentials.

The loader (``service/device/inventory.py``) reads a pyATS-style testbed file; this
module holds the result and resolves a request's names, globs and groups.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

from service.domain.models import DeviceOS, DeviceTarget, Secret


@dataclass(frozen=True, slots=True)
class InventoryDevice:
    name: str
    hostname: str
    port: int
    os: DeviceOS
    username: str
    password: Secret
    enable_password: Secret | None = None
    groups: frozenset[str] = frozenset()
    legacy_algorithms: tuple[str, ...] | None = None  # None: the service's PYATS_SSH_LEGACY_ALGORITHMS

    def target(self) -> DeviceTarget:
        return DeviceTarget(
            self.hostname,
            self.port,
            self.os,
            self.username,
            self.password,
            self.enable_password,
            self.legacy_algorithms,
        )


@dataclass(frozen=True, slots=True)
class Inventory:
    devices: dict[str, InventoryDevice] = field(default_factory=dict)

    def by_name(self, pattern: str) -> list[InventoryDevice]:
        """An exact name, or a glob such as ``core-*`` / ``edge-?[0-9]``, in name order."""
        if pattern in self.devices:
            return [self.devices[pattern]]
        return [self.devices[name] for name in sorted(self.devices) if fnmatch.fnmatchcase(name, pattern)]

    def by_group(self, group: str) -> list[InventoryDevice]:
        return [self.devices[name] for name in sorted(self.devices) if group in self.devices[name].groups]

    @property
    def groups(self) -> set[str]:
        return {group for device in self.devices.values() for group in device.groups}
