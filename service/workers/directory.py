"""Who is alive: the workers' heartbeats, and the partition map they make.

Every front and every worker keeps one ``WorkerDirectory``: it listens to heartbeats on
``<prefix>.internal.workers``, forgets a worker that missed ``expiry`` seconds of them (or
said it is leaving), and rebuilds the partition map whenever the live set changes. Since
everyone computes the map from the same live set, no one has to hand it out.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from loguru import logger
from nats.aio.client import Client
from nats.aio.msg import Msg

from service.workers.partition import PartitionMap
from service.workers.protocol import Heartbeat, decode_heartbeat

# (old map, new map, workers that went away, whether they said they were leaving: a worker that
# leaves still answers the devices it has, up to its shutdown grace; one that died never will)
MapListener = Callable[[PartitionMap, PartitionMap, list[str], bool], None]


class Membership:
    """The live workers by their last heartbeat. Not thread-safe: one event loop owns it."""

    def __init__(self, expiry: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._expiry = expiry
        self._clock = clock
        self._seen: dict[str, float] = {}
        self.live: dict[str, Heartbeat] = {}
        self.map = PartitionMap(())

    def beat(self, heartbeat: Heartbeat) -> list[str] | None:
        """Take a heartbeat; the workers that left if the live set changed, else None. A worker
        restarted under its id (a new instance) counts as gone: what the old one held is lost."""
        known = self.live.get(heartbeat.worker)
        if heartbeat.leaving:
            if known is None or known.instance != heartbeat.instance:
                return None  # an old instance leaving late says nothing about the live one
            return [heartbeat.worker] if self._drop(heartbeat.worker) else None
        self.live[heartbeat.worker] = heartbeat
        self._seen[heartbeat.worker] = self._clock()
        if known is None:
            self.map = PartitionMap(self.live)
            return []
        if known.instance != heartbeat.instance:
            return [heartbeat.worker]  # same id, same map; the old instance's work is lost
        return None

    def seen(self, worker: str) -> float:
        """When the worker's last heartbeat came (0: never)."""
        return self._seen.get(worker, 0.0)

    def expire(self) -> list[str]:
        """Forget workers silent for longer than the expiry; those forgotten."""
        now = self._clock()
        gone = [worker for worker, seen in self._seen.items() if now - seen > self._expiry]
        for worker in gone:
            self._drop(worker)
        return gone

    def remove(self, worker: str) -> bool:
        """A worker found gone another way (no responders)."""
        return self._drop(worker)

    def _drop(self, worker: str) -> bool:
        self._seen.pop(worker, None)
        if self.live.pop(worker, None) is None:
            return False
        self.map = PartitionMap(self.live)
        return True


class WorkerDirectory:
    def __init__(self, client: Client, subject: str, expiry: float, interval: float) -> None:
        self._client = client
        self._subject = subject
        self._interval = interval
        self.membership = Membership(expiry)
        self._listeners: list[MapListener] = []
        self._changed = asyncio.Event()
        self._sub: object | None = None
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def map(self) -> PartitionMap:
        return self.membership.map

    @property
    def live(self) -> dict[str, Heartbeat]:
        return self.membership.live

    def listen(self, listener: MapListener) -> None:
        self._listeners.append(listener)

    async def start(self) -> None:
        self._sub = await self._client.subscribe(self._subject, cb=self._on_heartbeat)
        self._sweeper = asyncio.create_task(self._sweep())
        # ask the workers already running to beat now rather than at their next interval
        await self._client.publish(f"{self._subject}.ping", b"")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()  # type: ignore[attr-defined]

    async def wait_for_worker(self, timeout: float, count: int = 1) -> bool:
        """Until at least ``count`` workers are live, or ``timeout``; whether they are."""
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.membership.live) < count:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)
        return True

    def forget(self, worker: str) -> None:
        old = self.membership.map
        if self.membership.remove(worker):
            logger.warning("device worker {} stopped answering; its partitions move", worker)
            self._changed_to(old, [worker])

    async def _on_heartbeat(self, msg: Msg) -> None:
        try:
            heartbeat = decode_heartbeat(msg.data)
        except Exception:  # noqa: BLE001 - a bad heartbeat is ignored, never fatal
            logger.warning("ignored a malformed worker heartbeat")
            return
        old = self.membership.map
        gone = self.membership.beat(heartbeat)
        if gone is not None:
            if gone and heartbeat.worker in self.membership.live:
                logger.warning("device worker {} restarted (now pid {})", heartbeat.worker, heartbeat.pid)
            elif gone:
                logger.info("device worker {} left", heartbeat.worker)
            else:
                logger.info("device worker {} joined ({} on {})", heartbeat.worker, heartbeat.pid, heartbeat.host)
            self._changed_to(old, gone, heartbeat.leaving)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            old = self.membership.map
            gone = self.membership.expire()
            if gone:
                logger.warning("device worker(s) {} missed their heartbeats; their partitions move", ", ".join(gone))
                self._changed_to(old, gone)

    def _changed_to(self, old: PartitionMap, gone: list[str], leaving: bool = False) -> None:
        self._changed.set()
        new = self.membership.map
        for listener in self._listeners:
            try:
                listener(old, new, gone, leaving)
            except Exception as exc:  # noqa: BLE001 - one listener must not stop the others
                logger.opt(exception=exc).error("partition map listener failed")
