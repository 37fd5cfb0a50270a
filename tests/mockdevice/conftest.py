from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from service.devtools.lab.mock import mock_program_available
from service.domain.models import DeviceOS, DeviceTarget, Secret
from tests.conftest import LAB_PASSWORD
from tests.mockdevice.cases import MockCase, skip_if_unavailable


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without unicon's mock program the whole tier skips, saying why."""
    if mock_program_available():
        return
    skip = pytest.mark.skip(reason="Unicon mock device unavailable: unicon.mock.mock_device is not installed")
    for item in items:
        if item.get_closest_marker("mockdevice"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def mock_target(lab_device: Callable[[str], dict[str, Any]]) -> Callable[[MockCase], DeviceTarget]:
    def build(case: MockCase) -> DeviceTarget:
        skip_if_unavailable(case)
        entry = lab_device(case.name)
        return DeviceTarget(
            hostname=entry["host"],
            port=entry["port"],
            os=DeviceOS(entry["os"]),
            username="admin",
            password=Secret(LAB_PASSWORD),
            enable_password=Secret(case.enable_password) if case.enable_password else None,
        )

    return build
