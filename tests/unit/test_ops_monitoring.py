"""ops/: the Grafana dashboard and the Prometheus rules ask only for series the service exports.

The exported names come from the code (a ServiceMetrics registry, as app.py builds it), so a
renamed metric fails here instead of leaving an empty panel or an alert that can never fire.
The promtool checks are in tests/tooling/test_promtool_ops.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from service.config import Settings
from service.gateway.metrics import GatewayMetrics
from service.mcp.metrics import McpMetrics
from service.mcp.server import TOOLS as MCP_TOOLS
from service.observability.metrics import ServiceMetrics

pytestmark = pytest.mark.unit

OPS = Path(__file__).resolve().parents[2] / "ops"
DASHBOARD = OPS / "grafana" / "dashboards" / "pyats-ro-bus.json"
PROMETHEUS = OPS / "prometheus"
GRAFANA_PROVISIONING = OPS / "grafana" / "provisioning"
JOB = "pyats-ro"
# the front doors' scrape jobs and their compose targets (service name: default port)
FRONT_DOOR_JOBS = {
    "pyats-ro-gateway": f"gateway:{Settings.defaults().gateway.port}",
    "pyats-ro-mcp": f"mcp:{Settings.defaults().mcp.port}",
}

# Series Prometheus writes itself for every target.
PROMETHEUS_SERIES = frozenset({"up"})

# The series names a family of each type shows in the text exposition (`_created` is left out:
# neither a dashboard nor an alert has a use for it).
SERIES_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("", "_count", "_sum"),
    "info": ("_info",),
}

_STRING = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|`[^`]*`")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(\s*\()?")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right"}
)
_GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$instance": ".*"}


def series_of(registry: CollectorRegistry) -> frozenset[str]:
    names: set[str] = set()
    for family in registry.collect():
        assert family.type in SERIES_SUFFIXES, f"{family.name}: no suffixes known for type {family.type}"
        names.update(family.name + suffix for suffix in SERIES_SUFFIXES[family.type])
    return frozenset(names)


def exported_series() -> frozenset[str]:
    metrics = ServiceMetrics()
    metrics.watch_logins(lambda: (0, 0))  # app.py registers it on every instance
    metrics.watch_workers(lambda: None, lambda: None)  # and this one on a front with device workers
    return series_of(metrics.registry)


def front_door_series() -> frozenset[str]:
    """The front doors' own registries: the gateway's (build_app) and the MCP server's (build_server)."""
    return series_of(GatewayMetrics().registry) | series_of(McpMetrics(tuple(MCP_TOOLS)).registry)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers outside strings, label
    matchers, ranges and groupings that are neither a function call nor a keyword."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    return {
        match.group(1)
        for match in _IDENTIFIER.finditer(text)
        if match.group(2) is None and match.group(1) not in _KEYWORDS
    }


def with_stand_ins(expr: str) -> str:
    """The query as Prometheus gets it once Grafana has put in its variables (longest name first)."""
    for variable, value in sorted(_GRAFANA_VARIABLES.items(), key=lambda item: -len(item[0])):
        expr = expr.replace(variable, value)
    return expr


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def query_panels() -> list[dict[str, Any]]:
    """Every panel but the rows, which only group the panels below them."""
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def dashboard_exprs() -> list[tuple[str, str]]:
    return [(panel["title"], target["expr"]) for panel in query_panels() for target in panel["targets"]]


def panels_of_row(title: str) -> list[dict[str, Any]]:
    """The panels between the row of that title and the next row (an open row's panels lie after it)."""
    panels = sorted(dashboard()["panels"], key=lambda panel: (panel["gridPos"]["y"], panel["gridPos"]["x"]))
    rows = [index for index, panel in enumerate(panels) if panel["type"] == "row"]
    [start] = [index for index in rows if panels[index]["title"] == title]
    end = next((index for index in rows if index > start), len(panels))
    return panels[start + 1 : end]


def alert_rules() -> list[dict[str, Any]]:
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule for group in rules["groups"] for rule in group["rules"]]


def test_metric_names_finds_selectors_only() -> None:
    expr = (
        'histogram_quantile(0.9, sum by (le, os) (rate(pyats_a_bucket{os=~"ios|nxos", x="{y}"}[$__rate_interval])))'
        " / on (instance) group_left pyats_b > bool 0 or max_over_time(pyats_c[10m:1m] offset 5m)"
    )
    assert metric_names(expr) == {"pyats_a_bucket", "pyats_b", "pyats_c"}


