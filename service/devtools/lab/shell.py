"""The per-connection CLI state machine: modes, enable, terminal settings, commands.

One ``DeviceShell`` runs per SSH session.  It reads lines through a
``LineReader``, logs each one, applies the device's faults (login delay,
per-command latency, hang, disconnect, outputs in chunks and pauses after
prompt-like lines) and answers from the device's ``OutputStore``, so a client
sees the same conversation a Cisco box would give it.
"""

from __future__ import annotations

import asyncio
import hmac
import random
import re
from enum import StrEnum

from service.devtools.lab.filters import FilterError, parse_filter
from service.devtools.lab.log import PASSWORD_PLACEHOLDER, CommandLog, enters_config_mode
from service.devtools.lab.outputs import OutputStore, StoredOutput, normalise_command
from service.devtools.lab.platforms import PLATFORMS, Platform
from service.devtools.lab.spec import DeviceSpec, expand_pattern
from service.devtools.lab.terminal import CTRL_Z, Channel, LineReader, Pacing, page_out

CONFIG_BANNER = "Enter configuration commands, one per line.  End with CNTL/Z."
CHATTER_LINE = "*Mar 26 14:03:30.001: %LINEPROTO-5-UPDOWN: Line protocol on Interface Loopback9, changed state to up"
_SUBMODES = {"interface": "config-if", "line": "config-line", "router": "config-router", "vlan": "config-vlan"}
_TERMINAL_SETTINGS = ("length", "width", "pager", "monitor", "no", "session-timeout", "exec")


class Mode(StrEnum):
    """CLI modes as the log names them."""

    EXEC = "exec"
    PRIVILEGED = "privileged"
    CONFIG = "config"


class SessionClosedError(Exception):
    """The shell decided to end the session (``exit``, a fault, or end of input)."""


def _is_word(typed: str, keyword: str, minimum: int = 1) -> bool:
    """Whether ``typed`` abbreviates ``keyword`` (``conf`` -> ``configure``)."""
    typed = typed.lower()
    return len(typed) >= minimum and keyword.startswith(typed)


