"""Marker commands the front doors' tests send to the session lab, for the read-only proof.

A front door's test sends its marker (a ``show`` with an ``include`` of a unique word) through
the door and notes it in ``SENT``; ``tests/lab/test_readonly_proof.py`` then finds each noted
marker in the session lab's log, so the doors' traffic is part of what the proof covers.
"""

from __future__ import annotations

from typing import Any

MARKERS = {"http": "pyro-front-door-http", "mcp": "pyro-front-door-mcp"}
SENT: set[str] = set()


def marker_command(door: str) -> dict[str, Any]:
    """The marker command of ``door`` (noted as sent)."""
    SENT.add(door)
    return {"command": "show version", "pipe_option": "include", "pipe_value": MARKERS[door]}
