"""A requester's history queries: its own results replayed by the service, or the stream read directly.

``query_results`` asks the service on ``<prefix>.history.<requester>`` (requesters hold no
JetStream permissions under the shipped auth.conf) and falls back to reading JetStream
directly (operators only) when no replica answers or the query spans every requester.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable

import msgspec
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from service.client.inbox import error_of, streamed_replies
from service.contract.codec import encode
from service.contract.messages import DeviceResult, HistoryRequest
from service.transport.history import (
    SEQUENCE,
    STORED_AT,
    SUBJECT,
    TRUNCATED,
    HistoryError,
    HistoryQuery,
    StoredResult,
    iter_results,
    normalize_command,
    parse_time,
)
from service.transport.results import REQUESTER
from service.transport.subjects import Subjects

__all__ = [
    "HistoryError",
    "HistoryQuery",
    "StoredResult",
    "history_request",
    "latest",
    "parse_time",
    "per_command",
    "query_results",
    "query_via_service",
    "result_at",
    "result_of_request",
]

_decoder = msgspec.json.Decoder(DeviceResult)


async def query_results(
    client: Client,
    query: HistoryQuery,
    *,
    prefix: str = "pyats.v1",
    stream: str = "PYATS_RESULTS",
    batch: int = 256,
    idle: float = 2.0,
) -> list[StoredResult]:
    """Stored device results matching ``query``, oldest first.

    A query for one requester's results asks the service on ``<prefix>.history.<requester>``
    (under the shipped NATS permissions requesters have no JetStream access of their own);
    a query over every requester, or one when no replica answers, reads JetStream directly.
    """
    if query.requester:
        try:
            return await query_via_service(client, query, prefix=prefix)
        except nats.errors.NoRespondersError:
            pass
    async with contextlib.aclosing(
        iter_results(client, query, prefix=prefix, stream=stream, batch=batch, idle=idle)
    ) as found:
        return [record async for record in found]


def history_request(query: HistoryQuery) -> HistoryRequest:
    return HistoryRequest(
        request_id=query.request_id,
        device=query.device,
        command=query.command,
        since=query.since.isoformat() if query.since else None,
        until=query.until.isoformat() if query.until else None,
    )


async def query_via_service(
    client: Client, query: HistoryQuery, *, prefix: str = "pyats.v1", stall: float = 10.0
) -> list[StoredResult]:
    """The requester's own stored results, replayed by the service (no JetStream permissions
    needed). ``NoRespondersError`` when no replica listens."""
    if not query.requester:
        raise HistoryError("the service replays one requester's results: give the requester")
    subjects = Subjects(prefix)
    subject = subjects.history(query.requester)
    records: list[StoredResult] = []
    try:
        async with contextlib.aclosing(streamed_replies(client, subject, encode(history_request(query)), stall)) as got:
            async for msg in got:
                failure = error_of(msg)
                if failure is not None:
                    raise HistoryError(failure)
                if msg.data:
                    records.append(_replayed(msg, subjects))
                    continue
                headers = msg.headers or {}
                if headers.get(TRUNCATED):
                    raise HistoryError(
                        f"more than {headers[TRUNCATED]} stored results match; narrow the query "
                        "(--since, --until, --device, --request-id)"
                    )
                return records
    except TimeoutError:
        raise HistoryError(
            f"no answer from the service within {stall:g}s on {subject}: is a replica running, and may this "
            f"NATS user ask as {query.requester!r}?"
        ) from None
    raise HistoryError(f"the answer on {subject} ended early")


def _replayed(msg: Msg, subjects: Subjects) -> StoredResult:
    headers = msg.headers or {}
    subject = headers.get(SUBJECT, "")
    tokens = subject[len(subjects.prefix) + len(".results.") :].split(".")
    if len(tokens) != 3:
        raise HistoryError(f"the service replayed a result without its subject ({subject!r})")
    result = _decoder.decode(msg.data)
    return StoredResult(
        dt.datetime.fromisoformat(headers[STORED_AT]),
        headers.get(REQUESTER) or tokens[0],
        result.request_id,
        tokens[2],
        subject,
        int(headers.get(SEQUENCE, "0")),
        result,
    )


def per_command(records: Iterable[StoredResult]) -> list[StoredResult]:
    """One record per (device result, command); a failed device with no command stays as is."""
    out: list[StoredResult] = []
    for record in records:
        if not record.result.commands:
            out.append(record)
        out.extend(record.only([command]) for command in record.result.commands)
    return out


def latest(records: Iterable[StoredResult]) -> list[StoredResult]:
    """The newest record per device and command (records narrowed to that one command),
    ordered by device, then command."""
    newest: dict[tuple[str, str], StoredResult] = {}
    for record in per_command(records):
        command = record.result.commands[0].command if record.result.commands else ""
        key = (record.device, normalize_command(command))
        if key not in newest or record.sequence > newest[key].sequence:
            newest[key] = record
    return [newest[key] for key in sorted(newest)]


async def result_at(
    client: Client,
    device: str,
    command: str,
    when: str,
    *,
    requester: str | None = None,
    prefix: str = "pyats.v1",
    stream: str = "PYATS_RESULTS",
) -> StoredResult | None:
    """The result of ``command`` on ``device`` as of ``when``: ``latest`` for the newest, else a
    time (see ``parse_time``) for the newest stored at or before it, or if there is none
    then, the oldest after it."""
    base = HistoryQuery(requester=requester, device=device, command=command)
    if when.strip().lower() in ("latest", "now"):
        found = await query_results(client, base, prefix=prefix, stream=stream)
        return found[-1] if found else None
    moment = parse_time(when)
    before = await query_results(
        client,
        HistoryQuery(requester=requester, device=device, command=command, until=moment),
        prefix=prefix,
        stream=stream,
    )
    if before:
        return before[-1]
    after = await query_results(
        client,
        HistoryQuery(requester=requester, device=device, command=command, since=moment),
        prefix=prefix,
        stream=stream,
    )
    return after[0] if after else None


async def result_of_request(
    client: Client,
    request_id: str,
    *,
    device: str | None = None,
    command: str | None = None,
    requester: str | None = None,
    prefix: str = "pyats.v1",
    stream: str = "PYATS_RESULTS",
) -> StoredResult:
    """The one (device, command) result of a request; ``HistoryError`` when none or several match."""
    found = per_command(
        await query_results(
            client,
            HistoryQuery(requester=requester, request_id=request_id, device=device, command=command),
            prefix=prefix,
            stream=stream,
        )
    )
    found = [r for r in found if r.result.commands]
    if not found:
        raise HistoryError(f"no stored result for request {request_id}" + (f" on {device}" if device else ""))
    choices = {(r.device, r.result.commands[0].command) for r in found}
    if len(choices) > 1:
        listed = ", ".join(f"{d} {c!r}" for d, c in sorted(choices))
        raise HistoryError(f"request {request_id} has several results ({listed}); give --device and --command")
    return found[-1]
