"""Schedules under the shipped ops/nats/auth.conf: a requester manages only its own schedules,
through the service, and can neither write the KV bucket nor schedule as somebody else."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from service.client.execute import ServiceReplyError
from service.client.schedules import manage_schedules
from service.contract.messages import CommandSpec, DeviceSpec, Schedule, ScheduleRequest
from service.devtools.local_server import LocalNatsServer
from tests.bus.shipped_auth import PASSWORDS, auth_server, connect_as
from tests.bus.test_jobs import inventory_file
from tests.conftest import LAB_PASSWORD, ServiceProcess
from tests.waiting import wait_for_async

pytestmark = [pytest.mark.bus, pytest.mark.asyncio]

__all__ = ["auth_server", "connect_as"]  # fixtures


async def test_schedules_run_under_the_shipped_permissions_and_stay_with_their_requester(
    service_factory: Callable[..., ServiceProcess],
    auth_server: LocalNatsServer,
    connect_as: Callable[..., Any],
    lab_device: Callable[[str], dict[str, Any]],
    tmp_path: Path,
) -> None:
    service = service_factory(
        PYATS_NATS_URL=auth_server.url,
        PYATS_NATS_USER="service",
        PYATS_NATS_PASSWORD=PASSWORDS["service"],
        PYATS_INVENTORY_FILE=str(inventory_file(tmp_path, lab_device, ["ios-1"])),
        PYATS_SCHEDULES_MIN_INTERVAL="1",
        LAB_DEVICE_PASSWORD=LAB_PASSWORD,
    ).wait_ready()
    alice = await connect_as("alice")
    schedule = Schedule(
        name="clock", devices=[DeviceSpec(name="ios-1")], commands=[CommandSpec(command="show clock")], interval=1
    )
    added = await manage_schedules(alice.client, "pyats.v1", "alice", ScheduleRequest(op="add", schedule=schedule))
    assert added.schedules[0].schedule.requester == "alice"
    admin = await connect_as("admin")
    js = admin.client.jetstream()

    async def ticks_stored() -> bool:
        info = await js.stream_info("PYATS_RESULTS", subjects_filter="pyats.v1.results.alice.>")
        return sum(1 for subject in info.state.subjects or {} if subject.endswith("_summary")) >= 2

    await wait_for_async(ticks_stored, 30)  # the service user may do all a schedule needs
    assert "permissions violation" not in service.log()
    # bob sees none of alice's schedules and cannot remove them
    bob = await connect_as("bob")
    assert (await manage_schedules(bob.client, "pyats.v1", "bob", ScheduleRequest(op="list"))).schedules == []
    with pytest.raises(ServiceReplyError) as missing:
        await manage_schedules(bob.client, "pyats.v1", "bob", ScheduleRequest(op="rm", name="clock"))
    assert missing.value.reply.error.code == "schedule_not_found"
    # nor ask on alice's subject
    with pytest.raises(TimeoutError):
        await manage_schedules(bob.client, "pyats.v1", "alice", ScheduleRequest(op="list"), timeout=1)
    await bob.wait_error('permissions violation for publish to "pyats.v1.schedules.alice"')
    # nor write the bucket directly (a definition naming alice, run with alice's identity)
    forged = b'{"name":"forged","devices":[{"name":"ios-1"}],"commands":[{"command":"show clock"}],"interval":1}'
    await bob.client.publish("$KV.PYATS_SCHEDULES.alice.forged", forged)
    await bob.wait_error('permissions violation for publish to "$kv.pyats_schedules.alice.forged"')
    keys = await (await js.key_value("PYATS_SCHEDULES")).keys()
    assert keys == ["alice.clock"]
    await manage_schedules(alice.client, "pyats.v1", "alice", ScheduleRequest(op="rm", name="clock"))
    assert alice.errors == []
    service.stop()
