from pathlib import Path

import pytest

from service.contract.errors import ConfigError, ErrorCode, PolicyError
from service.domain.models import ShowCommand
from service.domain.requester_policy import RateRule
from service.pipeline.policy_file import load_policy

pytestmark = pytest.mark.unit

POLICY = """
default:
  deny: ["^show running-config", "^show tech"]
  max_devices: 10
  rate: {requests: 30}
requesters:
  netops:
    deny: []
    max_devices: 500
    redact: false
  auditor:
    allow: ["^show (version|inventory)"]
"""


@pytest.fixture
def policy_path(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


def commands(*lines: str) -> tuple[ShowCommand, ...]:
    return tuple(ShowCommand(line) for line in lines)


def test_defaults_come_from_settings_when_there_is_no_file() -> None:
    policy = load_policy(None, RateRule(60, 5000, 60), redact_by_default=True)
    rules, source = policy.rules_for("anyone")
    assert source == "default" and rules.redact and rules.rate == RateRule(60, 5000, 60)
    rules.check("anyone", commands("show running-config"), 1000, source)


def test_deny_names_the_rule(policy_path: Path) -> None:
    rules, source = load_policy(policy_path, RateRule(60, 5000, 60)).rules_for("alice")
    with pytest.raises(PolicyError) as caught:
        rules.check("alice", commands("show version", "show running-config | section bgp"), 1, source)
    assert caught.value.code is ErrorCode.COMMAND_NOT_ALLOWED
    assert caught.value.details == {"rule": "default.deny", "pattern": "^show running-config", "path": "$.commands[1]"}
    assert rules.rate == RateRule(30, 5000, 60)  # the file overrides only what it names


def test_named_requesters_override_the_default(policy_path: Path) -> None:
    policy = load_policy(policy_path, RateRule(60, 5000, 60))
    netops, source = policy.rules_for("netops")
    assert source == "requesters.netops" and not netops.redact
    netops.check("netops", commands("show running-config", "show tech-support"), 400, source)
    auditor, source = policy.rules_for("auditor")
    auditor.check("auditor", commands("show version"), 5, source)
    with pytest.raises(PolicyError) as caught:
        auditor.check("auditor", commands("show clock"), 5, source)
    assert caught.value.details["rule"] == "requesters.auditor.allow"
    with pytest.raises(PolicyError) as caught:
        auditor.check("auditor", commands("show running-config"), 5, source)  # inherits default.deny
    assert caught.value.details["rule"] == "requesters.auditor.deny"


def test_max_devices(policy_path: Path) -> None:
    rules, source = load_policy(policy_path, RateRule(60, 5000, 60)).rules_for("alice")
    with pytest.raises(PolicyError) as caught:
        rules.check("alice", commands("show version"), 11, source)
    assert caught.value.code is ErrorCode.TOO_MANY_DEVICES and caught.value.details["rule"] == "default.max_devices"


@pytest.mark.parametrize(
    "content", ["default: {deny: ['(']}", "default: {colour: blue}", "requesters: [1, 2]", ": : :"]
)
def test_a_broken_policy_file_is_a_clear_config_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_policy(path, RateRule(60, 5000, 60))
    assert str(path) in caught.value.message


def test_patterns_search_the_exact_command_line_pipe_included() -> None:
    import re

    from service.domain.models import PipeOption
    from service.domain.requester_policy import RequesterRules

    anchored = RequesterRules(allow=(re.compile("^show version$"),))
    anchored.check("a", commands("show version"), 1, "x")
    with pytest.raises(PolicyError):  # the pipe is part of the line the patterns see
        anchored.check("a", (ShowCommand("show version", PipeOption.INCLUDE, "uptime"),), 1, "x")
    no_pipes = RequesterRules(deny=(re.compile(r"\| include"),))
    with pytest.raises(PolicyError):
        no_pipes.check("a", (ShowCommand("show clock", PipeOption.INCLUDE, "x"),), 1, "x")
    RequesterRules(allow=(re.compile("version"),)).check("a", commands("show version"), 1, "x")  # anywhere in it
