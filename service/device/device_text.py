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
_REPLACEMENT_BYTES = REPLACEMENT.encode()


class DeviceText:
    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.replaced = 0  # bytes (or broken sequences) that were not UTF-8, so far

    def feed(self, data: bytes) -> bytes:
        if not data:
            return data
        text = self._decoder.decode(data)
        genuine = data.count(_REPLACEMENT_BYTES)  # U+FFFD the device itself sent
        self.replaced += max(0, text.count(REPLACEMENT) - genuine)
        return text.encode()


def replaced_so_far(spawn: object) -> int:
    """How many non-UTF-8 sequences the session's backend has replaced (0 without a DeviceText)."""
    text = getattr(spawn, "device_text", None)
    return text.replaced if isinstance(text, DeviceText) else 0
