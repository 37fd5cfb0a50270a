"""``sequence_outputs``: a lab device whose answer to a command changes from run to run,
counted per device across sessions (what change-detection tests need)."""

from __future__ import annotations

import pytest

from service.devtools.lab.outputs import OutputStore
from service.devtools.lab.spec import SpecError, apply_overrides
from tests.lab.test_lab_shell import iosxe, lab_of, session

pytestmark = pytest.mark.lab

SEQUENCE = {"show ip bgp summary": ["first answer", "second answer", "third answer"]}


@pytest.mark.asyncio
async def test_the_kth_run_gets_the_kth_text_across_sessions_then_the_last() -> None:
    device = apply_overrides(iosxe(terminal_length=0), {"sequence_outputs": SEQUENCE})
    async with lab_of(device) as lab:
        prompt = "lab-iosxe-01#"
        async with session(lab.devices[0]) as term:
            await term.read_until(prompt)
            assert "first answer" in await term.run("show ip bgp summary", prompt)
            assert "second answer" in await term.run("show  IP bgp   summary", prompt)  # normalised
        async with session(lab.devices[0]) as term:  # a new session continues the count
            await term.read_until(prompt)
            assert "third answer" in await term.run("show ip bgp summary", prompt)
            assert "third answer" in await term.run("show ip bgp summary", prompt)  # stays on the last
            assert "Cisco IOS XE Software" in await term.run("show version", prompt)  # other commands as before


@pytest.mark.asyncio
async def test_a_pipe_line_is_another_command() -> None:
    device = apply_overrides(iosxe(terminal_length=0), {"sequence_outputs": {"show clock": ["one", "two"]}})
    async with lab_of(device) as lab, session(lab.devices[0]) as term:
        prompt = "lab-iosxe-01#"
        await term.read_until(prompt)
        assert "one" not in await term.run("show clock | include xyz", prompt)
        assert "one" in await term.run("show clock", prompt)


def test_the_spec_field_is_checked_and_counted_per_store() -> None:
    for bad in ({"show x": "text"}, {"show x": []}, ["show x"], {"show x": [1]}):
        with pytest.raises(SpecError):
            apply_overrides(iosxe(), {"sequence_outputs": bad})
    device = apply_overrides(iosxe(), {"sequence_outputs": {"show x": ["a", "b"]}})
    store = OutputStore.for_device(device)
    answers = [store.next_in_sequence("show x") for _ in range(3)]
    assert [answer.text for answer in answers if answer] == ["a", "b", "b"]
    assert store.next_in_sequence("show y") is None
    assert OutputStore.for_device(device).next_in_sequence("show x").text == "a"  # type: ignore[union-attr]
