"""Room in Python's regex cache for every device's prompt patterns.

Unicon builds each device's prompt patterns from its hostname (about 6 per device) and
passes them to ``re`` as strings, so ``re`` compiles them through its module cache. That
cache holds 512 patterns and drops the oldest first: past ~70 devices in one process the
working set no longer fits, and every command recompiles its patterns. Measured with 120
lab devices, warm CPU per command 4.4-5.4 ms with 512 entries, 2.4 ms with 8192
(``ops/bench/regex_cache.py``). Patterns are keyed by their text, so a bigger cache can
never hand one device another's prompt. ``service.device.prepare_process`` makes the room.
"""

from __future__ import annotations

import re

# ~6 patterns per device plus ~100 of Unicon's own: room for about 1,300 devices per process
SIZE = 8192


def make_room(size: int = SIZE) -> None:
    """Let ``re`` keep at least ``size`` compiled patterns (CPython's ``re._MAXCACHE``)."""
    if getattr(re, "_MAXCACHE", size) < size:
        re._MAXCACHE = size  # type: ignore[attr-defined]
