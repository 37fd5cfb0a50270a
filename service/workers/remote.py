"""The front's side of the device workers: each device goes to the worker that owns its
partition, over NATS, and its result comes back on an internal inbox.

A worker that stops answering (no responders, missed heartbeats, or it left) loses its
partitions at once; every device it held is sent once more, to the new owner. A device
whose second worker is lost too fails with ``service_unavailable``: every device gets
exactly one result, and nothing waits past its device deadline plus a grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from loguru import logger
from nats.aio.client import Client

from service import __version__
from service.contract import headers
from service.contract.errors import DeviceError, ErrorCode
from service.contract.messages import DeviceResult
from service.domain.models import DeviceOS, DeviceTarget, ExecutionPlan, ParseOutcome, Timeouts
from service.pipeline.ports import DeviceSession
from service.pipeline.runner import device_result
from service.workers.directory import WorkerDirectory
from service.workers.partition import PartitionMap
from service.workers.protocol import decode_result, encode, job_of

PART_HEADER = headers.PART
CONNECTS_HEADER = headers.CONNECTS
WARM_HEADER = headers.WARM_SESSIONS
REFUSED_HEADER = headers.REFUSED
ATTEMPTS = 2
WORKER_GRACE = 10.0  # past a device's deadline, how long the front still waits for its worker's answer


@dataclass(frozen=True, slots=True)
class InternalSubjects:
    """The subjects only the service's own user may use (ops/nats/auth.conf)."""

    prefix: str
    group: str = "default"

    @property
    def heartbeats(self) -> str:
        return f"{self.prefix}.internal.{self.group}.workers"

    def work(self, worker: str) -> str:
        return f"{self.prefix}.internal.{self.group}.work.{worker}"

    def inbox_prefix(self, front: str) -> str:
        return f"{self.prefix}.internal.{self.group}.inbox.{front}"


class WorkerLostError(Exception):
    pass


