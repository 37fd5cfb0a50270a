"""The lab's JSON-lines record of every line a client sent, and of sessions.

Tests and the demo prove read-only behaviour from this file: a line typed in
config mode, or one that enters it, has ``"config": true``.  Secrets typed at a
``Password:`` prompt are replaced before they reach this module's caller, so
nothing is written that would need scrubbing.

Two shapes of entry share the file:

* a received line: ``{"ts", "device", "port", "mode", "line", "config"}``;
* a session event: ``{"ts", "event", "device", "port", "open"}`` where
  ``event`` is ``session_open``, ``session_close`` or ``session_refused`` (no
  free VTY line, see ``max_sessions``) and ``open`` is the number of sessions
  the device has open after the event;
* a forward through a bastion device: ``{"ts", "event": "forward", "bastion",
  "device", "port", "dest_host", "dest_port", "allowed"}`` (``device`` is the
  bastion's name, ``port`` its port).

``read_log`` and ``config_lines`` return received lines only, so their callers
see what they always saw; ``read_events`` returns the session events,
``read_entries`` everything, and ``max_concurrent_sessions`` the peak per port.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

PASSWORD_PLACEHOLDER = "<password>"  # noqa: S105 - a placeholder, not a secret


def enters_config_mode(line: str) -> bool:
    """``conf t``, ``config term``, ``configure terminal``, ``configure replace ...``."""
    words = line.split()
    return bool(words) and len(words[0]) >= 4 and "configure".startswith(words[0].lower())


class CommandLog:
    """Appends one JSON object per received line; a ``None`` path logs nothing.

    Writes are synchronous and flushed per line: lines arrive at human or Unicon
    speed (a few per command), and a crash must not lose the evidence.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._file: IO[str] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8")

    def record(self, *, device: str, port: int, mode: str, line: str, config: bool) -> None:
        """Write one entry; ``line`` must already have secrets replaced."""
        if self._file is None:
            return
        entry = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "device": device,
            "port": port,
            "mode": mode,
            "line": line,
            "config": config,
        }
        self._file.write(json.dumps(entry) + "\n")
        self._file.flush()

    def event(self, *, event: str, device: str, port: int, open_sessions: int) -> None:
        """Write one session event (``session_open``, ``session_close``, ``session_refused``, ``startup_dropped``)."""
        if self._file is None:
            return
        entry = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "event": event,
            "device": device,
            "port": port,
            "open": open_sessions,
        }
        self._file.write(json.dumps(entry) + "\n")
        self._file.flush()

    def forward(self, *, bastion: str, port: int, dest_host: str, dest_port: int, allowed: bool) -> None:
        """Write one ``forward`` event: a bastion was asked to open a connection onwards."""
        if self._file is None:
            return
        entry = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "event": "forward",
            "bastion": bastion,
            "device": bastion,
            "port": port,
            "dest_host": dest_host,
            "dest_port": dest_port,
            "allowed": allowed,
        }
        self._file.write(json.dumps(entry) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file; later records are dropped."""
        if self._file is not None:
            self._file.close()
            self._file = None


def read_entries(path: Path) -> list[dict[str, Any]]:
    """Every entry of a lab log, lines and events, in order (missing file = none)."""
    if not path.exists():
        return []
    entries: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for raw in handle:
            if raw.strip():
                entries.append(json.loads(raw))
    return entries


def read_log(path: Path) -> list[dict[str, Any]]:
    """Every received-line entry of a lab log, in order (session events left out)."""
    return [entry for entry in read_entries(path) if "event" not in entry]


def read_events(path: Path) -> list[dict[str, Any]]:
    """The session events of a lab log, in order."""
    return [entry for entry in read_entries(path) if "event" in entry]


def max_concurrent_sessions(path: Path) -> dict[int, int]:
    """The most sessions each port had open at once, from the log's events.

    Ports that logged events but never admitted a session map to 0.
    """
    peaks: dict[int, int] = {}
    for entry in read_events(path):
        if "open" not in entry:  # a forward event
            continue
        port = int(entry["port"])
        peaks[port] = max(peaks.get(port, 0), int(entry["open"]))
    return peaks


def config_lines(path: Path) -> list[dict[str, Any]]:
    """The entries that touched config mode: what a read-only client must never send."""
    return [entry for entry in read_log(path) if entry.get("config")]
