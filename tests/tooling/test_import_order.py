"""The getfullargspec cache is in place before unicon is imported, in a fresh interpreter
(tests/unit/test_argspec_cache.py proves the cache itself)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.tooling


def test_the_device_layer_installs_it_before_unicon_is_imported() -> None:
    probe = (
        "import inspect, sys; import service.device.unicon_session; "
        "from service.device.argspec_cache import cached_getfullargspec as c; "
        "assert inspect.getfullargspec is c; "
        "assert list(sys.modules).index('service.device') < list(sys.modules).index('unicon')"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=120)
