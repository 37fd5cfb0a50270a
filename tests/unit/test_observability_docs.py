"""docs/OBSERVABILITY.md names every metric the service and its front doors export, with its labels."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from service.gateway.metrics import GatewayMetrics
from service.mcp.metrics import McpMetrics
from service.mcp.server import TOOLS as MCP_TOOLS
from service.observability.metrics import ServiceMetrics
from service.workers.partition import PartitionMap
from service.workers.protocol import Heartbeat

pytestmark = pytest.mark.unit
DOC = Path(__file__).resolve().parents[2] / "docs" / "OBSERVABILITY.md"
SUFFIX = {"counter": "_total", "histogram": "", "gauge": ""}


def exported() -> dict[str, set[str]]:
    """Exposed family name -> label names, from a registry built as the service builds it."""
    metrics = ServiceMetrics()
    metrics.watch_logins(lambda: (0, 0))
    beat = Heartbeat(worker="w1", instance="i", host="h", pid=1, version="v", capacity=4)
    directory = SimpleNamespace(live={"w1": beat}, map=PartitionMap(["w1"]))  # a front with one worker
    metrics.watch_workers(lambda: directory, lambda: SimpleNamespace(lost=0, retries=0))
    # and the front doors' own registries: the HTTP gateway's and the MCP server's
    registries = (metrics.registry, GatewayMetrics().registry, McpMetrics(tuple(MCP_TOOLS)).registry)
    families: dict[str, set[str]] = {}
    for registry in registries:
        found: dict[str, set[str]] = {}
        for family in registry.collect():
            labels = {name for sample in family.samples for name in sample.labels if name != "le"}
            found[family.name + SUFFIX[family.type]] = labels
        for metric in registry._names_to_collectors.values():  # labelled metrics with no sample yet
            names = getattr(metric, "_labelnames", ())
            for family, labels in found.items():
                if family.removesuffix("_total") == getattr(metric, "_name", None):
                    labels.update(names)
        families.update(found)
    return families


def documented_rows() -> dict[str, str]:
    rows = {}
    for line in DOC.read_text().splitlines():
        match = re.match(r"^\| `(pyats_[a-z_]+)` \|(.*)$", line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def test_every_exported_metric_is_documented_with_its_labels() -> None:
    rows = documented_rows()
    for family, labels in exported().items():
        assert family in rows, f"{family} is missing from docs/OBSERVABILITY.md"
        for label in labels:
            assert f"`{label}`" in rows[family], f"{family}: label {label} is not documented"


def test_no_documented_metric_is_gone() -> None:
    assert set(documented_rows()) <= set(exported())
