"""Sampling profiles of the service under the bench (py-spy, from the optional ``bench`` group).

``run.py --profile`` records the service process during each measured request and prints
the top functions, inclusive and self, per scenario.  ``--gil``: a sample goes to the thread
that last held the GIL, so a CPU-bound service (cold) is profiled faithfully; while every
thread waits for the devices (warm), the last holder's wait (``poll``, ``recv``) is counted
too: read warm profiles for the Python functions, not for those waits.  Raw stacks are kept
in the bench's work folder (flamegraph.pl or speedscope read them).
"""

from __future__ import annotations

import collections
import contextlib
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

SAMPLE_RATE = 250  # per second; py-spy's own cost stays small at this rate


def executable() -> str | None:
    """py-spy of this interpreter's environment (the venv need not be on PATH), else PATH's."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def available() -> bool:
    return executable() is not None


@contextlib.contextmanager
def recording(pid: int, out: Path) -> Iterator[None]:
    """py-spy samples ``pid`` while the block runs; raw stacks go to ``out``."""
    spy = subprocess.Popen(  # noqa: S603 - py-spy from the bench group, on our own child process
        [executable() or "py-spy", "record", "--pid", str(pid), "--gil", "--rate", str(SAMPLE_RATE)]
        + ["--format", "raw", "--output", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            spy.wait(30)
        except subprocess.TimeoutExpired:
            spy.kill()


def _frame(frame: str) -> str:
    """``func (path/to/file.py:12)`` -> ``func file.py``."""
    name, _, where = frame.partition(" (")
    return f"{name} {Path(where.split(':')[0]).name}" if where else name


def summary(raw: Path, top: int = 15) -> str:
    """The ``top`` functions by inclusive and by self share of the samples, as markdown."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    with contextlib.suppress(OSError), raw.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            stack, _, count = line.rstrip().rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            total += n
            frames = [_frame(f) for f in stack.split(";")]
            for name in set(frames):
                inclusive[name] += n
            own[frames[-1]] += n
    if not total:
        return f"(no samples in {raw.name})"
    rows = ["| inclusive | function | self | function |", "| ---: | --- | ---: | --- |"]
    pairs = zip(inclusive.most_common(top), own.most_common(top), strict=False)
    for (name_i, n_i), (name_s, n_s) in pairs:
        rows.append(f"| {n_i / total:.0%} | `{name_i}` | {n_s / total:.0%} | `{name_s}` |")
    return f"{total} samples ({raw.name})\n\n" + "\n".join(rows)
