"""After every other test has used the lab, its log must hold zero config-mode lines."""

from __future__ import annotations

import pytest

from service.devtools.lab.runner import LabProcess
from tests.conftest import LAB_ENABLE, LAB_PASSWORD
from tests.front_doors import MARKERS, SENT

pytestmark = [pytest.mark.lab, pytest.mark.readonly_proof]


def test_no_configuration_line_ever_reached_a_device(lab: LabProcess) -> None:
    entries = lab.read_log()
    assert len(entries) > 0, "the lab received nothing: the proof would be empty"
    config = lab.config_lines()
    assert config == [], f"config-mode lines reached the lab: {config[:5]}"
    received = {entry["line"].strip().lower() for entry in entries}
    assert not {line for line in received if line.startswith(("conf", "config", "write", "copy", "reload"))}


def test_passwords_were_never_logged_as_typed_lines(lab: LabProcess) -> None:
    text = lab.log_path.read_text()
    assert LAB_PASSWORD not in text
    assert LAB_ENABLE not in text


def test_the_front_doors_traffic_reached_this_lab(lab: LabProcess) -> None:
    """The HTTP gateway's and the MCP server's tests asked the same session lab the proof reads
    (each sent its marker command); skipped when neither ran in this session."""
    if not SENT:
        pytest.skip("no front door's tests ran in this session")
    received = " ".join(entry["line"] for entry in lab.read_log())
    missing = sorted(door for door in SENT if MARKERS[door] not in received)
    assert not missing, f"these front doors' commands never reached the proof's lab: {missing}"
