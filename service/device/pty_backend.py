"""Unicon's own OpenSSH (pty) backend, with the device's bytes passed through ``DeviceText``.

Selected with the Unicon setting ``BACKEND`` (see ``unicon_session.BACKENDS``), the hook
Unicon offers for its transports.
"""

from __future__ import annotations

from typing import Any

from unicon.eal.backend.pty_backend import Spawn as UniconPtySpawn

from service.device.device_text import DeviceText


class Spawn(UniconPtySpawn):  # type: ignore[misc]  # Unicon is untyped
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.device_text = DeviceText()
        super().__init__(*args, **kwargs)

    def _read(self, size: int) -> bytes:
        return self.device_text.feed(super()._read(size))
