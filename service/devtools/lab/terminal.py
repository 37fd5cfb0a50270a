"""Character-level terminal behaviour: echo, line endings, and ``--More--`` paging.

A device terminal echoes what it receives and treats ``\\r``, ``\\n`` and
``\\r\\n`` alike as Enter (Unicon through OpenSSH sends ``\\r``; paramiko users
often send ``\\n``).  Keeping this apart from the command logic lets the shell
think in lines while the wire stays byte-realistic.

``Pacing`` makes an output arrive the way a slow or busy device sends it: in
pieces of ``chunk_size`` characters with ``chunk_delay`` seconds between them,
and with a ``pause_seconds`` wait right after any line matching one of the
``pause_after`` regexes (a prompt-like line followed by silence).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

MORE_PROMPT = " --More-- "
MORE_ERASE = "\b" * len(MORE_PROMPT) + " " * len(MORE_PROMPT) + "\b" * len(MORE_PROMPT)
CTRL_C = "\x03"
CTRL_Z = "\x1a"


class Channel(Protocol):
    """The byte pipe under a shell: an asyncssh process in the server, a fake in tests."""

    def write(self, data: str) -> None:
        """Queue text for the client."""

    async def drain(self) -> None:
        """Wait until queued text has gone out (flow control for big outputs)."""

    async def read(self) -> str:
        """The next chunk the client sent; ``""`` at end of input."""


class LineReader:
    """Turns received chunks into lines and single keys, echoing like a device."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        self._buffer = ""
        self._skip_lf = False

    async def _fill(self) -> bool:
        data = await self._channel.read()
        if not data:
            return False
        self._buffer += data
        return True

    async def read_key(self) -> str | None:
        """One key press (Enter reads as ``\\r``); ``None`` at end of input."""
        while True:
            if not self._buffer and not await self._fill():
                return None
            char, self._buffer = self._buffer[0], self._buffer[1:]
            if self._skip_lf:
                self._skip_lf = False
                if char == "\n":
                    continue
            if char in "\r\n":
                self._skip_lf = char == "\r"
                return "\r"
            return char

    async def read_line(self, *, echo: bool = True) -> str | None:
        """One line without its ending; ``None`` at end of input.

        Echo is written per received chunk, not per character, so a command sent
        in one packet costs one write.  ``echo=False`` is for ``Password:``.
        Ctrl-Z returns ``CTRL_Z`` (leave config mode); Ctrl-C drops the line.
        """
        chars: list[str] = []
        while True:
            if not self._buffer and not await self._fill():
                return None
            data, self._buffer = self._buffer, ""
            line, out = self._take(data, chars, echo)
            if out:
                self._channel.write(out)
            if line is not None:
                return line

    def _take(self, data: str, chars: list[str], echo: bool) -> tuple[str | None, str]:
        """Type ``data`` into ``chars``: (the line, once it ends, else None; the echo to write).
        What follows the end of the line stays buffered for the next read."""
        out: list[str] = []
        for index, char in enumerate(data):
            if self._skip_lf:
                self._skip_lf = False
                if char == "\n":
                    continue
            if char in _ENDINGS:
                self._skip_lf = char == "\r"
                self._buffer = data[index + 1 :]
                echoed, line = _ENDINGS[char]
                out.append(echoed)
                return ("".join(chars) if line is None else line), "".join(out)
            out.append(_edit(chars, char, echo))
        return None, "".join(out)


# what ends a line: (its echo, what read_line returns; None: the line typed)
_ENDINGS: dict[str, tuple[str, str | None]] = {
    "\r": ("\r\n", None),
    "\n": ("\r\n", None),
    CTRL_Z: ("^Z\r\n", CTRL_Z),
    CTRL_C: ("^C\r\n", ""),  # the line is dropped
}


def _edit(chars: list[str], char: str, echo: bool) -> str:
    """Apply one typed character (backspace, printable, tab; others are ignored); its echo."""
    if char in "\b\x7f":
        if not chars:
            return ""
        chars.pop()
        return "\b \b" if echo else ""
    if char >= " " or char == "\t":
        chars.append(char)
        return char if echo else ""
    return ""


@dataclass(frozen=True)
class Pacing:
    """How output text goes out: one write (the default), or pieces and pauses."""

    chunk_size: int = 0
    chunk_delay: float = 0.0
    pause_after: tuple[re.Pattern[str], ...] = ()
    pause_seconds: float = 0.0

    @property
    def active(self) -> bool:
        """Whether writes need cutting at all."""
        return self.chunk_size > 0 or (bool(self.pause_after) and self.pause_seconds > 0)

    def cuts(self, lines: Sequence[str]) -> list[tuple[int, float]]:
        """Offsets into the wire text where a write ends, with the wait after it.

        Chunk ends wait ``chunk_delay`` (none after the last piece); ends of
        matching lines wait ``pause_seconds`` (also when the line is the last).
        """
        total = sum(len(line) + 2 for line in lines)
        waits: dict[int, float] = {}
        if self.chunk_size > 0:
            for offset in range(self.chunk_size, total, self.chunk_size):
                waits[offset] = self.chunk_delay
        if self.pause_after and self.pause_seconds > 0:
            offset = 0
            for line in lines:
                offset += len(line) + 2
                if any(pattern.search(line) for pattern in self.pause_after):
                    waits[offset] = max(waits.get(offset, 0.0), self.pause_seconds)
        waits.setdefault(total, 0.0)
        return sorted(waits.items())


async def write_lines(channel: Channel, lines: Sequence[str], pacing: Pacing | None = None) -> None:
    """Write ``lines`` each followed by ``\\r\\n``, paced if ``pacing`` says so."""
    wire = "".join(line + "\r\n" for line in lines)
    if pacing is None or not pacing.active:
        channel.write(wire)
        return
    start = 0
    for end, wait in pacing.cuts(lines):
        channel.write(wire[start:end])
        start = end
        await channel.drain()
        if wait > 0:
            await asyncio.sleep(wait)


async def page_out(
    channel: Channel, reader: LineReader, lines: list[str], length: int, pacing: Pacing | None = None
) -> bool:
    """Write ``lines`` (each followed by ``\\r\\n``), pausing at ``--More--``.

    ``length`` is the terminal length: 0 disables paging, else each screen holds
    ``length - 1`` lines.  Space shows the next screen, Enter one more line, any
    other key (``q``) stops the output.  Returns ``False`` if the client went away.
    ``pacing`` cuts each screen into pieces and pauses (see ``Pacing``).
    """
    if length <= 0 or len(lines) < length:
        await write_lines(channel, lines, pacing)
        await channel.drain()
        return True
    screen = length - 1
    shown = screen
    await write_lines(channel, lines[:shown], pacing)
    while shown < len(lines):
        channel.write(MORE_PROMPT)
        await channel.drain()
        key = await reader.read_key()
        if key is None:
            return False
        channel.write(MORE_ERASE)
        if key == " ":
            step = screen
        elif key == "\r":
            step = 1
        else:
            break
        await write_lines(channel, lines[shown : shown + step], pacing)
        shown += step
    await channel.drain()
    return True
