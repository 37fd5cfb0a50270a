"""The lab's CLI over real SSH: prompts, enable, paging, pipes, config mode, faults, log.

Each test starts its own in-process lab on free ports and stops it on exit, so a
test sees exactly the devices it describes.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncssh
import pytest

from service.devtools.lab.log import config_lines, read_log
from service.devtools.lab.server import LabServer
from service.devtools.lab.spec import DeviceSpec
from service.devtools.lab.terminal import MORE_PROMPT

pytestmark = pytest.mark.lab

PROMPT_END = re.compile(r"[>#] ?$")


class Terminal:
    """A tiny interactive SSH client: send keys, read until a pattern shows up."""

    def __init__(self, process: asyncssh.SSHClientProcess[str]) -> None:
        self.process = process
        self.buffer = ""

    async def read_until(self, pattern: str | re.Pattern[str], timeout: float = 5.0) -> str:
        regex = re.compile(re.escape(pattern)) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        while not regex.search(self.buffer):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{regex.pattern!r} not seen in {self.buffer[-300:]!r}")
            chunk = await asyncio.wait_for(self.process.stdout.read(65536), remaining)
            if not chunk:
                raise EOFError(self.buffer)
            self.buffer += chunk
        match = regex.search(self.buffer)
        assert match is not None
        seen, self.buffer = self.buffer[: match.end()], self.buffer[match.end() :]
        return seen

    async def read_all(self, timeout: float = 5.0) -> str:
        """Everything until the server closes the channel."""
        seen = self.buffer
        self.buffer = ""
        while True:
            chunk = await asyncio.wait_for(self.process.stdout.read(65536), timeout)
            if not chunk:
                return seen
            seen += chunk

    def send(self, keys: str) -> None:
        self.process.stdin.write(keys)

    async def run(self, command: str, prompt: str, ending: str = "\r") -> str:
        """Send a command; return what came back between the echo and the prompt."""
        self.send(command + ending)
        seen = await self.read_until(prompt)
        echo = command + "\r\n"
        assert seen.startswith(echo), seen[:200]
        return seen[len(echo) : -len(prompt)]


@asynccontextmanager
async def lab_of(*devices: DeviceSpec, log: Path | None = None) -> AsyncIterator[LabServer]:
    server = LabServer(devices, log_path=log)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@asynccontextmanager
async def session(device: DeviceSpec, *, password: str = "admin", kbdint: bool = False) -> AsyncIterator[Terminal]:
    options: dict[str, object] = {"preferred_auth": "keyboard-interactive" if kbdint else "password"}
    async with asyncssh.connect(
        device.host,
        device.port,
        username="admin",
        password=password,
        known_hosts=None,
        **options,  # type: ignore[arg-type]
    ) as connection:
        process = await connection.create_process(term_type="vt100", encoding="utf-8")
        try:
            yield Terminal(process)
        finally:
            process.close()


def iosxe(**changes: object) -> DeviceSpec:
    return DeviceSpec(name="lab-iosxe-01", os="iosxe", **changes)  # type: ignore[arg-type]


@pytest.mark.asyncio
@pytest.mark.parametrize("kbdint", [False, True], ids=["password", "keyboard-interactive"])
async def test_login_succeeds_with_right_password(kbdint: bool) -> None:
    async with lab_of(iosxe()) as lab, session(lab.devices[0], kbdint=kbdint) as term:
        first = await term.read_until("lab-iosxe-01#")
        assert first == "\r\nlab-iosxe-01#"


@pytest.mark.asyncio
@pytest.mark.parametrize("kbdint", [False, True], ids=["password", "keyboard-interactive"])
async def test_login_fails_with_wrong_password(kbdint: bool) -> None:
    async with lab_of(iosxe()) as lab:
        with pytest.raises(asyncssh.PermissionDenied):
            async with session(lab.devices[0], password="wrong", kbdint=kbdint):
                pass


@pytest.mark.asyncio
async def test_auth_failure_rejects_even_the_right_password() -> None:
    async with lab_of(iosxe(auth_failure=True)) as lab:
        with pytest.raises(asyncssh.PermissionDenied):
            async with session(lab.devices[0]):
                pass


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("os_name", "enable_password", "prompt"),
    [
        ("ios", None, "lab-ios-01#"),
        ("ios", "en", "lab-ios-01>"),
        ("iosxe", None, "lab-iosxe-01#"),
        ("iosxe", "en", "lab-iosxe-01>"),
        ("nxos", None, "lab-nxos-01# "),
        ("nxos", "en", "lab-nxos-01# "),
        ("iosxr", None, "RP/0/RP0/CPU0:lab-iosxr-01#"),
        ("asa", None, "lab-asa-01> "),
    ],
)
async def test_first_prompt_per_os(os_name: str, enable_password: str | None, prompt: str) -> None:
    device = DeviceSpec(name=f"lab-{os_name}-01", os=os_name, enable_password=enable_password)
    async with lab_of(device) as lab, session(lab.devices[0]) as term:
        assert await term.read_until(PROMPT_END) == "\r\n" + prompt


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("os_name", "denied", "user", "privileged"),
    [
        ("iosxe", "% Access denied", "lab-iosxe-01>", "lab-iosxe-01#"),
        ("asa", "% Invalid password", "lab-asa-01> ", "lab-asa-01# "),
    ],
)
async def test_enable_password_right_and_wrong(
    tmp_path: Path, os_name: str, denied: str, user: str, privileged: str
) -> None:
    log = tmp_path / "lab.jsonl"
    device = DeviceSpec(name=f"lab-{os_name}-01", os=os_name, enable_password="s3cret-en")
    async with lab_of(device, log=log) as lab, session(lab.devices[0]) as term:
        await term.read_until(user)
        term.send("enable\r")
        assert await term.read_until("Password: ") == "enable\r\nPassword: "
        term.send("wrong\r")
        after_wrong = await term.read_until(user)
        assert denied in after_wrong
        assert "wrong" not in after_wrong
        term.send("enable\r")
        await term.read_until("Password: ")
        term.send("s3cret-en\r")
        assert (await term.read_until(privileged)).endswith("\r\n" + privileged)
    entries = read_log(log)
    assert [e["line"] for e in entries] == ["enable", "<password>", "enable", "<password>"]
    assert "s3cret-en" not in log.read_text() and "wrong" not in log.read_text()
    assert {e["mode"] for e in entries} == {"exec"}


@pytest.mark.asyncio
async def test_asa_enable_without_configured_password_accepts_empty() -> None:
    async with lab_of(DeviceSpec(name="fw1", os="asa")) as lab, session(lab.devices[0]) as term:
        await term.read_until("fw1> ")
        term.send("enable\r")
        await term.read_until("Password: ")
        term.send("\r")
        await term.read_until("fw1# ")


@pytest.mark.asyncio
@pytest.mark.parametrize("ending", ["\r", "\n", "\r\n"], ids=["cr", "lf", "crlf"])
async def test_line_endings_are_all_enter(ending: str) -> None:
    async with lab_of(iosxe()) as lab, session(lab.devices[0]) as term:
        prompt = "lab-iosxe-01#"
        await term.read_until(prompt)
        out = await term.run("show clock", prompt, ending)
        assert out == "*14:03:27.512 UTC Tue Mar 26 2024\r\n"
        out = await term.run("show clock", prompt, ending)
        assert out == "*14:03:27.512 UTC Tue Mar 26 2024\r\n"


@pytest.mark.asyncio
async def test_hostname_is_filled_into_outputs() -> None:
    async with lab_of(DeviceSpec(name="edge-7", os="iosxe")) as lab, session(lab.devices[0]) as term:
        await term.read_until("edge-7#")
        out = await term.run("terminal length 0", "edge-7#")
        assert out == ""
        assert "edge-7 uptime is" in await term.run("sh ver", "edge-7#")
        assert "\r\nhostname edge-7\r\n" in await term.run("show running-config", "edge-7#")


@pytest.mark.asyncio
async def test_paging_space_enter_and_q() -> None:
    async with lab_of(iosxe(terminal_length=10)) as lab, session(lab.devices[0]) as term:
        prompt = "lab-iosxe-01#"
        await term.read_until(prompt)
        full = (await lab_full_output(lab, "show running-config")).split("\r\n")
        term.send("show running-config\r")
        page = await term.read_until(MORE_PROMPT)
        assert page == "show running-config\r\n" + "".join(line + "\r\n" for line in full[:9]) + MORE_PROMPT
        term.send(" ")
        page = await term.read_until(MORE_PROMPT)
        assert page.count("\r\n") == 9
        assert full[9] in page and full[17] in page and full[18] not in page
        term.send("\r")
        page = await term.read_until(MORE_PROMPT)
        assert page.count("\r\n") == 1 and full[18] in page
        term.send("q")
        rest = await term.read_until(prompt)
        assert full[19] not in rest and rest.endswith(prompt)


async def lab_full_output(lab: LabServer, command: str) -> str:
    """The command's full output with paging off, from a second session."""
    async with session(lab.devices[0]) as term:
        prompt = lab.devices[0].name + "#"
        await term.read_until(prompt)
        await term.run("terminal length 0", prompt)
        return (await term.run(command, prompt)).removesuffix("\r\n")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("os_name", "command"),
    [
        ("iosxe", "terminal length 0"),
        ("nxos", "term len 0"),
        ("iosxr", "terminal length 0"),
        ("asa", "terminal pager 0"),
    ],
)
async def test_terminal_length_zero_disables_paging(os_name: str, command: str) -> None:
    device = DeviceSpec(name="d1", os=os_name, enable_password=None, terminal_length=5)
    async with lab_of(device) as lab, session(lab.devices[0]) as term:
        prompt = await term.read_until(PROMPT_END)
        prompt = prompt.removeprefix("\r\n")
        if os_name == "asa":
            term.send("enable\r")
            await term.read_until("Password: ")
            term.send("\r")
            prompt = "d1# "
            await term.read_until(prompt)
        assert await term.run(command, prompt) == ""
        out = await term.run("show running-config", prompt)
        assert MORE_PROMPT not in out
        assert out.count("\r\n") > 40


