"""ops/prometheus and the dashboard's queries checked by the Prometheus tooling itself
(skipped when promtool is not installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.unit.test_ops_monitoring import PROMETHEUS, dashboard_exprs, with_stand_ins

pytestmark = pytest.mark.tooling


@pytest.fixture
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not on PATH: `make promtool` installs Debian's prometheus package (as root)")
    return path


def run_promtool(promtool: str, *args: str | Path) -> str:
    done = subprocess.run([promtool, *map(str, args)], capture_output=True, text=True, timeout=60, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"promtool {' '.join(map(str, args))} failed:\n{output}"
    return output


def test_promtool_accepts_the_alert_rules(promtool: str) -> None:
    assert "SUCCESS" in run_promtool(promtool, "check", "rules", PROMETHEUS / "alerts.yml")


def test_promtool_accepts_the_config_and_finds_its_rules(promtool: str, tmp_path: Path) -> None:
    # the layout of the container: prometheus.yml and alerts.yml side by side in one folder
    folder = tmp_path / "etc-prometheus"
    folder.mkdir()
    for name in ("prometheus.yml", "alerts.yml"):
        shutil.copy(PROMETHEUS / name, folder / name)
    output = run_promtool(promtool, "check", "config", folder / "prometheus.yml")
    assert "1 rule files found" in output


def test_promtool_rule_unit_tests_pass(promtool: str) -> None:
    """alerts.test.yml proves PyatsRoDown, the error ratio and the other alerts fire on synthetic series."""
    tests = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())
    tested = {case["alertname"] for group in tests["tests"] for case in group["alert_rule_test"]}
    assert {"PyatsRoDown", "PyatsRoRequestErrorRatioHigh"} <= tested
    assert "SUCCESS" in run_promtool(promtool, "test", "rules", PROMETHEUS / "alerts.test.yml")


def test_dashboard_queries_are_valid_promql(promtool: str, tmp_path: Path) -> None:
    """promtool parses every panel query once Grafana's variables are put in, as recording rules."""
    rules = []
    for index, (_, expr) in enumerate(dashboard_exprs()):
        promql = with_stand_ins(expr)
        assert "$" not in promql, f"a Grafana variable has no stand-in here: {promql}"
        rules.append({"record": f"dashboard:query_{index}", "expr": promql})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert f"SUCCESS: {len(rules)} rules found" in run_promtool(promtool, "check", "rules", path)