class RemoteDevices:
    """``run`` one device on its worker; the front's scheduler calls it instead of a thread."""

    def __init__(
        self,
        client: Client,
        directory: WorkerDirectory,
        subjects: InternalSubjects,
        wait_for_worker: float,
        grace: float,
        on_connect: Callable[[DeviceOS, float, bool], None] | None = None,
        leave_grace: float = 35.0,
    ) -> None:
        self._leave_grace = leave_grace
        self._on_connect = on_connect
        self._client = client
        self._directory = directory
        self._subjects = subjects
        self._wait_for_worker = wait_for_worker
        self._grace = grace
        self._lost: dict[str, asyncio.Event] = {}
        self._reconnected = asyncio.Event()  # set (and replaced) each time the connection comes back
        self._warm: dict[str, tuple[float, int]] = {}  # worker -> (when, warm sessions) from its last answer
        self.retries = 0
        self.lost = 0
        directory.listen(self._on_map)

    def reconnected(self) -> None:
        """NATS is back: an answer sent while it was away is lost, so every job waiting for one is
        sent again to the same worker, which answers it once more without running it twice."""
        event, self._reconnected = self._reconnected, asyncio.Event()
        event.set()

    def _on_map(self, old: PartitionMap, new: PartitionMap, gone: list[str], leaving: bool) -> None:
        for worker in gone:
            self.lost += 1
            event = self._lost.pop(worker, None)  # new jobs to a restarted worker wait on a new event
            if event is None:
                continue
            if leaving:  # it finishes what it has: send those devices elsewhere only if it does not
                asyncio.get_running_loop().call_later(self._leave_grace, event.set)
            else:
                event.set()

    async def run(self, plan: ExecutionPlan, target: DeviceTarget, timeouts: Timeouts) -> DeviceResult:
        body = encode(job_of(plan, target, timeouts))
        for attempt in range(1, ATTEMPTS + 1):
            worker = self._directory.map.owner(target.hostname, target.port)
            if worker is None:
                if not await self._directory.wait_for_worker(self._wait_for_worker):
                    return _failed(plan, target, ErrorCode.SERVICE_UNAVAILABLE, "no device worker is running")
                worker = self._directory.map.owner(target.hostname, target.port)
                if worker is None:
                    continue
            try:
                result, headers = await self._on_worker(worker, body, timeouts.device + self._grace)
            except WorkerLostError:
                if attempt < ATTEMPTS:
                    self.retries += 1
                    logger.warning("device worker {} was lost with this device; sending it once more", worker)
            except TimeoutError:
                return _failed(
                    plan,
                    target,
                    ErrorCode.DEVICE_TIMEOUT,
                    f"no result within the device deadline ({timeouts.device:g}s)",
                )
            else:
                if result is None:
                    return _failed(
                        plan,
                        target,
                        ErrorCode.INTERNAL_ERROR,
                        f"the device worker could not read the job: {headers.get(REFUSED_HEADER)}, front {__version__}",
                    )
                self._answered(worker, target, headers)
                return result
        return _failed(
            plan,
            target,
            ErrorCode.SERVICE_UNAVAILABLE,
            "the device workers were lost twice while working on this device",
        )

    def _answered(self, worker: str, target: DeviceTarget, headers: dict[str, str]) -> None:
        """What the worker's answer says besides the result: the sessions it used, its warm count."""
        if self._on_connect is not None:
            for seconds, reused in _connects(headers.get(CONNECTS_HEADER)):
                self._on_connect(target.os, seconds, reused)
        with contextlib.suppress(ValueError):
            self._warm[worker] = (time.monotonic(), int(headers.get(WARM_HEADER, "")))

    def warm_sessions(self) -> int:
        """Warm sessions of the live workers: from an answer when newer than the last heartbeat."""
        total = 0
        for worker, beat in self._directory.live.items():
            at, count = self._warm.get(worker, (0.0, beat.warm_sessions))
            total += count if at > self._directory.membership.seen(worker) else beat.warm_sessions
        return total

    async def _on_worker(self, worker: str, body: bytes, timeout: float) -> tuple[DeviceResult | None, dict[str, str]]:
        """The worker's result (None: it refused the job) and the answer's headers."""
        lost = self._lost.setdefault(worker, asyncio.Event())
        inbox = self._client.new_inbox()
        sub = await self._client.subscribe(inbox)
        try:
            await self._client.publish(self._subjects.work(worker), body, reply=inbox)
            collect = asyncio.ensure_future(self._collect(sub))
            gone = asyncio.ensure_future(lost.wait())
            try:
                done = await self._wait(collect, gone, worker, body, inbox, timeout)
            finally:
                gone.cancel()
                if not collect.done():
                    collect.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await collect
            if collect in done:
                answer = collect.result()
                if answer is None:  # no responders: the worker's subscription is gone
                    self._directory.forget(worker)
                    raise WorkerLostError(worker)
                data, answer_headers = answer
                if answer_headers.get(REFUSED_HEADER) is not None:
                    return None, answer_headers
                return decode_result(data), answer_headers
            if gone in done:
                raise WorkerLostError(worker)
            raise TimeoutError
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _wait(
        self,
        collect: asyncio.Future[Any],
        gone: asyncio.Future[Any],
        worker: str,
        body: bytes,
        inbox: str,
        timeout: float,
    ) -> set[asyncio.Future[Any]]:
        """Until the answer comes, the worker is lost or ``timeout``; the job is sent again each
        time NATS comes back (the worker answers a job it knows without running it again)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            back = asyncio.ensure_future(self._reconnected.wait())
            try:
                left = max(0.0, deadline - asyncio.get_running_loop().time())
                done, _ = await asyncio.wait({collect, gone, back}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            finally:
                back.cancel()
            if back not in done or collect.done() or gone.done():
                return done - {back}
            with contextlib.suppress(Exception):  # still away: the next reconnect sends it again
                await self._client.publish(self._subjects.work(worker), body, reply=inbox)

    @staticmethod
    async def _collect(sub: object) -> tuple[bytes, dict[str, str]] | None:
        """The result's bytes and the last message's headers, from one message or ``n`` parts;
        None for "no responders"."""
        parts: list[bytes] = []
        async for msg in sub.messages:  # type: ignore[attr-defined]
            headers: dict[str, str] = msg.headers or {}
            if headers.get("Status") == "503":
                return None
            part = headers.get(PART_HEADER)
            data: bytes = msg.data
            parts.append(data)
            if part is None:
                return data, headers
            index, _, total = part.partition("/")
            if index == total:
                return b"".join(parts), headers
        return None


def _connects(header: str | None) -> list[tuple[float, bool]]:
    try:
        return [(float(seconds), bool(reused)) for seconds, reused in json.loads(header or "[]")]
    except (ValueError, TypeError):
        return []


def _failed(plan: ExecutionPlan, target: DeviceTarget, code: ErrorCode, message: str) -> DeviceResult:
    return device_result(plan.request_id, target, [], 0.0, DeviceError(code, message))


class NoDeviceLayer:
    """The front's stand-in for a device layer when workers do the device work: never called."""

    def open(self, target: DeviceTarget, connect_timeout: float) -> DeviceSession:
        raise RuntimeError("the front opens no device session: its device workers do")

    def parse(self, os: DeviceOS, line: str, output: str) -> ParseOutcome:
        raise RuntimeError("the front parses nothing: its device workers do")

    def prewarm(self, pairs: Iterable[tuple[DeviceOS, str]]) -> None:
        return None