@pytest.mark.asyncio
async def test_asa_refuses_terminal_length() -> None:
    async with lab_of(DeviceSpec(name="fw1", os="asa")) as lab, session(lab.devices[0]) as term:
        await term.read_until("fw1> ")
        out = await term.run("terminal length 0", "fw1> ")
        assert "ERROR: % Invalid input detected at '^' marker." in out


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("pipe", "expected"),
    [
        (
            "| include ^interface",
            [
                "interface Loopback0",
                "interface Tunnel100",
                "interface GigabitEthernet1",
                "interface GigabitEthernet2",
                "interface GigabitEthernet3",
                "interface GigabitEthernet4",
                "interface VirtualPortGroup0",
            ],
        ),
        ("| i hostname|^version", ["version 17.9", "hostname lab-iosxe-01"]),
        (
            "| begin ^line con",
            [
                "line con 0",
                " exec-timeout 0 0",
                " stopbits 1",
                "line aux 0",
                "line vty 0 4",
                " exec-timeout 30 0",
                " transport input ssh",
                "line vty 5 15",
                " transport input ssh",
                "!",
                "ntp server 192.0.2.123",
                "!",
                "end",
                "",
            ],
        ),
        (
            "| section router bgp",
            [
                "router bgp 65011",
                " bgp router-id 192.0.2.11",
                " bgp log-neighbor-changes",
                " neighbor 192.0.2.1 remote-as 65000",
                " neighbor 192.0.2.1 update-source Loopback0",
                " !",
                " address-family ipv4",
                "  network 10.99.0.0 mask 255.255.255.0",
                "  neighbor 192.0.2.1 activate",
                " exit-address-family",
            ],
        ),
    ],
    ids=["include", "include-abbrev-alternation", "begin", "section"],
)
async def test_pipes(pipe: str, expected: list[str]) -> None:
    async with lab_of(iosxe(terminal_length=0)) as lab, session(lab.devices[0]) as term:
        prompt = "lab-iosxe-01#"
        await term.read_until(prompt)
        out = await term.run(f"show running-config {pipe}", prompt)
        assert out == "".join(line + "\r\n" for line in expected)


