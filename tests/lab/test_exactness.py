"""Unicon's fixed waits are off; these prove every output still arrives exactly.

Structured commands run with no after-prompt wait; free-text commands (running-config,
logging, ...) keep one short re-check. See service/device/unicon_session.py.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from service.device.unicon_session import UniconSessionFactory
from service.domain.models import DeviceTarget
from service.lab.generated import generated_output
from service.lab.outputs import builtin_outputs

pytestmark = pytest.mark.lab

Target = Callable[..., DeviceTarget]


def lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.replace("\r", "").strip().splitlines()]


def run(factory: UniconSessionFactory, target: DeviceTarget, *commands: str) -> list[str]:
    session = factory.open(target, connect_timeout=20)
    try:
        return [session.execute(command, timeout=60) for command in commands]
    finally:
        session.close()


def test_banner_prompt_line_followed_by_a_pause_does_not_cut_the_running_config(
    factory: UniconSessionFactory, target: Target
) -> None:
    config, clock = run(factory, target("banner-pause"), "show running-config", "show clock")
    want = lines(builtin_outputs("iosxe")["show running-config"].render("banner-pause"))
    assert "Router#" in want
    assert lines(config) == want
    assert len(lines(clock)) == 1  # nothing of the config leaked into the next command


def test_outputs_arriving_in_pieces_are_complete(factory: UniconSessionFactory, target: Target) -> None:
    config, brief = run(factory, target("pieces"), "show running-config", "show ip interface brief")
    assert lines(config) == lines(builtin_outputs("iosxe")["show running-config"].render("pieces"))
    assert lines(brief) == lines(builtin_outputs("iosxe")["show ip interface brief"].render("pieces"))


def test_one_megabyte_outputs_are_exact_even_with_the_device_prompt_inside(
    factory: UniconSessionFactory, target: Target
) -> None:
    logging_output, brief, clock = run(
        factory, target("bulky"), "show logging", "show ip interface brief", "show clock"
    )
    want_logging = generated_output("logging", 1_000_000, "bulky", prompt_line="bulky#")
    assert "bulky#" in want_logging.splitlines()
    assert lines(logging_output) == lines(want_logging)
    assert lines(brief) == lines(generated_output("ip-brief", 1_000_000, "bulky"))
    assert len(lines(clock)) == 1
