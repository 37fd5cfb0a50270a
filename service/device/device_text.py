"""What the device sends, as text Unicon can read without losing or inventing anything.

Unicon decodes each chunk it reads on its own, so a character split between two reads, or
a byte that is not UTF-8, used to become the literal text ``\\xNN``. Both SSH backends pass
their bytes through ``DeviceText`` first: it decodes incrementally (a split character waits
for its other half), turns each byte that is not UTF-8 into U+FFFD, counts them, and hands
Unicon valid UTF-8. A command whose output held such bytes is flagged
``transformed: ["invalid_utf8_replaced"]``.
"""

from __future__ import annotations

import codecs

REPLACEMENT = "\ufffd"
# A backend's read takes everything already received, up to this many bytes. Unicon appends
# each read to its buffer and looks for the prompt again: with one 4 KB read at a time, a
# 20 MB output took 5,000 rounds over a growing buffer, quadratic in its size (~50 s).
READ_AHEAD = 1 << 20
# While a large output flows (a read brought at least BULK bytes), a read also waits up to
# BULK_WAIT seconds at a time for the next piece: how much is "already received" depends
# on thread scheduling, and small rounds bring the quadratic cost back. At the end of an
# output this costs one BULK_WAIT; small outputs never wait.
BULK = 8192
BULK_WAIT = 0.002
_REPLACEMENT_BYTES = REPLACEMENT.encode()


class OutputLimitError(Exception):
    """The device sent more than the output limit since the command started."""


class DeviceText:
    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.replaced = 0  # bytes (or broken sequences) that were not UTF-8, so far
        self.limit = 0  # bytes one command may bring (0: no limit); the session sets it
        self.received = 0  # bytes since the current command started
        self.over_limit = False

    def start_command(self, limit: int) -> None:
        self.limit, self.received, self.over_limit = limit, 0, False

    def feed(self, data: bytes) -> bytes:
        if not data:
            return data
        self.received += len(data)
        if self.limit and self.received > self.limit:
            # stop reading: Unicon's buffer would otherwise grow with the output (several times its size)
            self.over_limit = True
            raise OutputLimitError(f"more than {self.limit} bytes")
        text = self._decoder.decode(data)
        genuine = data.count(_REPLACEMENT_BYTES)  # U+FFFD the device itself sent
        self.replaced += max(0, text.count(REPLACEMENT) - genuine)
        return text.encode()


def replaced_so_far(spawn: object) -> int:
    """How many non-UTF-8 sequences the session's backend has replaced (0 without a DeviceText)."""
    text = getattr(spawn, "device_text", None)
    return text.replaced if isinstance(text, DeviceText) else 0


def start_command(spawn: object, limit: int) -> None:
    text = getattr(spawn, "device_text", None)
    if isinstance(text, DeviceText):
        text.start_command(limit)


def over_limit(spawn: object) -> bool:
    text = getattr(spawn, "device_text", None)
    return isinstance(text, DeviceText) and text.over_limit