@pytest.mark.asyncio
async def test_exclude_pipe_and_unicon_login_probe() -> None:
    async with lab_of(iosxe(terminal_length=0)) as lab, session(lab.devices[0]) as term:
        prompt = "lab-iosxe-01#"
        await term.read_until(prompt)
        out = await term.run("show ip interface brief | exclude unassigned|Interface", prompt)
        assert "unassigned" not in out and "Interface" not in out and out.count("\r\n") == 6
        out = await term.run("show version | include operating mode", prompt)
        assert out == "Router operating mode: Autonomous\r\n"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("os_name", "prompt", "message"),
    [
        ("iosxe", "R#", "% Invalid input detected at '^' marker."),
        ("nxos", "R# ", "% Invalid command at '^' marker."),
        ("iosxr", "RP/0/RP0/CPU0:R#", "% Invalid input detected at '^' marker."),
        ("asa", "R> ", "ERROR: % Invalid input detected at '^' marker."),
    ],
)
async def test_invalid_input_marks_the_bad_word(os_name: str, prompt: str, message: str) -> None:
    async with lab_of(DeviceSpec(name="R", os=os_name)) as lab, session(lab.devices[0]) as term:
        await term.read_until(prompt)
        out = await term.run("show flux capacitor", prompt)
        assert out == " " * (len(prompt) + len("show ")) + "^\r\n" + message + "\r\n\r\n"
        out = await term.run("frobnicate", prompt)
        assert out.startswith(" " * len(prompt) + "^\r\n")


