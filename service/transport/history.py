"""Replay of stored results: one-off queries against the results stream.

A requester's own results are replayed by the service, asked on
``<prefix>.history.<requester>`` (the NATS server lets each user publish there only as
itself); requesters hold no JetStream permissions, so they can neither read nor delete
anyone's consumers. Operators with JetStream access may also read the stream directly.

Each query creates an ephemeral pull consumer (a filter subject built from requester,
request id and device token; ``deliver_policy=by_start_time`` when a start is given),
reads until the consumer has nothing pending, and deletes the consumer; a short
``inactive_threshold`` removes it anyway if the client goes away first. No durable
consumer is ever created. Filtering by command and the end of the time window happen
client-side: commands from the decoded body, the end from the message's stored time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass

import msgspec
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import api
from nats.js.client import JetStreamContext

from service.contract import headers
from service.contract.messages import CommandResult, DeviceResult
from service.transport.results import REQUESTER
from service.transport.subjects import SUMMARY_TOKEN, Subjects, device_token

STORED_AT = headers.STORED_AT
SEQUENCE = headers.SEQUENCE
SUBJECT = headers.SUBJECT
TRUNCATED = headers.TRUNCATED

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_decoder = msgspec.json.Decoder(DeviceResult)


class HistoryError(Exception):
    """A query that cannot run: no stream, no JetStream, a bad argument."""


@dataclass(frozen=True, slots=True)
class StoredResult:
    """One device result as kept in the stream."""

    stored_at: dt.datetime
    requester: str
    request_id: str
    device: str  # the subject token, e.g. 10_0_0_1 or 127_0_0_1-p2201
    subject: str
    sequence: int
    result: DeviceResult

    def command(self, command: str) -> CommandResult | None:
        """This result's entry for ``command`` (compared as in ``same_command``)."""
        return next((c for c in self.result.commands if same_command(c.command, command)), None)

    def only(self, commands: Iterable[CommandResult]) -> StoredResult:
        """The same record with just these commands."""
        narrowed = msgspec.structs.replace(self.result, commands=list(commands))
        return StoredResult(
            self.stored_at, self.requester, self.request_id, self.device, self.subject, self.sequence, narrowed
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "stored_at": self.stored_at.isoformat(),
            "requester": self.requester,
            "request_id": self.request_id,
            "device": self.device,
            "subject": self.subject,
            "sequence": self.sequence,
            "result": msgspec.to_builtins(self.result),
        }


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    requester: str | None = None
    request_id: str | None = None
    device: str | None = None  # HOST or HOST:PORT (port 22 when left out)
    command: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def normalize_command(command: str) -> str:
    return " ".join(command.split()).lower()


def same_command(a: str, b: str) -> bool:
    """Case and runs of spaces do not matter: ``Show  Version`` is ``show version``."""
    return normalize_command(a) == normalize_command(b)


def parse_device(spec: str) -> str:
    """``HOST``, ``HOST:PORT`` or ``[V6]:PORT`` to the device's subject token."""
    return device_token(*split_device(spec))


