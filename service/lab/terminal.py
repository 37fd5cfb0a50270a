"""Character-level terminal behaviour: echo, line endings, and ``--More--`` paging.

A device terminal echoes what it receives and treats ``\\r``, ``\\n`` and
``\\r\\n`` alike as Enter (Unicon through OpenSSH sends ``\\r``; paramiko users
often send ``\\n``).  Keeping this apart from the command logic lets the shell
think in lines while the wire stays byte-realistic.
"""

from __future__ import annotations

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
            out: list[str] = []
            for index, char in enumerate(data):
                if self._skip_lf:
                    self._skip_lf = False
                    if char == "\n":
                        continue
                if char in "\r\n":
                    self._skip_lf = char == "\r"
                    self._buffer = data[index + 1 :]
                    out.append("\r\n")
                    self._channel.write("".join(out))
                    return "".join(chars)
                if char in "\b\x7f":
                    if chars:
                        chars.pop()
                        if echo:
                            out.append("\b \b")
                elif char == CTRL_Z:
                    self._buffer = data[index + 1 :]
                    out.append("^Z\r\n")
                    self._channel.write("".join(out))
                    return CTRL_Z
                elif char == CTRL_C:
                    chars.clear()
                    out.append("^C\r\n")
                    self._channel.write("".join(out))
                    return ""
                elif char >= " " or char == "\t":
                    chars.append(char)
                    if echo:
                        out.append(char)
            if out:
                self._channel.write("".join(out))


async def page_out(channel: Channel, reader: LineReader, lines: list[str], length: int) -> bool:
    """Write ``lines`` (each followed by ``\\r\\n``), pausing at ``--More--``.

    ``length`` is the terminal length: 0 disables paging, else each screen holds
    ``length - 1`` lines.  Space shows the next screen, Enter one more line, any
    other key (``q``) stops the output.  Returns ``False`` if the client went away.
    """
    if length <= 0 or len(lines) < length:
        channel.write("".join(line + "\r\n" for line in lines))
        await channel.drain()
        return True
    screen = length - 1
    shown = screen
    channel.write("".join(line + "\r\n" for line in lines[:shown]))
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
        channel.write("".join(line + "\r\n" for line in lines[shown : shown + step]))
        shown += step
    await channel.drain()
    return True
