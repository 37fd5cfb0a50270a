"""Generated large outputs: deterministic, realistic-looking text of an exact size.

A device's ``large_outputs`` maps show commands to sizes; the lab serves those
commands with text built here instead of a template, so tests and benchmarks can
ask for a 5 MB ``show logging`` without shipping one.  Everything is a pure
function of its arguments: a test computes the exact expected text with
:func:`generated_output` and compares it with what came over SSH.

Kinds:

* ``ip-brief``: ``show ip interface brief``, one ``GigabitEthernet<s>/0/<p>`` row
  per interface (addresses ``10.x.y.z``, a few down or unassigned);
* ``logging``: ``show logging``, the buffer header then syslog lines with
  increasing timestamps;
* ``running-config``: ``show running-config``, including an iosxe-style
  ``banner motd`` whose text holds a line ``Router#`` (a prompt-like line that can
  fool a client into thinking the output ended), then interface stanzas.

Size rules: the text uses ``\\n`` line endings and is exactly ``size`` characters
(ASCII, so bytes) long whenever ``size`` is at least :func:`minimum_size`; the
last row is padded with trailing spaces (real ``show`` tables carry them) to hit
the size.  Smaller sizes yield the minimum text.  On the wire the shell sends
``\\r\\n`` per line, so the bytes received are ``size`` plus the number of lines.

``prompt_line`` (for example ``"iosxe-1#"``) inserts that exact line in the
middle of the rows: a line identical to the device's prompt inside an output.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache

GENERATED_KINDS: tuple[str, ...] = ("ip-brief", "logging", "running-config")

_LOG_START = datetime(2024, 3, 26, 0, 0, 0, tzinfo=UTC)

_IP_BRIEF_HEADER = "Interface              IP-Address      OK? Method Status                Protocol\n"

_LOGGING_HEADER = (
    "Syslog logging: enabled (0 messages dropped, 3 messages rate-limited, 0 flushes, 0 overruns, "
    "xml disabled, filtering disabled)\n"
    "\n"
    "No Active Message Discriminator.\n"
    "\n"
    "\n"
    "\n"
    "No Inactive Message Discriminator.\n"
    "\n"
    "\n"
    "    Console logging: disabled\n"
    "    Monitor logging: level debugging, 0 messages logged, xml disabled,\n"
    "                     filtering disabled\n"
    "    Buffer logging:  level informational, {count} messages logged, xml disabled,\n"
    "                    filtering disabled\n"
    "    Exception Logging: size (4096 bytes)\n"
    "    Count and timestamp logging messages: disabled\n"
    "    Persistent logging: disabled\n"
    "\n"
    "No active filter modules.\n"
    "\n"
    "    Trap logging: level informational, {count} message lines logged\n"
    "        Logging Source-Interface:       VRF Name:\n"
    "\n"
    "Log Buffer (64000000 bytes):\n"
    "\n"
)

_RUNNING_HEADER = (
    "Building configuration...\n"
    "\n"
    "Current configuration : {size} bytes\n"
    "!\n"
    "! Last configuration change at 13:47:02 UTC Tue Mar 26 2024 by admin\n"
    "!\n"
    "version 17.9\n"
    "service timestamps debug datetime msec\n"
    "service timestamps log datetime msec\n"
    "!\n"
    "hostname {hostname}\n"
    "!\n"
    "banner motd ^C\n"
    "Authorised access only. Configured from the template of:\n"
    "Router#\n"
    "^C\n"
    "!\n"
)

_RUNNING_FOOTER = "!\nline con 0\n stopbits 1\nline vty 0 4\n transport input ssh\n!\nend\n"


def _interface(index: int) -> str:
    return f"GigabitEthernet{index // 48 + 1}/0/{index % 48 + 1}"


def _address(index: int) -> str:
    number = index + 1
    return f"10.{(number >> 16) & 255}.{(number >> 8) & 255}.{number & 255}"


def _ip_brief_row(index: int, hostname: str) -> str:
    if index % 11 == 10:
        address, status, protocol = "unassigned", "administratively down", "down"
    elif index % 7 == 6:
        address, status, protocol = _address(index), "up", "down"
    else:
        address, status, protocol = _address(index), "up", "up"
    return f"{_interface(index):<23}{address:<16}YES manual {status:<22}{protocol:<8}\n"


_LOG_MESSAGES: tuple[Callable[[int], str], ...] = (
    lambda i: f"%LINEPROTO-5-UPDOWN: Line protocol on Interface {_interface(i)}, changed state to up",
    lambda i: f"%LINK-3-UPDOWN: Interface {_interface(i)}, changed state to up",
    lambda i: f"%SYS-5-CONFIG_I: Configured from console by admin on vty{i % 5} (192.0.2.{i % 250 + 1})",
    lambda i: (
        f"%SEC_LOGIN-5-LOGIN_SUCCESS: Login Success [user: admin] [Source: 192.0.2.{i % 250 + 1}] "
        f"[localport: 22] at {_stamp(i)}"
    ),
    lambda i: f"%BGP-5-ADJCHANGE: neighbor 192.0.2.{i % 250 + 1} Up",
    lambda i: (
        f"%OSPF-5-ADJCHG: Process 1, Nbr 10.255.{i % 250}.1 on {_interface(i)} from LOADING to FULL, Loading Done"
    ),
)


@cache
def _day(days: int) -> tuple[str, str]:
    """``("Mar 26", "Tue Mar 26 2024")`` for a day after the log's start."""
    day = _LOG_START + timedelta(days=days)
    return f"{day:%b %d}", f"{day:%a %b %d %Y}"