def test_exported_series_come_from_the_registry() -> None:
    names = exported_series()
    assert {"pyats_requests_total", "pyats_request_duration_seconds_bucket", "pyats_pool_workers"} <= names
    assert "pyats_logins_total" in names  # the collector read from the session pool at scrape time
    assert "pyats_requests" not in names  # a counter is only ever seen with _total


def test_dashboard_loads_with_a_fixed_uid_and_no_inputs() -> None:
    board = dashboard()
    assert board["uid"] == "pyats-ro-bus"
    assert board["schemaVersion"] >= 39
    assert "__inputs" not in board
    assert "id" not in board  # an id pins the dashboard to one Grafana database
    assert board["panels"]


def test_dashboard_has_a_prometheus_datasource_variable() -> None:
    variables = {variable["name"]: variable for variable in dashboard()["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for variable in variables.values():
        if "datasource" in variable:
            assert variable["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, variable["name"]


@pytest.mark.parametrize("panel", query_panels(), ids=lambda panel: str(panel["title"]))
def test_every_panel_queries_through_the_variable(panel: dict[str, Any]) -> None:
    uses_variable = {"type": "prometheus", "uid": "${datasource}"}
    assert panel["datasource"] == uses_variable
    assert panel["targets"], "a panel without a query stays empty"
    for target in panel["targets"]:
        assert target.get("datasource", uses_variable) == uses_variable
        assert target["expr"].strip()


def test_dashboard_panels_have_unique_ids_and_refids() -> None:
    panels = dashboard()["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    for panel in query_panels():
        refs = [target["refId"] for target in panel["targets"]]
        assert len(set(refs)) == len(refs), panel["title"]


def test_rows_are_open_and_hold_no_query() -> None:
    """An open row keeps its panels in the dashboard's list; a collapsed one would hide them from these tests."""
    rows = [panel for panel in dashboard()["panels"] if panel["type"] == "row"]
    assert rows, "no row: the schedules and changes panels have lost their group"
    for row in rows:
        assert row["collapsed"] is False, row["title"]
        assert row["panels"] == [], row["title"]
        assert "targets" not in row, row["title"]
        assert (row["gridPos"]["x"], row["gridPos"]["w"], row["gridPos"]["h"]) == (0, 24, 1), row["title"]


def test_every_schedule_and_change_metric_has_a_panel_in_its_row() -> None:
    wanted = {name for name in exported_series() if name.startswith(("pyats_schedule", "pyats_change_events"))}
    wanted -= {"pyats_schedule_tick_lag_seconds_count", "pyats_schedule_tick_lag_seconds_sum"}
    asked = {
        name
        for panel in panels_of_row("Schedules and changes")
        for target in panel["targets"]
        for name in metric_names(target["expr"])
    }
    assert wanted, "no schedule metrics exported: the prefixes above are stale"
    assert wanted <= asked, f"no panel in the row for {sorted(wanted - asked)}"
    assert "histogram_quantile(0.99, sum by (le) (rate(pyats_schedule_tick_lag_seconds_bucket" in " ".join(
        expr for _, expr in dashboard_exprs()
    )


def test_front_door_series_come_from_their_registries() -> None:
    names = front_door_series()
    assert {"pyats_gateway_requests_total", "pyats_gateway_request_duration_seconds_bucket"} <= names
    assert {"pyats_mcp_tool_calls_total", "pyats_mcp_tool_call_seconds_bucket"} <= names
    assert not names & exported_series(), "the front doors' names are their own"


def test_dashboard_queries_ask_only_for_exported_series() -> None:
    known = exported_series() | front_door_series() | PROMETHEUS_SERIES
    used = {(title, name) for title, expr in dashboard_exprs() for name in metric_names(expr)}
    assert used, "no metric names found: the PromQL scanner is broken"
    unknown = sorted((title, name) for title, name in used if name not in known)
    assert not unknown, f"the dashboard asks for series the service does not export: {unknown}"


def test_front_door_panels_ask_their_own_job() -> None:
    """A front door's series under job pyats-ro (or the reverse) would leave a panel empty."""
    jobs = {"pyats_gateway_": "pyats-ro-gateway", "pyats_mcp_": "pyats-ro-mcp"}
    asked = set()
    for title, expr in dashboard_exprs():
        for name in metric_names(expr):
            job = next((job for prefix, job in jobs.items() if name.startswith(prefix)), JOB)
            if name != "up":
                assert f'job="{job}"' in expr, f"{title}: {name} is scraped by job {job}"
            asked.add(job)
    assert set(jobs.values()) <= asked, "no panel for a front door"


def test_alert_rules_ask_only_for_exported_series() -> None:
    known = exported_series() | PROMETHEUS_SERIES
    for rule in alert_rules():
        used = metric_names(rule["expr"])
        assert used, rule["alert"]
        assert used <= known, f"{rule['alert']} asks for {sorted(used - known)}, which the service does not export"


def test_every_alert_has_a_duration_severity_and_text() -> None:
    rules = alert_rules()
    assert {"PyatsRoDown", "PyatsRoRequestErrorRatioHigh", "PyatsRoDeviceFailureRatioHigh"} <= {
        rule["alert"] for rule in rules
    }
    for rule in rules:
        assert rule.get("for"), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert rule["annotations"]["description"].strip(), rule["alert"]
        assert f'job="{JOB}"' in rule["expr"], f"{rule['alert']} should look at the {JOB} job only"


SCHEDULE_ALERTS = ("PyatsBgpNeighbourStateChanged", "PyatsScheduleTicksMissed", "PyatsScheduleTicksLate")


def alert_rule_tests() -> list[dict[str, Any]]:
    tests = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())
    return [case for group in tests["tests"] for case in group["alert_rule_test"]]


@pytest.mark.parametrize("alert", SCHEDULE_ALERTS)
def test_schedule_and_change_alerts_have_promtool_cases_that_fire_and_stay_quiet(alert: str) -> None:
    """promtool runs them (tests/tooling/test_promtool_ops.py); here: both sides are covered."""
    cases = [case for case in alert_rule_tests() if case["alertname"] == alert]
    assert any(case.get("exp_alerts") for case in cases), f"{alert}: no case where it fires"
    assert any(not case.get("exp_alerts") for case in cases), f"{alert}: no case where it stays quiet"


def test_bgp_alert_matches_the_bgp_rule_names_only() -> None:
    """The command label is the volatile-field rule's name (or other); PromQL regexes are anchored."""
    [rule] = [rule for rule in alert_rules() if rule["alert"] == "PyatsBgpNeighbourStateChanged"]
    patterns = set(re.findall(r'pyats_change_events_total\{[^}]*command=~"([^"]+)"', rule["expr"]))
    assert len(patterns) == 1, patterns
    pattern = re.compile(patterns.pop())
    for name in ("show ip bgp summary", "show bgp vrf all all summary", "show bgp instance summary", "show bgp all"):
        assert pattern.fullmatch(name), name
    for name in ("other", "show ip interface brief", "show ip route bgp"):
        assert not pattern.fullmatch(name), name
    assert "pyats-ro watch --command 'show ip bgp*'" in rule["annotations"]["description"]


def test_prometheus_scrapes_both_replicas_and_loads_the_rules() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    # relative to prometheus.yml: /etc/prometheus in the container, where ./ops/prometheus is mounted
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {JOB, *FRONT_DOOR_JOBS}
    assert jobs[JOB]["static_configs"] == [{"targets": ["pyats-ro-1:9464", "pyats-ro-2:9464"]}]
    for job, target in FRONT_DOOR_JOBS.items():
        # the front doors serve /metrics on their own port (GatewaySettings.port, McpSettings.port)
        assert jobs[job]["static_configs"] == [{"targets": [target]}], job


def test_grafana_provisioning_matches_the_compose_mounts() -> None:
    sources = yaml.safe_load((GRAFANA_PROVISIONING / "datasources" / "prometheus.yml").read_text())
    [source] = sources["datasources"]
    assert (source["type"], source["uid"], source["url"]) == ("prometheus", "prometheus", "http://prometheus:9090")
    providers = yaml.safe_load((GRAFANA_PROVISIONING / "dashboards" / "pyats-ro-bus.yml").read_text())
    [provider] = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
