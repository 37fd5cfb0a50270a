"""Importing the device layer patches nothing; ``prepare_process()`` installs the getfullargspec
cache and the regex room, in a fresh interpreter, whichever of Unicon and the service is
imported first (tests/unit/test_argspec_cache.py proves the cache itself)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.tooling


PROBE = """
import inspect, re, sys
real, room = inspect.getfullargspec, re._MAXCACHE
import service.device
from service.device import argspec_cache
if "{order}" == "unicon-first":
    import service.device.unicon_session
    from unicon.eal import dialogs
    assert inspect.getfullargspec is real and dialogs.getfullargspec is real, "patched on import"
    assert re._MAXCACHE == room, "regex cache changed on import"
service.device.prepare_process()
import service.device.unicon_session
from unicon.eal import dialog_processor, dialogs
from unicon.eal.dialogs import Statement
cached = argspec_cache.cached_getfullargspec
assert inspect.getfullargspec is cached, "not installed"
assert dialogs.getfullargspec is cached and dialog_processor.getfullargspec is cached, "Unicon keeps its own"
assert re._MAXCACHE >= 8192
def action(spawn): pass
before = sum(argspec_cache.hits())
Statement(pattern="x", action=action)
assert sum(argspec_cache.hits()) > before, "Unicon's dialogs do not use the cache"
"""


@pytest.mark.parametrize("order", ["unicon-first", "prepare-first"])
def test_importing_the_device_layer_patches_nothing_until_prepare_process(order: str) -> None:
    """Importing changes nothing; ``prepare_process()`` installs the cache and the regex room, and
    Unicon's dialogs use the cache whether they were imported before it or after."""
    subprocess.run([sys.executable, "-c", PROBE.format(order=order)], check=True, timeout=120)
