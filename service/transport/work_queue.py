"""A JetStream work queue that every replica pulls from through one shared durable consumer.

A message is worked on by one replica at a time: while it runs the replica sends in-progress
acks; it is acked when done, so a replica that dies mid-way leaves it unacked and another
replica gets it after ``ack_wait``. Durable jobs and schedule ticks are both such queues.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Awaitable
from dataclasses import dataclass

import nats.errors
import nats.js
from loguru import logger
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import api

from service.contract.errors import PyatsRoError, RequestError
from service.transport.streams import ensure_stream


@dataclass(frozen=True, slots=True)
class QueueSettings:
    stream: str
    subject: str
    consumer: str
    ack_wait: float
    max_deliver: int
    concurrency: int
    max_age: float
    duplicate_window: float = 120.0
    variables: str = "PYATS_JOBS_*"  # the settings to check when the stream cannot be set up


class WorkQueueWorker(ABC):
    def __init__(self, client: Client, queue: QueueSettings) -> None:
        self._client = client
        self._js = client.jetstream()
        self._queue = queue
        self._loops: list[asyncio.Task[None]] = []
        self._running: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._subscription: nats.js.JetStreamContext.PullSubscription | None = None

    async def start(self) -> None:
        q = self._queue
        config = api.StreamConfig(
            name=q.stream,
            subjects=[q.subject],
            retention=api.RetentionPolicy.WORK_QUEUE,
            storage=api.StorageType.FILE,
            max_age=q.max_age,
            duplicate_window=q.duplicate_window,
        )
        await ensure_stream(self._js, config, q.variables)
        consumer = api.ConsumerConfig(
            durable_name=q.consumer,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=q.ack_wait,
            max_deliver=q.max_deliver,
            filter_subject=q.subject,
        )
        subscription = await self._js.pull_subscribe(q.subject, durable=q.consumer, stream=q.stream, config=consumer)
        self._subscription = subscription
        self._loops = [asyncio.create_task(self._loop(subscription)) for _ in range(q.concurrency)]
        logger.info("taking work from {} (stream {}, {} at a time)", q.subject, q.stream, q.concurrency)

    async def _loop(self, subscription: nats.js.JetStreamContext.PullSubscription) -> None:
        while not self._stopping:
            try:
                messages = await subscription.fetch(1, timeout=2)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            except nats.errors.Error as exc:
                logger.warning("fetching from {} failed ({}); retrying", self._queue.stream, type(exc).__name__)
                await asyncio.sleep(1)
                continue
            for message in messages:
                task = asyncio.create_task(self._process(message))
                self._running.add(task)
                task.add_done_callback(self._running.discard)
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(task)

    @abstractmethod
    async def _process(self, message: Msg) -> None:
        """Work on one message and ack, nak or term it; a cancel leaves it unacked."""

    async def held(self, message: Msg, work: Awaitable[None], what: str) -> bool:
        """Run ``work`` while telling JetStream the message is in progress. True when it ran to
        the end; False when it failed with a service error (the message is nak'ed: another try
        later). A cancel (shutdown) leaves it unacked: another replica gets it after ``ack_wait``."""
        keepalive = asyncio.create_task(self._keep_alive(message))
        try:
            await work
        except PyatsRoError as exc:
            logger.error("{} failed ({}); it will be run again", what, exc.code)
            await message.nak(delay=self._queue.ack_wait / 2)
            return False
        finally:
            keepalive.cancel()
        return True

    async def settle_refused(self, message: Msg, failure: PyatsRoError) -> None:
        """A request the handler refused: never again if the request itself is wrong, later if not."""
        await (message.term() if isinstance(failure, RequestError) else message.nak(delay=self._queue.ack_wait / 2))

    async def _keep_alive(self, message: Msg) -> None:
        while True:
            await asyncio.sleep(max(0.2, self._queue.ack_wait / 3))
            with contextlib.suppress(nats.errors.Error):
                await message.in_progress()

    async def stop(self, grace: float) -> None:
        """Stop taking work; work still running after ``grace`` is left unacked for another replica."""
        self._stopping = True
        if self._running:
            await asyncio.wait(set(self._running), timeout=grace)
        for task in [*self._running, *self._loops]:
            task.cancel()
        if self._subscription is not None:
            # a pull subscription left open makes the connection's drain wait for its timeout
            with contextlib.suppress(nats.errors.Error):
                await self._subscription.unsubscribe()
