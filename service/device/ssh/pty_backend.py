"""Unicon's own OpenSSH (pty) backend, with two changes to how it reads.

Selected with the Unicon setting ``BACKEND`` (see ``unicon_session.BACKENDS``), the hook
Unicon offers for its transports.

- The device's bytes pass through ``DeviceText`` (see there).
- One read takes everything the pty has ready, up to ``READ_AHEAD`` bytes, not one pty
  read (at most 4095 bytes on Linux); see ``device_text.READ_AHEAD``.
"""

from __future__ import annotations

from typing import Any

from unicon.eal.backend.pty_backend import Spawn as UniconPtySpawn

from service.device.device_text import BULK, BULK_WAIT, READ_AHEAD, DeviceText


class Spawn(UniconPtySpawn):  # type: ignore[misc]  # Unicon is untyped
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.device_text = DeviceText()
        super().__init__(*args, **kwargs)

    def _read(self, size: int) -> bytes:
        data = super()._read(size)
        if data:
            chunks = [data]
            total = len(data)
            while total < READ_AHEAD and self.is_readable(BULK_WAIT if total >= BULK else 0):
                more = super()._read(size)
                if not more:
                    break
                chunks.append(more)
                total += len(more)
            data = b"".join(chunks)
        return self.device_text.feed(data)
