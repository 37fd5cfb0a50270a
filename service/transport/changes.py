"""Change events: each new (device, command) result against the last one of the same requester.

The last compared form (``service.domain.changes.Comparable``) of every requester's (device,
command) is kept in a KV bucket, key ``<requester>.<device>.<16 hex of sha256(command)>``. The
first result is a baseline, not a change; a result already compared (the same request id: a
redelivered job or tick) is skipped; a different digest publishes a ``ChangeEvent`` on
``<prefix>.changes.<requester>.<device>`` through JetStream, with ``Nats-Msg-Id`` = key + request
id so that a rerun cannot publish it twice, then moves the baseline (compare-and-set on the KV
revision; a conflict is re-read once).

Comparing happens off the reply path: ``ChangeDetector.observe`` only queues (bounded; the oldest
is dropped and counted when full) and one background task does the KV and JetStream work.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import nats.errors
import nats.js.errors
from loguru import logger
from nats.js import api
from nats.js.client import JetStreamContext
from nats.js.kv import KeyValue

from service.config import ChangeScope, ChangesSettings
from service.contract import headers
from service.contract.codec import encode
from service.contract.messages import (
    ChangeEvent,
    ChangeSide,
    CommandResult,
    DeviceResult,
    PathChange,
    PathValue,
    RequestSummary,
)
from service.domain.changes import (
    ChangeRule,
    ChangeRules,
    ChangeSet,
    Comparable,
    ComparableKind,
    comparable,
    compare,
)
from service.domain.inventory import Inventory
from service.observability.metrics import ServiceMetrics
from service.pipeline.ports import ResultPublisher
from service.transport.streams import ensure_bucket, ensure_stream
from service.transport.subjects import Subjects, device_token, sanitize_token

MAX_BASELINE_BYTES = 512 * 1024  # above this (compressed), only the digest is kept
MAX_EVENT_BYTES = 512 * 1024  # above this, an event goes without its paths and lines (truncated)
_KV_UNSAFE = re.compile(r"[^A-Za-z0-9_=-]")


async def ensure_changes_stream(
    js: JetStreamContext, subjects: Subjects, changes: ChangesSettings, duplicate_window: float = 120.0
) -> KeyValue:
    """The change events stream (deletes and purges denied, like the results stream) and the
    baseline bucket (history 1, entries expire after ``max_age`` unless a newer result refreshes them)."""
    config = api.StreamConfig(
        name=changes.stream,
        subjects=[subjects.changes_wildcard],
        max_age=changes.max_age,
        duplicate_window=min(duplicate_window, changes.max_age),
        storage=api.StorageType.FILE,
        allow_direct=True,
        deny_delete=True,
        deny_purge=True,
    )
    await ensure_stream(js, config, "PYATS_CHANGES_*")
    bucket = api.KeyValueConfig(
        bucket=changes.bucket, history=1, ttl=changes.max_age, storage=api.StorageType.FILE, direct=True
    )
    return await ensure_bucket(js, bucket, "PYATS_CHANGES_BUCKET")


def baseline_key(requester: str, hostname: str, port: int, command: str) -> str:
    """``<requester>.<device>.<16 hex>``: the command is hashed (it holds spaces and pipes)."""
    digest = hashlib.sha256(command.encode()).hexdigest()[:16]
    requester_token = _KV_UNSAFE.sub("_", sanitize_token(requester))
    return f"{requester_token}.{_KV_UNSAFE.sub('_', device_token(hostname, port))}.{digest}"


class _Baseline(msgspec.Struct, frozen=True, kw_only=True):
    """The stored value: the comparable form (unless too large) and which result it came from."""

    request_id: str
    time: str
    kind: ComparableKind
    digest: str
    parsed: dict[str, Any] | None = None
    lines: list[str] | None = None
    detail: bool = True

    def comparable(self) -> Comparable | None:
        if not self.detail:
            return None
        return Comparable(self.kind, self.parsed, tuple(self.lines) if self.lines is not None else None, self.digest)


def _encoded(form: Comparable, request_id: str, time: str) -> bytes:
    """zlib-compressed JSON; only the digest when even that is above ``MAX_BASELINE_BYTES``."""
    lines = list(form.lines) if form.lines is not None else None
    full = _Baseline(
        request_id=request_id, time=time, kind=form.kind, digest=form.digest, parsed=form.parsed, lines=lines
    )
    packed = zlib.compress(msgspec.json.encode(full), 6)
    if len(packed) <= MAX_BASELINE_BYTES:
        return packed
    small = _Baseline(request_id=request_id, time=time, kind=form.kind, digest=form.digest, detail=False)
    return zlib.compress(msgspec.json.encode(small), 6)


def _decoded(value: bytes | None) -> _Baseline | None:
    """None for a value this version cannot read: the next result becomes the baseline."""
    try:
        return msgspec.json.decode(zlib.decompress(value or b""), type=_Baseline)
    except (zlib.error, msgspec.DecodeError):
        return None


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True)
class _Observed:
    requester: str
    result: DeviceResult
    schedule: str | None
    time: str


@dataclass(frozen=True, slots=True)
class _Tracked:
    """One command of an observed result, with its rule, compared form and baseline key."""

    observed: _Observed
    command: str
    rule: ChangeRule | None
    form: Comparable
    key: str


class ChangeDetector:
    """Compares results with their baselines in the background and publishes change events."""

    def __init__(
        self,
        js: JetStreamContext,
        kv: KeyValue,
        subjects: Subjects,
        rules: ChangeRules,
        metrics: ServiceMetrics,
        inventory: Callable[[], Inventory | None],
        max_paths: int,
        buffer: int = 1000,
    ) -> None:
        self._js = js
        self._kv = kv
        self._subjects = subjects
        self._rules = rules
        self._metrics = metrics
        self._inventory = inventory
        self._max_paths = max_paths
        self._queue: asyncio.Queue[_Observed] = asyncio.Queue(maxsize=buffer)
        self._worker: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._worker = asyncio.create_task(self._run())

    def observe(self, requester: str, result: DeviceResult, schedule: str | None) -> None:
        """Queue a result for comparison; never waits. When the queue is full the oldest goes."""
        if not any(command.success for command in result.commands):  # a later command may have failed
            return
        if self._queue.full():
            oldest = self._queue.get_nowait()
            self._queue.task_done()
            self._count_skipped(oldest, "the change detector's queue is full")
        self._queue.put_nowait(_Observed(requester, result, schedule, _now()))

    async def close(self, grace: float) -> None:
        """Finish what is queued for up to ``grace`` seconds; count the rest as skipped."""
        try:
            await asyncio.wait_for(self._queue.join(), timeout=grace)
        except TimeoutError:
            logger.warning("{} result(s) not compared for changes at shutdown", self._queue.qsize())
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        while not self._queue.empty():
            self._count_skipped(self._queue.get_nowait(), "shutdown")

    def _count_skipped(self, observed: _Observed, why: str) -> None:
        skipped = sum(1 for command in observed.result.commands if command.success)
        self._metrics.change_comparisons.labels("skipped").inc(skipped)
        logger.warning(
            "result {} of {} not compared for changes: {}", observed.result.request_id, observed.result.hostname, why
        )

    async def _run(self) -> None:
        while True:
            observed = await self._queue.get()
            try:
                for command in observed.result.commands:
                    if command.success:
                        await self._track_command(observed, command)
            finally:
                self._queue.task_done()

    async def _track_command(self, observed: _Observed, command: CommandResult) -> None:
        tracked = self._tracked(observed, command)
        if tracked is None:
            return
        try:
            outcome = await self._compare_once(tracked)
        except nats.js.errors.KeyWrongLastSequenceError:  # another replica moved it: read it again
            try:
                outcome = await self._compare_once(tracked)
            except nats.js.errors.KeyWrongLastSequenceError:
                outcome = "skipped"
        except (nats.errors.Error, TimeoutError, OSError) as exc:
            logger.warning("change comparison of {} failed ({})", observed.result.hostname, type(exc).__name__)
            outcome = "skipped"
        except (msgspec.EncodeError, TypeError, ValueError) as exc:  # a value the encoder refuses
            logger.error("change comparison of {} failed ({})", observed.result.hostname, type(exc).__name__)
            outcome = "skipped"
        self._metrics.change_comparisons.labels(outcome).inc()

    def _tracked(self, observed: _Observed, command: CommandResult) -> _Tracked | None:
        result = observed.result
        rule = self._rules.for_command(result.os, command.command)
        form = comparable(result.os, command.command, command.parsed, command.output, rule)
        if form is None:
            return None
        key = baseline_key(observed.requester, result.hostname, result.port, command.command)
        return _Tracked(observed, command.command, rule, form, key)

    async def _read(self, key: str) -> KeyValue.Entry | None:
        try:
            return await self._kv.get(key)
        except nats.js.errors.KeyNotFoundError:
            return None

    async def _compare_once(self, tracked: _Tracked) -> str:
        """One read, compare and compare-and-set; the outcome counted in ``change_comparisons``."""
        entry = await self._read(tracked.key)
        stored = _decoded(entry.value) if entry is not None else None
        observed = tracked.observed
        value = _encoded(tracked.form, observed.result.request_id, observed.time)
        if entry is None:
            await self._kv.create(tracked.key, value)
            return "baseline"
        if stored is None or stored.kind != tracked.form.kind:  # unreadable, or parsed once and not now
            await self._kv.update(tracked.key, value, last=entry.revision)
            return "baseline"
        if stored.request_id == observed.result.request_id:
            return "skipped"
        if stored.digest != tracked.form.digest:
            old = stored.comparable()
            changes = compare(old, tracked.form, self._max_paths) if old is not None else None
            if old is None or changes is not None:
                await self._publish(tracked, stored, changes)
                await self._kv.update(tracked.key, value, last=entry.revision)
                return "changed"
        await self._kv.update(tracked.key, value, last=entry.revision)
        return "unchanged"

    def _inventory_entry(self, hostname: str, port: int) -> tuple[str | None, list[str]]:
        """The device's inventory name and groups (none when it was given inline)."""
        inventory = self._inventory()
        if inventory is None:
            return None, []
        for device in inventory.devices.values():
            if device.hostname == hostname and device.port == port:
                return device.name, sorted(device.groups)
        return None, []

    async def _publish(self, tracked: _Tracked, stored: _Baseline, changes: ChangeSet | None) -> None:
        """``changes`` is None when the baseline kept only its digest: an event without detail."""
        observed = tracked.observed
        result = observed.result
        name, groups = self._inventory_entry(result.hostname, result.port)
        event = ChangeEvent(
            requester=observed.requester,
            device=result.hostname,
            port=result.port,
            command=tracked.command,
            kind=changes.kind if changes is not None else tracked.form.kind,
            previous=ChangeSide(request_id=stored.request_id, time=stored.time),
            current=ChangeSide(request_id=result.request_id, time=observed.time),
            added=[PathValue(path=path, value=value) for path, value in changes.added] if changes else [],
            removed=[PathValue(path=path, value=value) for path, value in changes.removed] if changes else [],
            changed=[PathChange(path=path, old=old, new=new) for path, old, new in changes.changed] if changes else [],
            lines_added=list(changes.lines_added) if changes else [],
            lines_removed=list(changes.lines_removed) if changes else [],
            truncated=changes.truncated if changes is not None else True,
            rule=tracked.rule.name if tracked.rule else None,
            schedule=observed.schedule,
            groups=groups,
            name=name,
            os=result.os,
        )
        message_headers = {
            headers.MSG_ID: f"{tracked.key}.{sanitize_token(result.request_id)}",
            headers.REQUEST_ID: result.request_id,
            headers.REQUESTER: observed.requester,
            headers.DEVICE: result.hostname,
        }
        subject = self._subjects.changes(observed.requester, result.hostname, result.port)
        payload = encode(event)
        if len(payload) > MAX_EVENT_BYTES:  # large added or removed subtrees: say what changed, not how
            payload = encode(_without_detail(event))
        ack = await self._js.publish(subject, payload, timeout=5, headers=message_headers)
        if ack.duplicate:
            logger.debug("change event already published: {}", subject)
            return
        self._metrics.change_events.labels(tracked.rule.name if tracked.rule else "other").inc()
        logger.info("change on {}: {} ({})", result.hostname, tracked.command, event.kind)


def _without_detail(event: ChangeEvent) -> ChangeEvent:
    return msgspec.structs.replace(
        event, added=[], removed=[], changed=[], lines_added=[], lines_removed=[], truncated=True
    )


class ChangeTrackingPublisher:
    """A ``ResultPublisher`` that stores results through ``inner`` and hands each original result
    (outputs included, not the offloaded copy) to the change detector."""

    def __init__(
        self,
        inner: ResultPublisher,
        detector: ChangeDetector,
        scope: ChangeScope,
        schedule_of: Callable[[str], str | None],
    ) -> None:
        self._inner = inner
        self._detector = detector
        self._scope = scope
        self._schedule_of = schedule_of

    async def publish_result(self, requester: str, result: DeviceResult) -> Awaitable[bool]:
        stored = await self._inner.publish_result(requester, result)
        schedule = self._schedule_of(result.request_id)
        if self._scope is ChangeScope.ALL or schedule is not None:
            self._detector.observe(requester, result, schedule)
        return stored

    async def publish_summary(self, requester: str, summary: RequestSummary) -> Awaitable[bool]:
        return await self._inner.publish_summary(requester, summary)
