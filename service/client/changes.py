"""A requester's change events, live: a core NATS subscription on its own changes subject.

The service publishes a ``ChangeEvent`` on ``<prefix>.changes.<requester>.<device>`` when a
result differs from the one before. Watching is a plain subscription (no JetStream, no
consumer to clean up): events published while nobody watches are not replayed here.
A device narrows the subject; groups and commands are checked on each event.
"""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from types import TracebackType

import msgspec
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from service.contract.messages import ChangeEvent
from service.transport.history import normalize_command
from service.transport.subjects import Subjects

__all__ = [
    "ChangeFilter",
    "ChangeWatch",
    "WatchLostError",
    "WatchRefusedError",
    "command_matches",
    "watch_changes",
]

_decoder = msgspec.json.Decoder(ChangeEvent)
_GLOB = frozenset("*?[")
_PERMISSIONS = "permissions violation for subscription"


class WatchRefusedError(Exception):
    """The NATS server refused the subscription: this user may not read that subject."""

    def __init__(self, subject: str) -> None:
        super().__init__(
            f"NATS refused the subscription to {subject}: this NATS user may not read there; "
            "a requester may only watch its own changes (<prefix>.changes.<its own user>.>)"
        )
        self.subject = subject


class WatchLostError(Exception):
    """The connection to NATS closed while watching, and reconnecting failed."""


def command_matches(pattern: str, command: str) -> bool:
    """Exact once case and runs of spaces are ignored, or a glob (``show ip bgp*``)."""
    wanted, seen = normalize_command(pattern), normalize_command(command)
    if _GLOB.intersection(wanted):
        return fnmatch.fnmatchcase(seen, wanted)
    return wanted == seen


@dataclass(frozen=True, slots=True)
class ChangeFilter:
    """Which events to keep: any of ``groups`` (none: every group), any of ``commands``."""

    groups: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()

    def matches(self, event: ChangeEvent) -> bool:
        if self.groups and not set(self.groups).intersection(event.groups):
            return False
        return not self.commands or any(command_matches(c, event.command) for c in self.commands)


class ChangeWatch:
    """``async with ChangeWatch(...) as watch: async for event in watch``: subscribed (and
    checked by the server) on entry, unsubscribed on exit. ``skipped`` counts the messages
    that were not change events."""

    def __init__(
        self,
        client: Client,
        subject: str,
        wanted: ChangeFilter = ChangeFilter(),
        *,
        check_every: float = 1.0,
    ) -> None:
        self.client = client
        self.subject = subject
        self.wanted = wanted
        self.skipped = 0
        self._check_every = check_every
        self._queue: asyncio.Queue[Msg] = asyncio.Queue()
        self._subscription: Subscription | None = None

    @property
    def subscribed(self) -> bool:
        return self._subscription is not None

    async def __aenter__(self) -> ChangeWatch:
        await self.subscribe()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.unsubscribe()

    async def subscribe(self) -> None:
        """Subscribe, then round trips: the server refuses a subscription before it answers a
        PING sent after it. Two of them, because nats-py can take a PONG still owed from its
        connect handshake (nats-server 2.15 sends an INFO first) as the answer to the first."""

        async def collect(msg: Msg) -> None:
            await self._queue.put(msg)

        try:
            self._subscription = await self.client.subscribe(self.subject, cb=collect)
            for _ in range(2):
                await self.client.flush()
        except (nats.errors.Error, TimeoutError):
            raise WatchLostError(f"NATS did not answer while subscribing to {self.subject}") from None
        error = self.client.last_error
        if error is not None and _PERMISSIONS in str(error).lower() and self.subject.lower() in str(error).lower():
            await self.unsubscribe()
            raise WatchRefusedError(self.subject)

    async def unsubscribe(self) -> None:
        subscription, self._subscription = self._subscription, None
        if subscription is not None and not self.client.is_closed:
            await subscription.unsubscribe()

    def __aiter__(self) -> ChangeWatch:
        return self

    async def __anext__(self) -> ChangeEvent:
        while True:
            event = self._decoded(await self._next_message())
            if event is not None and self.wanted.matches(event):
                return event

    async def _next_message(self) -> Msg:
        while True:
            try:
                return await asyncio.wait_for(self._queue.get(), timeout=self._check_every)
            except TimeoutError:
                if self.client.is_closed:
                    raise WatchLostError(f"lost the connection to NATS while watching {self.subject}") from None

    def _decoded(self, msg: Msg) -> ChangeEvent | None:
        try:
            return _decoder.decode(msg.data)
        except msgspec.DecodeError:
            self.skipped += 1
            return None


def changes_subject(prefix: str, requester: str, device: str | None = None, port: int = 22) -> str:
    return Subjects(prefix).changes(requester, device, port)


async def watch_changes(
    client: Client,
    prefix: str,
    requester: str,
    *,
    device: str | None = None,
    port: int = 22,
    groups: Iterable[str] = (),
    commands: Iterable[str] = (),
) -> AsyncIterator[ChangeEvent]:
    """``requester``'s change events as they are published, filtered; unsubscribed when the
    iterator is closed (``contextlib.aclosing``). ``WatchRefusedError`` when the server
    refuses the subscription."""
    wanted = ChangeFilter(tuple(groups), tuple(commands))
    async with ChangeWatch(client, changes_subject(prefix, requester, device, port), wanted) as watch:
        async for event in watch:
            yield event
