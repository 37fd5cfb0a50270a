"""A real device, opt-in: set TEST_DEVICE_HOST, TEST_DEVICE_USER, TEST_DEVICE_PASS and TEST_DEVICE_OS.

Optional: TEST_DEVICE_PORT (22), TEST_DEVICE_ENABLE. Only `show` commands are sent.
Run with `.venv/bin/python -m pytest -m integration tests/integration`.
"""

from __future__ import annotations

import os

import pytest

from service.device.genie_parser import GenieOutputParser
from service.device.unicon_session import SessionOptions, UniconSessionFactory
from service.domain.models import DeviceOS, DeviceTarget, ParseStatus, Secret

REQUIRED = ("TEST_DEVICE_HOST", "TEST_DEVICE_USER", "TEST_DEVICE_PASS", "TEST_DEVICE_OS")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not all(os.environ.get(name) for name in REQUIRED), reason=f"set {', '.join(REQUIRED)} to test a real device"
    ),
]


def test_show_version_on_a_real_device() -> None:
    enable = os.environ.get("TEST_DEVICE_ENABLE")
    target = DeviceTarget(
        hostname=os.environ["TEST_DEVICE_HOST"],
        port=int(os.environ.get("TEST_DEVICE_PORT", "22")),
        os=DeviceOS(os.environ["TEST_DEVICE_OS"]),
        username=os.environ["TEST_DEVICE_USER"],
        password=Secret(os.environ["TEST_DEVICE_PASS"]),
        enable_password=Secret(enable) if enable else None,
    )
    strict = os.environ.get("TEST_DEVICE_HOST_KEY_CHECKING", "accept-new")
    session = UniconSessionFactory(SessionOptions(strict_host_key_checking=strict)).open(target, connect_timeout=60)
    try:
        output = session.execute("show version", timeout=60)
    finally:
        session.close()
    assert output.strip()
    outcome = GenieOutputParser().parse(target.os, "show version", output)
    assert outcome.status is ParseStatus.OK, outcome.message
