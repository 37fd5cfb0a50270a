from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from service.domain.models import DeviceOS, DeviceTarget, Secret
from tests.conftest import LAB_PASSWORD


@pytest.fixture(scope="session")
def target(lab_device: Callable[[str], dict[str, Any]]) -> Callable[..., DeviceTarget]:
    def build(name: str, password: str = LAB_PASSWORD, enable: str | None = None) -> DeviceTarget:
        entry = lab_device(name)
        return DeviceTarget(
            hostname=entry["host"],
            port=entry["port"],
            os=DeviceOS(entry["os"]),
            username="admin",
            password=Secret(password),
            enable_password=Secret(enable) if enable else None,
        )

    return build
