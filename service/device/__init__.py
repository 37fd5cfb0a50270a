"""The device layer: Unicon sessions (pty or paramiko SSH), Genie parsing, the inventory.

Importing it changes nothing in the process. ``prepare_process()`` makes the two
process-wide changes the device layer wants, once, at start-up (the service and each
device worker call it where they build the device layer; so do tests and benchmarks
that build one themselves):

- ``inspect.getfullargspec`` answered from a cache (``argspec_cache``): Unicon calls it
  ~36 times per command;
- room for every device's prompt patterns in Python's regex cache (``regex_cache``).
"""

from __future__ import annotations

from service.device import argspec_cache, regex_cache

__all__ = ["prepare_process"]


def prepare_process() -> None:
    """Install the getfullargspec cache and make room in the regex cache (idempotent; any time)."""
    argspec_cache.install()
    regex_cache.make_room()
