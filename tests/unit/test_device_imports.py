"""The device layer imports only itself, the domain and the contract: what it needs from the
service's logging set-up is passed in (``UniconSessionFactory(route_logs=...)``). The layer
contract (``lint-imports``) would let it import ``observability``; this keeps it from doing so."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

DEVICE = Path(__file__).resolve().parents[2] / "service" / "device"


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_device_layer_imports_only_itself_the_domain_and_the_contract() -> None:
    sources = sorted(DEVICE.rglob("*.py"))
    assert len(sources) > 10
    outside = {
        f"{path.relative_to(DEVICE)}: {module}"
        for path in sources
        for module in imported_modules(path)
        if module.startswith("service")
        and not module.startswith(("service.device", "service.domain", "service.contract"))
    }
    assert outside == set()