def split_device(spec: str) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT`` or ``[V6]:PORT`` to ``(host, port)``; port 22 when left out."""
    host, port = spec.strip(), 22
    if host.startswith("[") and "]" in host:
        inner, _, rest = host[1:].partition("]")
        host = inner
        if rest.startswith(":"):
            port = _port(rest[1:], spec)
    elif host.count(":") == 1:
        host, _, port_text = host.partition(":")
        port = _port(port_text, spec)
    if not host:
        raise HistoryError(f"no host in device {spec!r}")
    return host, port


def _port(text: str, spec: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise HistoryError(f"bad port in device {spec!r}")
    return int(text)


def parse_time(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """``24h``, ``30m``, ``7d``, ``90s``, ``2w`` (that long ago), ``now``, or an ISO timestamp.

    An ISO timestamp without a zone is local time. The result is always timezone-aware (UTC).
    """
    now = now or dt.datetime.now(dt.UTC)
    value = text.strip()
    if value.lower() == "now":
        return now.astimezone(dt.UTC)
    relative = _RELATIVE.match(value)
    if relative:
        seconds = float(relative.group(1)) * _UNITS[relative.group(2).lower()]
        return (now - dt.timedelta(seconds=seconds)).astimezone(dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise HistoryError(
            f"cannot read time {text!r}: give an ISO timestamp (2024-05-01T10:00:00Z) or a relative one (30m, 24h, 7d)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()  # local time
    return parsed.astimezone(dt.UTC)


def _record(msg: Msg, subjects: Subjects) -> StoredResult | None:
    tokens = msg.subject[len(subjects.prefix) + len(".results.") :].split(".")
    if len(tokens) != 3 or tokens[2] == SUMMARY_TOKEN:
        return None
    try:
        result = _decoder.decode(msg.data)
    except msgspec.DecodeError:  # not a device result (a stray or foreign message)
        return None
    meta = msg.metadata
    requester = (msg.headers or {}).get(REQUESTER) or tokens[0]
    return StoredResult(
        meta.timestamp, requester, result.request_id, tokens[2], msg.subject, meta.sequence.stream, result
    )


async def iter_results(
    client: Client,
    query: HistoryQuery,
    *,
    prefix: str = "pyats.v1",
    stream: str = "PYATS_RESULTS",
    batch: int = 256,
    idle: float = 2.0,
) -> AsyncGenerator[StoredResult, None]:
    """Stored device results matching ``query``, oldest first, read straight from JetStream
    (what the service does for a requester, and what an operator with JetStream access may do).

    With a command, each record keeps only that command's entry (records without it are
    left out). Reading stops at the first message stored after ``until``, when the consumer
    has nothing pending, or after ``idle`` seconds without a message. Close the iterator
    (``contextlib.aclosing``) when leaving early, so its consumer is deleted at once.
    """
    subjects = Subjects(prefix)
    device = parse_device(query.device) if query.device else None
    filter_subject = subjects.results_filter(query.requester, query.request_id, device)
    js = client.jetstream()
    sub = await _subscribe(js, filter_subject, stream, _consumer_config(query))
    consumer: str | None = None
    try:
        info = await sub.consumer_info()
        consumer = info.name
        async with contextlib.aclosing(_stored_messages(sub, info.num_pending or 0, batch, idle)) as messages:
            async for msg in messages:
                if query.until is not None and msg.metadata.timestamp > query.until:
                    return
                record = _selected(msg, subjects, query)
                if record is not None:
                    yield record
    finally:
        await sub.unsubscribe()
        if consumer is not None:
            with contextlib.suppress(nats.errors.Error, TimeoutError):  # else inactive_threshold removes it
                await js.delete_consumer(stream, consumer)


def _consumer_config(query: HistoryQuery) -> api.ConsumerConfig:
    """An ephemeral, unacknowledged, in-memory consumer, from ``since`` or the start."""
    config = api.ConsumerConfig(
        ack_policy=api.AckPolicy.NONE,
        inactive_threshold=30.0,
        max_deliver=1,
        mem_storage=True,
        num_replicas=1,
    )
    if query.since is not None:
        config.deliver_policy = api.DeliverPolicy.BY_START_TIME
        config.opt_start_time = query.since.astimezone(dt.UTC)
    else:
        config.deliver_policy = api.DeliverPolicy.ALL
    return config


async def _subscribe(
    js: JetStreamContext, filter_subject: str, stream: str, config: api.ConsumerConfig
) -> JetStreamContext.PullSubscription:
    """The pull subscription, or a ``HistoryError`` that says why JetStream would not give one."""
    try:
        return await js.pull_subscribe(filter_subject, stream=stream, config=config)
    except nats.js.errors.NotFoundError:
        raise HistoryError(f"no results stream {stream} on this server (is JetStream enabled?)") from None
    except nats.errors.NoRespondersError:
        raise HistoryError("JetStream is not available on this server") from None
    except (nats.errors.TimeoutError, TimeoutError):
        # a publish the server's permissions refuse is dropped: the API request just times out
        raise HistoryError(
            f"JetStream did not answer for {filter_subject}: this NATS user may not read those results "
            "(a requester reads its own through the service: --requester <user>)"
        ) from None


async def _stored_messages(
    sub: JetStreamContext.PullSubscription, pending: int, batch: int, idle: float
) -> AsyncGenerator[Msg, None]:
    """The consumer's messages until it has nothing pending, or ``idle`` seconds pass without one."""
    while pending > 0:
        try:
            messages = await sub.fetch(batch=min(batch, pending), timeout=idle)
        except (nats.errors.TimeoutError, TimeoutError):
            return
        for msg in messages:
            if JetStreamContext.is_status_msg(msg):
                continue
            pending = msg.metadata.num_pending
            yield msg


def _selected(msg: Msg, subjects: Subjects, query: HistoryQuery) -> StoredResult | None:
    """The device result in ``msg``, narrowed to the query's command; None when it does not match."""
    record = _record(msg, subjects)
    if record is None or query.command is None:
        return record
    entry = record.command(query.command)
    return None if entry is None else record.only([entry])


def stored_headers(record: StoredResult) -> dict[str, str]:
    """Where and when a replayed result was stored, as the history endpoint sends it."""
    return {
        STORED_AT: record.stored_at.isoformat(),
        SEQUENCE: str(record.sequence),
        SUBJECT: record.subject,
        REQUESTER: record.requester,
    }
