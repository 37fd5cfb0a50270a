"""Unicon connections that carry only the services a reading session uses.

A Unicon connection builds every service of its plugin when it is created (26 on IOS-XE:
``configure``, ``reload``, ``copy``, ``ping``, ``tclsh``, ...), and each copies its dialogs:
about a quarter of the CPU of a login (docs/PERFORMANCE.md). Here each plugin's service list
is narrowed, once per plugin class and before its first connection, to the services that
send, read and change privilege. The connection then has no ``configure``, ``config``,
``reload`` or ``copy`` at all: defence in depth for the read-only rule, not only speed.
"""

from __future__ import annotations

import threading
from typing import Any

from unicon.bases.connection import plugin_manager

# execute runs the show commands; enable (with an enable password); the rest are the plain
# send/read services Unicon's own login and dialogs may call (sendline is needed by connect).
READING_SERVICES = frozenset(
    {
        "execute",
        "enable",
        "disable",
        "send",
        "sendline",
        "transmit",
        "receive",
        "receive_buffer",
        "expect",
        "expect_log",
        "log_user",
    }
)

_lock = threading.Lock()
_narrowed: set[type] = set()


def narrow(os_name: str) -> type:
    """The plugin class Unicon picks for ``os_name``, its service list narrowed (idempotent)."""
    plugin: type = plugin_manager.get_plugin(os=os_name)
    with _lock:
        if plugin not in _narrowed:
            plugin.subcommand_list = _reading_list(plugin.subcommand_list)  # type: ignore[attr-defined]
            _narrowed.add(plugin)
    return plugin


def _reading_list(full: type) -> type:
    def only_reading(self: Any) -> None:
        full.__init__(self)  # type: ignore[misc]  # the plugin's own list, then narrowed
        for name in [name for name in vars(self) if name not in READING_SERVICES]:
            delattr(self, name)

    return type(f"Reading{full.__name__}", (full,), {"__init__": only_reading})
