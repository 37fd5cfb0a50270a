"""GenieOutputParser against small hand-written outputs: outcome kinds, pipes, threads, JSON."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import msgspec
import pytest

from service.device.genie_parser import GenieOutputParser, _plain
from service.domain.models import DeviceOS, ParseOutcome, ParseStatus

pytestmark = pytest.mark.unit

CLOCK = "*10:11:12.123 UTC Mon Jan 1 2024\n"

CPU_INCLUDE = "CPU utilization for five seconds: 3%/0%; one minute: 2%; five minutes: 1%\n"

BGP_SECTION = """router bgp 65000
 bgp router-id 192.0.2.1
 neighbor 192.0.2.2 remote-as 65001
"""

CDP = """Capability Codes: R - Router, T - Trans Bridge, B - Source Route Bridge
                  S - Switch, H - Host, I - IGMP, r - Repeater, P - Phone

Device ID        Local Intrfce     Holdtme    Capability  Platform  Port ID
edge-r2.lab      Gig 1             157              R I   CSR1000V  Gig 2
edge-r3.lab      Gig 2             141              R I   CSR1000V  Gig 1

Total cdp entries displayed : 2
"""

ROUTES = """Codes: L - local, C - connected, S - static, R - RIP, M - mobile, B - BGP
       D - EIGRP, EX - EIGRP external, O - OSPF, IA - OSPF inter area

Gateway of last resort is 192.0.2.1 to network 0.0.0.0

S*    0.0.0.0/0 [1/0] via 192.0.2.1
      192.0.2.0/24 is variably subnetted, 2 subnets, 2 masks