@pytest.mark.asyncio
async def test_config_mode_is_flagged_in_the_log(tmp_path: Path) -> None:
    log = tmp_path / "lab.jsonl"
    async with lab_of(iosxe(), log=log) as lab, session(lab.devices[0]) as term:
        await term.read_until("lab-iosxe-01#")
        assert await term.run("show clock", "lab-iosxe-01#") != ""
        out = await term.run("conf t", "lab-iosxe-01(config)#")
        assert out == "Enter configuration commands, one per line.  End with CNTL/Z.\r\n"
        await term.run("interface Loopback9", "lab-iosxe-01(config-if)#")
        await term.run("exit", "lab-iosxe-01(config)#")
        await term.run("logging console", "lab-iosxe-01(config)#")
        await term.run("end", "lab-iosxe-01#")
        await term.run("configure terminal", "lab-iosxe-01(config)#")
        term.send("\x1a")
        await term.read_until("lab-iosxe-01#")
    flagged = config_lines(log)
    assert [(e["line"], e["mode"]) for e in flagged] == [
        ("conf t", "privileged"),
        ("interface Loopback9", "config"),
        ("exit", "config"),
        ("logging console", "config"),
        ("end", "config"),
        ("configure terminal", "privileged"),
        ("^Z", "config"),
    ]
    entries = read_log(log)
    assert entries[0]["line"] == "show clock" and entries[0]["config"] is False
    assert set(entries[0]) == {"ts", "device", "port", "mode", "line", "config"}
    assert entries[0]["device"] == "lab-iosxe-01" and entries[0]["port"] == lab.devices[0].port


@pytest.mark.asyncio
async def test_latency_is_applied_per_command() -> None:
    async with lab_of(iosxe(latency=0.3)) as lab, session(lab.devices[0]) as term:
        await term.read_until("lab-iosxe-01#")
        started = time.monotonic()
        await term.run("show clock", "lab-iosxe-01#")
        assert 0.3 <= time.monotonic() - started < 1.5


