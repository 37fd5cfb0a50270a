"""The results stream denies message deletes and purges; the start-up check warns when it does not."""

from __future__ import annotations

import nats.js.errors
import pytest
from nats.aio.client import Client
from nats.js import api

from service.transport.results import StreamSettings
from service.transport.results import ensure_results_stream as ensure_stream
from service.transport.subjects import Subjects

pytestmark = [pytest.mark.bus, pytest.mark.asyncio]


def settings(name: str) -> StreamSettings:
    return StreamSettings(name=name, max_age=600, max_bytes=-1, replicas=1, duplicate_window=120, storage="memory")


async def test_a_new_results_stream_cannot_be_purged_or_have_messages_deleted(
    client: Client, warnings: list[str]
) -> None:
    subjects = Subjects("guard1.v1")
    await ensure_stream(client.jetstream(), subjects, settings("GUARD1"))
    js = client.jetstream()
    try:
        info = await js.stream_info("GUARD1")
        assert info.config.deny_delete and info.config.deny_purge
        await js.publish("guard1.v1.results.alice.r1.d1", b"{}")
        with pytest.raises(nats.js.errors.APIError, match="not permitted"):
            await js.purge_stream("GUARD1")
        with pytest.raises(nats.js.errors.APIError):
            await js.delete_msg("GUARD1", 1)
        assert (await js.stream_info("GUARD1")).state.messages == 1
        await ensure_stream(js, subjects, settings("GUARD1"))  # a second start keeps them, quietly
        assert warnings == []
    finally:
        await js.delete_stream("GUARD1")


async def test_a_stream_without_the_deny_flags_is_reported_at_start_up(client: Client, warnings: list[str]) -> None:
    js = client.jetstream()
    await js.add_stream(
        api.StreamConfig(name="GUARD2", subjects=["guard2.v1.results.>"], storage=api.StorageType.MEMORY)
    )
    try:
        await ensure_stream(js, Subjects("guard2.v1"), settings("GUARD2"))
        assert len(warnings) == 1
        assert "GUARD2" in warnings[0] and "deny_delete and deny_purge" in warnings[0]
        info = await js.stream_info("GUARD2")
        assert not info.config.deny_delete, "the operator's choice is reported, not overridden"
        # turned on by hand, the warning goes
        await js.update_stream(
            api.StreamConfig(
                name="GUARD2",
                subjects=["guard2.v1.results.>"],
                storage=api.StorageType.MEMORY,
                deny_delete=True,
                deny_purge=True,
            )
        )
        warnings.clear()
        await ensure_stream(js, Subjects("guard2.v1"), settings("GUARD2"))
        assert warnings == []
    finally:
        await js.delete_stream("GUARD2")