C        192.0.2.0/24 is directly connected, GigabitEthernet1
L        192.0.2.10/32 is directly connected, GigabitEthernet1
O        198.51.100.0/24 [110/2] via 192.0.2.2, 00:10:11, GigabitEthernet1
"""

VLAN = """VLAN Name                             Status    Ports
---- -------------------------------- --------- -------------------------------
1    default                          active    Gi1/0/1
"""

UPTIME_ONLY = "edge-r1 uptime is 1 week, 2 days, 3 hours, 4 minutes\n"


@pytest.fixture(scope="module")
def parser() -> GenieOutputParser:
    # One per module: importing Genie and loading its parser index costs about a second.
    return GenieOutputParser()


def test_ok_returns_the_parsed_dict(parser: GenieOutputParser) -> None:
    outcome = parser.parse(DeviceOS.IOSXE, "show clock", CLOCK)

    assert outcome == ParseOutcome(
        ParseStatus.OK,
        parsed={
            "time": "10:11:12.123",
            "timezone": "UTC",
            "day_of_week": "Mon",
            "month": "Jan",
            "day": "1",
            "year": "2024",
        },
    )


def test_unknown_command_is_no_parser(parser: GenieOutputParser) -> None:
    outcome = parser.parse(DeviceOS.IOSXE, "show widgets frobnicated", "widget 1 frobnicated\n")

    assert outcome.status is ParseStatus.NO_PARSER
    assert outcome.parsed is None
    assert outcome.message is not None
    assert "no parser" in outcome.message
    assert "show widgets frobnicated" in outcome.message


@pytest.mark.parametrize(
    "line",
    [
        # Genie has no parser for the whole piped line.
        "show version | include uptime",
        "show processes cpu | exclude 0.00",
        # Genie's fuzzy lookup matches these, wrongly: 'ospf' as an abbreviation of the
        # template's 'ospfv3', and '| include operating mode' eaten by argument slots.
        "show running-config | section ospf",
        "show version | include operating mode",
    ],
)
def test_piped_line_without_a_full_piped_parser_is_no_parser(parser: GenieOutputParser, line: str) -> None:
    outcome = parser.parse(DeviceOS.IOSXE, line, UPTIME_ONLY)

    assert outcome.status is ParseStatus.NO_PARSER
    assert outcome.message is not None
    assert line in outcome.message


def test_piped_include_uses_the_piped_parser(parser: GenieOutputParser) -> None:
    outcome = parser.parse(DeviceOS.IOSXE, "show processes cpu | include process", CPU_INCLUDE)

    assert outcome == ParseOutcome(
        ParseStatus.OK,
        parsed={"five_sec_cpu_total": 3, "five_sec_cpu_interrupts": 0, "one_min_cpu": 2, "five_min_cpu": 1},
    )


def test_piped_section_uses_the_piped_parser(parser: GenieOutputParser) -> None:
    outcome = parser.parse(DeviceOS.IOSXE, "show running-config | section bgp", BGP_SECTION)

    assert outcome.status is ParseStatus.OK
    assert outcome.parsed == {
        "bgp": {
            65000: {
                "as_number": 65000,
                "router_id": "192.0.2.1",
                "neighbors": {"192.0.2.2": {"peer_as_number": "65001"}},
            }
        }
    }


def test_extra_spaces_in_the_line_do_not_change_the_result(parser: GenieOutputParser) -> None:
    spaced = parser.parse(DeviceOS.IOSXE, "show  processes cpu |  include   process", CPU_INCLUDE)

    assert spaced == parser.parse(DeviceOS.IOSXE, "show processes cpu | include process", CPU_INCLUDE)


@pytest.mark.parametrize("output", ["", "   \n\t\r\n"])
def test_blank_output_is_empty_output(parser: GenieOutputParser, output: str) -> None:
    outcome = parser.parse(DeviceOS.IOSXE, "show clock", output)

    assert outcome.status is ParseStatus.EMPTY_OUTPUT
    assert outcome.parsed is None


def test_output_the_parser_finds_nothing_in_is_empty_output(parser: GenieOutputParser) -> None:
    # Genie raises SchemaEmptyParserError when the parser returns {}.
    outcome = parser.parse(DeviceOS.IOSXE, "show clock", "% clock is not set\n")

    assert outcome.status is ParseStatus.EMPTY_OUTPUT
    assert outcome.message is not None
    assert "parser" in outcome.message


def test_output_missing_required_keys_is_schema_error(parser: GenieOutputParser) -> None:
    # The version line alone fills 'version' but none of the keys its schema requires.
    outcome = parser.parse(DeviceOS.IOSXE, "show version", "Cisco IOS XE Software, Version 17.03.04a\n")

    assert outcome.status is ParseStatus.SCHEMA_ERROR
    assert outcome.parsed is None
    assert outcome.message is not None
    assert outcome.message.startswith("SchemaMissingKeyError")


def test_a_parser_crash_is_parse_failed_without_traceback_or_output(parser: GenieOutputParser) -> None:
    # ShowVersion indexes a key that only earlier lines create: a KeyError inside Genie.
    outcome = parser.parse(DeviceOS.IOSXE, "show version", UPTIME_ONLY)

    assert outcome.status is ParseStatus.PARSE_FAILED
    assert outcome.parsed is None
    assert outcome.message is not None
    assert outcome.message.startswith("KeyError")
    assert "Traceback" not in outcome.message
    assert "edge-r1" not in outcome.message


def test_prewarm_tolerates_unknown_commands_and_parse_still_works() -> None:
    parser = GenieOutputParser()

    parser.prewarm([(DeviceOS.IOSXE, "show widgets"), (DeviceOS.IOSXE, "show clock")])

    assert parser.parse(DeviceOS.IOSXE, "show clock", CLOCK).status is ParseStatus.OK
    assert parser.parse(DeviceOS.IOSXE, "show widgets", "x\n").status is ParseStatus.NO_PARSER


def test_concurrent_parses_equal_the_single_threaded_results(parser: GenieOutputParser) -> None:
    cases = [
        (DeviceOS.IOSXE, "show clock", CLOCK),
        (DeviceOS.IOSXE, "show processes cpu | include process", CPU_INCLUDE),
        (DeviceOS.IOSXE, "show running-config | section bgp", BGP_SECTION),
        (DeviceOS.IOSXE, "show cdp neighbors", CDP),
        (DeviceOS.IOSXE, "show ip route", ROUTES),
        (DeviceOS.IOS, "show ip route", ROUTES),
        (DeviceOS.IOSXE, "show vlan", VLAN),
        (DeviceOS.IOSXE, "show version", UPTIME_ONLY),
        (DeviceOS.IOSXE, "show version | include uptime", UPTIME_ONLY),
        (DeviceOS.NXOS, "show clock", CLOCK),
    ]
    expected = [parser.parse(*case) for case in cases]
    # A fresh instance: its devices and parser lookups are created under contention.
    shared = GenieOutputParser()
    work = [index for _ in range(12) for index in range(len(cases))]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda index: (index, shared.parse(*cases[index])), work))

    assert [outcome for _, outcome in results] == [expected[index] for index, _ in results]


@pytest.mark.parametrize(
    ("os", "line", "output"),
    [
        (DeviceOS.IOSXE, "show cdp neighbors", CDP),
        (DeviceOS.IOSXE, "show ip route", ROUTES),
        (DeviceOS.IOSXE, "show running-config | section bgp", BGP_SECTION),
    ],
)
def test_integer_keys_encode_like_json_dumps(parser: GenieOutputParser, os: DeviceOS, line: str, output: str) -> None:
    outcome = parser.parse(os, line, output)
    assert outcome.status is ParseStatus.OK
    assert outcome.parsed is not None
    assert _has_int_key(outcome.parsed), "sample should exercise integer keys"

    assert json.loads(msgspec.json.encode(outcome.parsed)) == json.loads(json.dumps(outcome.parsed))


def test_parsed_values_are_plain_json_types() -> None:
    class Opaque:
        def __str__(self) -> str:
            return "opaque"

    value = {1: ("a", "b"), "set": {"y", "x"}, "obj": Opaque(), (1, 2): None}

    assert _plain(value) == {1: ["a", "b"], "set": ["x", "y"], "obj": "opaque", "(1, 2)": None}


def _has_int_key(value: object) -> bool:
    if isinstance(value, dict):
        return any(isinstance(key, int) or _has_int_key(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_int_key(item) for item in value)
    return False


def test_each_os_gets_its_own_parser_for_the_same_line() -> None:
    parser = GenieOutputParser()  # fresh: nothing resolved yet for any OS
    assert parser.parse(DeviceOS.IOSXE, "show vlan", VLAN).status is ParseStatus.OK
    assert parser.parse(DeviceOS.ASA, "show vlan", VLAN).status is ParseStatus.NO_PARSER
    assert parser.parse(DeviceOS.IOSXE, "show vlan", VLAN).status is ParseStatus.OK