@pytest.mark.asyncio
async def test_hang_never_answers_the_listed_command() -> None:
    async with lab_of(iosxe(hang_commands=("show clock",))) as lab, session(lab.devices[0]) as term:
        await term.read_until("lab-iosxe-01#")
        assert await term.run("show inventory", "lab-iosxe-01#")
        term.send("show clock\r")
        await term.read_until("show clock\r\n")
        with pytest.raises(TimeoutError):
            await term.read_until("lab-iosxe-01#", timeout=0.5)


@pytest.mark.asyncio
async def test_hang_star_hangs_every_command() -> None:
    async with lab_of(iosxe(hang_commands=("*",))) as lab, session(lab.devices[0]) as term:
        await term.read_until("lab-iosxe-01#")
        term.send("show version\r")
        with pytest.raises(TimeoutError):
            await term.read_until("lab-iosxe-01#", timeout=0.5)


@pytest.mark.asyncio
async def test_disconnect_mid_output_sends_half_then_closes() -> None:
    device = iosxe(terminal_length=0, disconnect_commands=("show running-config",))
    async with lab_of(device) as lab:
        full = await lab_full_output(lab, "show version")
        async with session(lab.devices[0]) as term:
            await term.read_until("lab-iosxe-01#")
            term.send("show running-config\r")
            partial = await term.read_all()
        assert partial.startswith("show running-config\r\nBuilding configuration...")
        assert "\r\nend\r\n" not in partial and not PROMPT_END.search(partial)
        assert len(full) > 0


@pytest.mark.asyncio
async def test_outputs_dir_in_device_outputs_layout(tmp_path: Path) -> None:
    sample = tmp_path / "iosxe" / "show_arp" / "01"
    sample.mkdir(parents=True)
    raw = (
        "Protocol  Address          Age (min)  Hardware Addr   Type   Interface\n"
        "Internet  10.1.1.1                -   0050.56ff.0001  ARPA   Gi1\n"
    )
    (sample / "output.txt").write_bytes(raw.encode())
    (sample / "meta.json").write_text('{"os": "iosxe", "command": "show arp vrf Mgmt-vrf"}')
    other = tmp_path / "nxos" / "show_arp" / "01"
    other.mkdir(parents=True)
    (other / "output.txt").write_text("nxos only\n")
    (other / "meta.json").write_text('{"os": "nxos", "command": "show arp"}')
    async with lab_of(iosxe(outputs_dir=tmp_path, terminal_length=0)) as lab, session(lab.devices[0]) as term:
        prompt = "lab-iosxe-01#"
        await term.read_until(prompt)
        out = await term.run("show arp vrf Mgmt-vrf", prompt)
        assert out == raw.replace("\n", "\r\n")
        assert "^" in await term.run("show arp", prompt)
        assert "uptime is" in await term.run("show version", prompt)


@pytest.mark.asyncio
async def test_exec_request_runs_one_command() -> None:
    async with lab_of(iosxe()) as lab:
        device = lab.devices[0]
        async with asyncssh.connect(
            device.host, device.port, username="admin", password="admin", known_hosts=None
        ) as connection:
            result = await connection.run("show clock", check=False)
        assert result.stdout == "*14:03:27.512 UTC Tue Mar 26 2024\r\n"


@pytest.mark.asyncio
async def test_user_mode_has_no_running_config_and_config_mode_runs_do() -> None:
    async with lab_of(iosxe(enable_password="en", terminal_length=0)) as lab, session(lab.devices[0]) as term:
        await term.read_until("lab-iosxe-01>")
        out = await term.run("show running-config", "lab-iosxe-01>")
        assert out.startswith(" " * len("lab-iosxe-01>show ") + "^\r\n% Invalid input")
        assert "uptime is" in await term.run("show version", "lab-iosxe-01>")
        term.send("enable\r")
        await term.read_until("Password: ")
        term.send("en\r")
        await term.read_until("lab-iosxe-01#")
        await term.run("conf t", "lab-iosxe-01(config)#")
        assert await term.run("do show clock", "lab-iosxe-01(config)#") == "*14:03:27.512 UTC Tue Mar 26 2024\r\n"
        await term.run("end", "lab-iosxe-01#")
        await term.run("disable", "lab-iosxe-01>")
