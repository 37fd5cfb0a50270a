"""The sidecar port: Prometheus metrics, liveness and readiness."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.conftest import READY_CHECKS, ServiceProcess

pytestmark = pytest.mark.bus


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_healthz_and_readyz(service: ServiceProcess) -> None:
    assert get(service.metrics_port, "/healthz") == (200, '{"status": "alive"}\n')
    status, body = get(service.metrics_port, "/readyz")
    assert status == 200
    checks = READY_CHECKS
    assert json.loads(body) == {"ready": True, "checks": checks}
    assert get(service.metrics_port, "/nope")[0] == 404


def test_metrics_expose_bounded_labels(service: ServiceProcess) -> None:
    status, text = get(service.metrics_port, "/metrics")
    assert status == 200
    assert "pyats_pool_workers 50.0" in text
    assert "# TYPE pyats_requests_total counter" in text
    assert "127.0.0.1" not in text  # no hostnames as label values
