"""Markdown output: a header with the machine, then one table per scenario."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from measure import Row


def git_commit(repo: Path) -> str:
    try:
        head = subprocess.run(  # noqa: S603
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(  # noqa: S603
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + (" (+ uncommitted changes)" if dirty else "")


def header(repo: Path, command: str) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            f"- date: {now}",
            f"- cores: {os.cpu_count()} ({platform.machine()}, {platform.system()} {platform.release()})",
            f"- python: {sys.version.split()[0]}",
            f"- load average at start (1/5/15 min): {' / '.join(f'{x:.1f}' for x in os.getloadavg())}",
            f"- commit: {git_commit(repo)}",
            f"- command: `{command}`",
        ]
    )


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value == 0:
            return "0"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3f}" if abs(value) < 1 else f"{value:.2f}"
    return str(value).replace("|", "\\|")


def table(rows: Iterable[dict[str, Any]]) -> str:
    rows = list(rows)
    if not rows:
        return ""
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def scenario_tables(rows: list[Row]) -> str:
    """One table per scenario (in first-seen order), one line per row; errors listed below."""
    order: list[str] = []
    for row in rows:
        if row.scenario not in order:
            order.append(row.scenario)
    parts = []
    for name in order:
        mine = [r for r in rows if r.scenario == name]
        parts.append(f"### {name}\n\n" + table({**r.common(), **r.extra} for r in mine))
        errors = [f"- {r.backend}: {r.errors}" for r in mine if r.errors]
        if errors:
            parts.append("errors:\n" + "\n".join(errors))
    return "\n\n".join(parts)