def _clock(index: int) -> tuple[int, str]:
    """Entry ``index`` is ``7 * index`` seconds (plus some ms) after the start: (day, time)."""
    days, seconds = divmod(index * 7, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return days, f"{hours:02d}:{minutes:02d}:{seconds:02d}.{(index * 37) % 1000:03d}"


def _stamp(index: int) -> str:
    days, clock = _clock(index)
    return f"{clock} UTC {_day(days)[1]}"


def _logging_row(index: int, hostname: str) -> str:
    days, clock = _clock(index)
    return f"*{_day(days)[0]} {clock}: {_LOG_MESSAGES[index % len(_LOG_MESSAGES)](index)}\n"


def _running_row(index: int, hostname: str) -> str:
    shutdown = " shutdown\n" if index % 11 == 10 else " no shutdown\n"
    return (
        f"interface {_interface(index)}\n"
        f" description {hostname} port {index + 1} to access-{index // 48 + 1:03d}\n"
        f" ip address {_address(index)} 255.255.255.0\n"
        " negotiation auto\n"
        f"{shutdown}"
        "!\n"
    )


_Row = Callable[[int, str], str]


def _parts(kind: str, size: int, hostname: str, count: str) -> tuple[str, _Row, str]:
    if kind == "ip-brief":
        return _IP_BRIEF_HEADER, _ip_brief_row, ""
    if kind == "logging":
        return _LOGGING_HEADER.replace("{count}", count), _logging_row, ""
    if kind == "running-config":
        header = _RUNNING_HEADER.replace("{size}", str(size)).replace("{hostname}", hostname)
        return header, _running_row, _RUNNING_FOOTER
    raise ValueError(f"unknown generated output kind {kind!r}; expected one of {', '.join(GENERATED_KINDS)}")


def minimum_size(kind: str, hostname: str, *, prompt_line: str | None = None) -> int:
    """The smallest text of ``kind``: header, one row, footer (and the prompt line)."""
    return len(generated_output(kind, 0, hostname, prompt_line=prompt_line))


def generated_output(kind: str, size: int, hostname: str, *, prompt_line: str | None = None) -> str:
    """Deterministic text of ``kind`` (see ``GENERATED_KINDS``), exactly ``size`` chars.

    ``hostname`` is filled in where the real output names the device;
    ``prompt_line`` (no newline) is inserted as a whole line in the middle of
    the rows.  Raises ``ValueError`` for an unknown kind or a negative size.
    """
    if size < 0:
        raise ValueError("size must be >= 0")
    if prompt_line is not None and ("\n" in prompt_line or "\r" in prompt_line):
        raise ValueError("prompt_line must be a single line")
    extra = "" if prompt_line is None else prompt_line + "\n"
    count = "1"
    for _ in range(8):  # the header names the row count: settle its width first
        header, row, footer = _parts(kind, size, hostname, count)
        rows = _fill(row, hostname, size - len(header) - len(footer) - len(extra))
        if str(len(rows)) == count:
            break
        count = str(len(rows))
    if prompt_line is not None:
        rows.insert(len(rows) // 2, extra)
    return header + "".join(rows) + footer


def _fill(row: _Row, hostname: str, budget: int) -> list[str]:
    """At least one row; as many as fit in ``budget``; the last padded to fill it."""
    rows: list[str] = []
    used = 0
    while True:
        candidate = row(len(rows), hostname)
        if rows and used + len(candidate) > budget:
            break
        rows.append(candidate)
        used += len(candidate)
    padding = max(0, budget - used)
    rows[-1] = rows[-1][:-1] + " " * padding + "\n"
    return rows


def infer_kind(command: str) -> str:
    """The kind a command's name suggests: ``brief`` tables, ``run``, else ``logging``."""
    words = command.lower().split()
    if "brief" in words or "br" in words:
        return "ip-brief"
    if len(words) > 1 and "running-config".startswith(words[1]) and len(words[1]) >= 3:
        return "running-config"
    return "logging"
