"""The requester's side of ``<prefix>.schedules.<requester>``: manage its own schedules."""

from __future__ import annotations

import msgspec
import nats.errors
from nats.aio.client import Client

from service.client.execute import ServiceReplyError
from service.client.inbox import MESSAGE_KIND
from service.contract.messages import ErrorReply, ScheduleReply, ScheduleRequest
from service.transport.subjects import Subjects


async def manage_schedules(
    client: Client, prefix: str, requester: str, request: ScheduleRequest, timeout: float = 10.0
) -> ScheduleReply:
    """Send one management request; ``ServiceReplyError`` carries a refusal's structured error,
    ``TimeoutError`` says no replica answered (none running, or schedules off)."""
    subject = Subjects(prefix).schedules(requester)
    try:
        message = await client.request(subject, msgspec.json.encode(request), timeout=timeout)
    except nats.errors.NoRespondersError:
        raise TimeoutError(f"no replica answers on {subject}") from None
    if message.headers and message.headers.get(MESSAGE_KIND) == "error":
        raise ServiceReplyError(msgspec.json.decode(message.data, type=ErrorReply))
    return msgspec.json.decode(message.data, type=ScheduleReply)