class DeviceShell:
    """The CLI of one device for one session."""

    def __init__(
        self,
        device: DeviceSpec,
        store: OutputStore,
        channel: Channel,
        log: CommandLog,
        rng: random.Random | None = None,
    ) -> None:
        self._device = device
        self._store = store
        self._channel = channel
        self._reader = LineReader(channel)
        self._log = log
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not crypto
        self._platform: Platform = PLATFORMS[device.os]
        self._privileged = (
            self._platform.starts_privileged(device.enable_password)
            if device.login_privilege is None
            else device.login_privilege >= 15
        )
        self._denied = tuple(re.compile(pattern) for pattern in device.authorization_denied)
        self._extra = {
            normalise_command(command): StoredOutput(command, text, template=False)
            for command, text in device.extra_outputs
        }
        self._submode: str | None = None
        self._length = device.terminal_length
        self._pacing = Pacing(
            chunk_size=device.chunk_size,
            chunk_delay=device.chunk_delay,
            pause_after=tuple(re.compile(expand_pattern(p, device.name)) for p in device.pause_after),
            pause_seconds=device.pause_seconds,
        )

    @property
    def mode(self) -> Mode:
        """The current mode, for prompts and the log."""
        if self._submode is not None:
            return Mode.CONFIG
        return Mode.PRIVILEGED if self._privileged else Mode.EXEC

    @property
    def prompt(self) -> str:
        """The prompt a client must see for the current mode."""
        return self._platform.prompt(self._device.name, self.mode.value, self._submode or "config")

    async def run(self) -> None:
        """Serve an interactive session until the client leaves or a fault ends it."""
        await self._login_delay()
        if self._device.motd:
            self._channel.write("\r\n" + "".join(line + "\r\n" for line in self._device.motd.splitlines()))
        self._channel.write("\r\n" + self.prompt)
        try:
            while True:
                line = await self._reader.read_line()
                if line is None:
                    return
                self._record(line)
                await self._handle_line(line)
                self._channel.write(self.prompt)
                await self._channel.drain()
                if self._matches(self._device.chatter_after, line, normalise_command(line)):
                    await self._chatter()
        except SessionClosedError:
            return

    async def run_command(self, command: str) -> None:
        """Serve ``ssh host 'show version'``: one command, no prompts."""
        await self._login_delay()
        self._record(command)
        try:
            await self._handle_line(command)
        except SessionClosedError:
            return
        await self._channel.drain()

    async def _login_delay(self) -> None:
        """Slow AAA: the session is open but the device is silent for a while."""
        if self._device.login_delay > 0:
            await asyncio.sleep(self._device.login_delay)

    def _record(self, line: str, *, secret: bool = False) -> None:
        config = self.mode is Mode.CONFIG or (not secret and enters_config_mode(line))
        if secret:
            line = PASSWORD_PLACEHOLDER
        elif line == CTRL_Z:
            line = "^Z"
        self._log.record(
            device=self._device.name, port=self._device.port, mode=self.mode.value, line=line, config=config
        )

    def _write_lines(self, *lines: str) -> None:
        self._channel.write("".join(line + "\r\n" for line in lines))

    def _invalid(self, position: int) -> None:
        """Print the caret under the first word no command accepts, then the message."""
        offset = len(self.prompt) + position
        self._write_lines(" " * offset + "^", self._platform.invalid_input, "")

    def _invalid_at_word(self, line: str, word_index: int) -> None:
        position = 0
        rest = line
        for _ in range(word_index):
            stripped = rest.lstrip()
            position += len(rest) - len(stripped)
            word = stripped.split(None, 1)[0] if stripped else ""
            position += len(word)
            rest = stripped[len(word) :]
        position += len(rest) - len(rest.lstrip())
        self._invalid(position)

    async def _handle_line(self, line: str) -> None:
        if line == CTRL_Z:
            self._submode = None
            return
        words = line.split()
        if not words:
            return
        if self._submode is not None:
            await self._handle_config(line, words)
        elif any(pattern.search(line) for pattern in self._denied):
            self._write_lines("% Authorization failed.", "")
        else:
            await self._handle_exec(line, words)

    async def _handle_exec(self, line: str, words: list[str]) -> None:
        """A line typed at the exec prompt: enable, disable, exit, terminal, configure, or a show."""
        first = words[0]
        if _is_word(first, "enable", 2):
            await self._enable(line)
        elif _is_word(first, "disable", 4) and self._platform.privileged_login is not True:
            self._privileged = False
        elif _is_word(first, "exit", 2) or _is_word(first, "logout", 2) or _is_word(first, "quit", 1):
            raise SessionClosedError
        elif _is_word(first, "terminal", 3):
            self._terminal(line, words)
        elif len(first) >= 4 and "configure".startswith(first.lower()):
            if not self._privileged:
                self._invalid_at_word(line, 0)
            else:
                self._write_lines(CONFIG_BANNER)
                self._submode = "config"
        else:
            await self._show(line)

    async def _chatter(self) -> None:
        """An unasked syslog line, as console logging prints it on a VTY, then the prompt again."""
        if self._device.chatter_delay > 0:
            await asyncio.sleep(self._device.chatter_delay)
        self._channel.write(f"\r\n{CHATTER_LINE}\r\n{self.prompt}")
        await self._channel.drain()

    async def _delay(self) -> None:
        """Latency plus uniform jitter before each command's answer."""
        delay = self._device.latency
        if self._device.jitter:
            delay += self._rng.uniform(0.0, self._device.jitter)
        if delay > 0:
            await asyncio.sleep(delay)

    async def _enable(self, line: str) -> None:
        if self._privileged:
            return
        expected = self._device.enable_password
        if expected is None and self._device.login_privilege is not None:
            await self._ask_enable_password()  # an AAA account without enable: every answer is wrong
            self._write_lines("% Error in authentication.", "")
            return
        if expected is None and not self._platform.enable_always_asks:
            self._write_lines("% No password set", "")
            return
        typed = await self._ask_enable_password()
        if expected is None or hmac.compare_digest(typed.encode(), expected.encode()):
            self._privileged = True
        else:
            self._write_lines(self._platform.enable_denied, "")

    async def _ask_enable_password(self) -> str:
        self._channel.write("Password: ")
        await self._channel.drain()
        typed = await self._reader.read_line(echo=False)
        if typed is None:
            raise SessionClosedError
        self._record(typed, secret=True)
        return typed

    def _terminal(self, line: str, words: list[str]) -> None:
        """``terminal length N`` and friends; ASA pages with ``terminal pager N``."""
        if len(words) < 2:
            self._invalid_at_word(line, 1)
            return
        setting = [s for s in _TERMINAL_SETTINGS if _is_word(words[1], s)]
        pager = self._platform.pager_keyword
        if len(setting) != 1 or (setting[0] in ("length", "pager") and setting[0] != pager):
            self._invalid_at_word(line, 1)
            return
        if setting[0] == pager:
            value = words[-1]
            if not value.isdigit():
                self._invalid_at_word(line, len(words) - 1)
                return
            self._length = int(value)

    async def _handle_config(self, line: str, words: list[str]) -> None:
        first = words[0].lower()
        if _is_word(first, "end", 2):
            self._submode = None
        elif _is_word(first, "exit", 2):
            self._submode = "config" if self._submode != "config" else None
        elif first == "do" and len(words) > 1:
            await self._show(line.split(None, 1)[1])
        else:
            for keyword, submode in _SUBMODES.items():
                if _is_word(first, keyword, 3):
                    self._submode = submode
                    break

    async def _show(self, line: str) -> None:
        """Answer an exec command from the store, with filters, faults and paging.

        Latency applies here only: real devices answer ``terminal`` and ``enable`` at once.
        """
        await self._delay()
        base, _, clause = line.partition("|")
        key = normalise_command(base)
        if self._matches(self._device.hang_commands, line, key):
            await self._hang()
        stored = self._store.next_in_sequence(line) or (self._store.exact(line) if clause else None)
        if stored is not None:
            base, clause = line, ""
        else:
            stored = self._extra.get(key) or self._store.lookup(base)
        if stored is None:
            self._invalid_at_word(line, self._store.matched_words(base))
            return
        if not self._privileged and stored.command.lower().startswith("show run"):
            self._invalid_at_word(line, 1)  # user mode has no running-config, as on IOS
            return
        text = stored.render(self._device.name)
        lines = text.replace("\r\n", "\n").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if clause.strip():
            try:
                lines = parse_filter(clause).apply(lines)
            except FilterError:
                self._invalid(len(base) + 1)
                return
        if self._matches(self._device.disconnect_commands, line, key):
            wire = "".join(item + "\r\n" for item in lines)
            self._channel.write(wire[: len(wire) // 2])
            await self._channel.drain()
            raise SessionClosedError
        if not await page_out(self._channel, self._reader, lines, self._length, self._pacing):
            raise SessionClosedError

    @staticmethod
    def _matches(commands: tuple[str, ...], line: str, key: str) -> bool:
        wanted = {normalise_command(command) for command in commands}
        return "*" in wanted or key in wanted or normalise_command(line) in wanted

    async def _hang(self) -> None:
        """Never answer: swallow input until the client gives up and closes."""
        while await self._reader.read_key() is not None:
            pass
        raise SessionClosedError
