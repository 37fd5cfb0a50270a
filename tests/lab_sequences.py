"""Outputs that change from run to run, for the lab's ``sequence_outputs`` (change detection).

The BGP table: run 1 both neighbours up; run 2 10.0.0.3 went Idle (its counters and timers moved
too); run 3 only timers, counters and table versions moved. The widget status has no parser.
"""

from __future__ import annotations

import re

from service.devtools.lab.outputs import builtin_outputs

_BGP_HEAD = """BGP router identifier 10.0.0.1, local AS number 65000
BGP table version is {tv}, main routing table version {tv}
3 network entries using 744 bytes of memory
3 path entries using 408 bytes of memory
2/2 BGP path/bestpath attribute entries using 560 bytes of memory
1 BGP AS-PATH entries using 24 bytes of memory
0 BGP route-map cache entries using 0 bytes of memory
0 BGP filter-list cache entries using 0 bytes of memory
BGP using 1736 total bytes of memory
BGP activity {act}/0 prefixes, {act}/0 paths, scan interval 60 secs

Neighbor        V           AS MsgRcvd MsgSent   TblVer  InQ OutQ Up/Down  State/PfxRcd
"""
_BGP_ROW = "{n:<15} 4 {asn:>12} {r:>7} {s:>7} {tv:>8}    0    0 {up:>8} {st:>8}\n"


def _bgp(table: int, activity: int, rows: list[tuple[str, int, int, int, str, object]]) -> str:
    head = _BGP_HEAD.format(tv=table, act=activity)
    return head + "".join(
        _BGP_ROW.format(n=n, asn=asn, r=r, s=s, tv=table, up=up, st=st) for n, asn, r, s, up, st in rows
    )


BGP_RUNS = [
    _bgp(12, 3, [("10.0.0.2", 65001, 120, 118, "01:02:03", 3), ("10.0.0.3", 65002, 80, 79, "00:45:10", 2)]),
    _bgp(12, 3, [("10.0.0.2", 65001, 125, 123, "01:07:03", 3), ("10.0.0.3", 65002, 0, 0, "00:00:05", "Idle")]),
    _bgp(19, 5, [("10.0.0.2", 65001, 131, 129, "01:12:03", 3), ("10.0.0.3", 65002, 0, 0, "00:05:05", "Idle")]),
]
BGP_CHANGED_PATH = "vrf.default.neighbor['10.0.0.3'].address_family[''].state_pfxrcd"


def version_runs(hostname: str) -> list[str]:
    """The lab's own iosxe ``show version``, then the same a few minutes later (only the uptime moved)."""
    first = builtin_outputs("iosxe")["show version"].render(hostname)
    later = re.sub(r"uptime is .*", "uptime is 2 weeks, 3 days, 6 hours, 52 minutes", first)
    assert later != first
    return [first, later]


def version_sequence(hostname: str) -> dict[str, list[str]]:
    return {"show version": version_runs(hostname)}


WIDGET_RUNS = [
    "widget alpha   ok      12\nwidget beta    ok      7\nwidget gamma   ok      3\n",
    "widget alpha   ok      12\nwidget beta    FAILED  7\nwidget gamma   ok      3\n",
]
