"""Large outputs fetched back by a requester, verified against their size and sha256.

A requester asks the service on ``<prefix>.outputs.<requester>`` (no JetStream permissions
needed); a client with read access to the bucket (an operator) can read it directly.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from dataclasses import dataclass

import msgspec
import nats.errors
from nats.aio.client import Client

from service.client.inbox import error_of, streamed_replies
from service.contract.codec import encode
from service.contract.messages import DeviceResult, OutputRef
from service.transport.subjects import Subjects


class OutputMismatchError(Exception):
    """A fetched output does not match its reference."""


class OutputFetchError(Exception):
    """The service would not or could not return an output."""


@dataclass(frozen=True, slots=True)
class OutputRoute:
    """Ask the service on ``<prefix>.outputs.<requester>`` (no JetStream permissions needed)."""

    prefix: str
    requester: str

    @classmethod
    def of_execute_subject(cls, subject: str) -> OutputRoute | None:
        """``pyats.v1.execute.alice`` -> prefix ``pyats.v1``, requester ``alice``."""
        prefix, found, requester = subject.rpartition(".execute.")
        return cls(prefix, requester) if found and prefix and requester else None


def _verified(data: bytes | memoryview, ref: OutputRef) -> str:
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != ref.size or digest != ref.sha256:
        raise OutputMismatchError(f"{ref.bucket}/{ref.name}: got {len(data)} bytes sha256 {digest}, want {ref.size}")
    return str(data, "utf-8")


async def fetch_output(client: Client, ref: OutputRef) -> str:
    """The referenced output read from the bucket directly, verified against its size and sha256."""
    store = await client.jetstream().object_store(ref.bucket)
    sink = io.BytesIO()
    await store.get(ref.name, writeinto=sink)
    return _verified(sink.getbuffer(), ref)


async def fetch_output_from_service(client: Client, route: OutputRoute, ref: OutputRef, stall: float = 30.0) -> str:
    """The referenced output streamed by the service (chunks, then an empty end marker), verified."""
    buffer = bytearray()
    subject = Subjects(route.prefix).outputs(route.requester)
    try:
        async with contextlib.aclosing(streamed_replies(client, subject, encode(ref), stall)) as replies:
            async for msg in replies:
                failure = error_of(msg)
                if failure is not None:
                    raise OutputFetchError(failure)
                if not msg.data:
                    return _verified(memoryview(buffer), ref)
                buffer += msg.data
    except TimeoutError:
        raise OutputFetchError(f"no answer from the service for output {ref.name!r} within {stall:g}s") from None
    raise OutputFetchError(f"the answer for output {ref.name!r} ended early")


async def resolve_outputs(client: Client, result: DeviceResult, route: OutputRoute | None = None) -> DeviceResult:
    """``result`` with every ``output_ref`` fetched back into ``output`` (the ref is kept).

    With a ``route`` the service is asked (what a requester may do under the shipped NATS
    permissions); when no replica answers, the bucket is read directly.
    """
    if not any(c.output_ref is not None for c in result.commands):
        return result
    commands = []
    for command in result.commands:
        if command.output_ref is not None and command.output is None:
            text = None
            if route is not None:
                try:
                    text = await fetch_output_from_service(client, route, command.output_ref)
                except nats.errors.NoRespondersError:
                    text = None
            if text is None:
                text = await fetch_output(client, command.output_ref)
            commands.append(msgspec.structs.replace(command, output=text))
        else:
            commands.append(command)
    return msgspec.structs.replace(result, commands=commands)
