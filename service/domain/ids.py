"""Request ids: time-ordered (UUIDv7 layout) so logs and history sort by arrival."""

from __future__ import annotations

import secrets
import time
import uuid


def new_request_id() -> str:
    """A UUIDv7 string: 48-bit Unix milliseconds, version 7, variant 10, 74 random bits."""
    millis = time.time_ns() // 1_000_000
    rand = secrets.randbits(74)
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= (rand >> 62) << 64  # 12 bits rand_a
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))
