"""The shipped ops/nats/auth.conf: a requester can publish only under its own subject token.

A nats-server runs with that very file (passwords from its environment, as bcrypt hashes)
and the service connects as user ``service``; each requester is a nats-py client.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Callable
from typing import Any

import msgspec
import nats
import pytest

from service.client.execute import execute, execute_streamed
from service.client.history import query_results, query_via_service
from service.client.outputs import OutputFetchError, OutputRoute, fetch_output_from_service
from service.devtools.local_server import LocalNatsServer, nats_server_binary
from service.transport.history import HistoryError, HistoryQuery
from tests.bus.shipped_auth import AUTH_CONF, PASSWORDS, auth_server, auth_service, connect_as, log_records
from tests.conftest import ServiceProcess, wire_device
from tests.waiting import wait_for_async

__all__ = ["auth_server", "auth_service", "connect_as"]  # fixtures, used by name

pytestmark = [pytest.mark.bus, pytest.mark.asyncio]


def one_clock(lab_device: Callable[[str], dict[str, Any]], *names: str) -> dict[str, Any]:
    return {"devices": [wire_device(lab_device(n)) for n in names], "commands": [{"command": "show clock"}]}


async def test_alice_requests_under_her_own_token(
    auth_service: ServiceProcess, connect_as: Callable[..., Any], lab_device: Callable[[str], dict[str, Any]]
) -> None:
    alice = await connect_as("alice")
    response = await execute(alice.client, "pyats.v1.execute.alice", one_clock(lab_device, "iosxe-1"), timeout=60)
    assert response.successful_devices == 1
    assert alice.errors == []
    assert any(r["requester"] == "alice" and "accepted" in r["message"] for r in log_records(auth_service))


async def test_alice_streamed_replies_all_arrive(
    auth_service: ServiceProcess, connect_as: Callable[..., Any], lab_device: Callable[[str], dict[str, Any]]
) -> None:
    alice = await connect_as("alice")
    body = one_clock(lab_device, "iosxe-1", "ios-1", "nxos-1")
    # execute_streamed returns only once the empty end marker has arrived
    outcome = await execute_streamed(alice.client, "pyats.v1.execute.alice", body, stall_timeout=30)
    assert len(outcome.results) == 3 and all(r.success for r in outcome.results)
    assert outcome.summary is not None and outcome.summary.total_devices == 3
    assert alice.errors == []


async def test_alice_cannot_publish_as_bob(
    auth_service: ServiceProcess, connect_as: Callable[..., Any], lab_device: Callable[[str], dict[str, Any]]
) -> None:
    alice = await connect_as("alice")
    body = json.dumps(one_clock(lab_device, "iosxe-1")).encode()
    with pytest.raises(nats.errors.TimeoutError):
        await alice.client.request("pyats.v1.execute.bob", body, timeout=2)
    message = await alice.wait_error("Permissions Violation")
    assert "pyats.v1.execute.bob" in message
    # the jobs subject is guarded the same way
    await alice.client.publish("pyats.v1.jobs.bob", body)
    await alice.wait_error('Permissions Violation for Publish to "pyats.v1.jobs.bob"')
    await asyncio.sleep(0.5)
    assert not [r for r in log_records(auth_service) if r["requester"] == "bob"], (
        "a refused request reached the service"
    )


async def test_reply_subject_cannot_reflect_into_another_requester(
    auth_service: ServiceProcess, connect_as: Callable[..., Any]
) -> None:
    """A reply subject is not checked against the sender's permissions; the service's own deny list stops it."""
    alice = await connect_as("alice")
    await alice.client.publish("pyats.v1.execute.alice", b"{not json", reply="pyats.v1.execute.bob")
    await alice.client.flush()

    def alice_refused() -> bool:
        return any(r["requester"] == "alice" and "refused" in r["message"] for r in log_records(auth_service))

    await wait_for_async(alice_refused, 30)
    records = log_records(auth_service)
    assert not [r for r in records if r["requester"] == "bob"]


async def test_bob_cannot_subscribe_to_service_subjects_or_other_inboxes(
    auth_service: ServiceProcess, connect_as: Callable[..., Any]
) -> None:
    bob = await connect_as("bob")
    for subject in ("pyats.v1.execute.>", "pyats.v1.execute.alice", "$SRV.PING.pyats-ro", "_INBOX.>", "_INBOX.alice.>"):
        await bob.client.subscribe(subject)
        await bob.wait_error(f'Permissions Violation for Subscription to "{subject}"')


async def test_default_inbox_prefix_is_refused(auth_service: ServiceProcess, connect_as: Callable[..., Any]) -> None:
    """Requesters must use their own inbox prefix: the shared _INBOX.> would expose every reply."""
    bob = await connect_as("bob", inbox_prefix="_INBOX")
    with pytest.raises(nats.errors.Error):
        await bob.client.request("$SRV.PING.pyats-ro", b"", timeout=2)
    await bob.wait_error("Permissions Violation for Subscription")


async def test_requester_can_ping_the_service(auth_service: ServiceProcess, connect_as: Callable[..., Any]) -> None:
    bob = await connect_as("bob")
    reply = await bob.client.request("$SRV.PING.pyats-ro", b"", timeout=5)
    assert json.loads(reply.data)["name"] == "pyats-ro"


async def test_mcp_user_asks_only_as_itself(
    auth_service: ServiceProcess, connect_as: Callable[..., Any], lab_device: Callable[[str], dict[str, Any]]
) -> None:
    """The MCP server's user is a requester like alice: its own token, its own inbox, and the
    discovery its status tool needs ($SRV.STATS); nothing of another requester's, no jobs."""
    mcp = await connect_as("mcp")
    response = await execute(mcp.client, "pyats.v1.execute.mcp", one_clock(lab_device, "iosxe-1"), timeout=60)
    assert response.successful_devices == 1
    stats = await mcp.client.request("$SRV.STATS.pyats-ro", b"", timeout=5)
    assert json.loads(stats.data)["name"] == "pyats-ro"
    assert mcp.errors == []
    body = json.dumps(one_clock(lab_device, "iosxe-1")).encode()
    for subject in ("pyats.v1.execute.alice", "pyats.v1.jobs.mcp", "pyats.v1.history.alice"):
        await mcp.client.publish(subject, body)
        await mcp.wait_error(f'Permissions Violation for Publish to "{subject}"')
    for subject in ("_INBOX.alice.>", "pyats.v1.results.mcp.>", "pyats.v1.execute.>"):
        await mcp.client.subscribe(subject)
        await mcp.wait_error(f'Permissions Violation for Subscription to "{subject}"')


async def test_admin_has_full_access(auth_service: ServiceProcess, connect_as: Callable[..., Any]) -> None:
    admin = await connect_as("admin", inbox_prefix="_INBOX")
    reply = await admin.client.request("$SRV.PING", b"", timeout=5)
    assert json.loads(reply.data)["name"] == "pyats-ro"
    await admin.client.subscribe("pyats.v1.execute.>")
    await admin.client.flush()
    assert admin.errors == []


def check_shipped_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [nats_server_binary(), "-t", "-c", str(AUTH_CONF.parent / "nats-server.conf")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("missing", [None, "bob"])
async def test_shipped_server_config_needs_every_password(missing: str | None) -> None:
    """ops/nats/nats-server.conf parses with all passwords set and refuses to start without one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYATS_NATS_")}
    for user in PASSWORDS:
        if user != missing:
            env[f"PYATS_NATS_{user.upper()}_PASSWORD"] = '"$2b$04$placeholderplaceholderpl"'
    checked = check_shipped_config(env)
    if missing is None:
        assert checked.returncode == 0, checked.stderr
    else:
        assert checked.returncode != 0
        assert f"PYATS_NATS_{missing.upper()}_PASSWORD" in checked.stdout + checked.stderr


async def test_the_cli_works_under_the_shipped_permissions(
    auth_service: ServiceProcess, auth_server: LocalNatsServer, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    import os
    import sys

    from tests.conftest import LAB_PASSWORD

    device = lab_device("iosxe-1")
    env = {
        **os.environ,
        "PYATS_DEVICE_PASSWORD": LAB_PASSWORD,
        "PYATS_NATS_PASSWORD": PASSWORDS["alice"],
        "COLUMNS": "200",
    }
    result = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "service",
            "request",
            "--nats-url",
            auth_server.url,
            "--nats-user",
            "alice",
            "--inbox-prefix",
            "_INBOX.alice",
            "--requester",
            "alice",
            "-u",
            "admin",
            "-d",
            f"{device['host']}:{device['port']}",
            "-c",
            "show clock",
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["summary"]["successful_devices"] == 1


async def test_a_requester_gets_its_large_outputs_through_the_service_and_no_one_else_s(
    auth_service: ServiceProcess, connect_as: Callable[..., Any], lab_device: Callable[[str], dict[str, Any]]
) -> None:
    alice = await connect_as("alice")
    body = {"devices": [wire_device(lab_device("bulky"))], "commands": [{"command": "show ip interface brief"}]}
    response = await execute(alice.client, "pyats.v1.execute.alice", body, timeout=120)
    [command] = response.results[0].commands
    ref = command.output_ref
    assert command.success and ref is not None, command
    assert command.output is not None and len(command.output.encode()) == ref.size  # fetched, sha256 checked
    assert alice.errors == []  # no JetStream permission was needed

    bob = await connect_as("bob")
    with pytest.raises(OutputFetchError, match="output_not_found"):
        await fetch_output_from_service(bob.client, OutputRoute("pyats.v1", "bob"), ref)
    for name in (ref.name.replace(ref.name.split("/")[1], "*"), "../x/0", ">"):
        forged = msgspec.structs.replace(ref, name=name)
        with pytest.raises(OutputFetchError, match="output_not_found"):
            await fetch_output_from_service(bob.client, OutputRoute("pyats.v1", "bob"), forged)
    with pytest.raises(OutputFetchError, match="no answer"):  # and bob may not ask as alice
        await fetch_output_from_service(bob.client, OutputRoute("pyats.v1", "alice"), ref, stall=2)
    await bob.wait_error("permissions violation")


async def test_a_requester_reads_its_own_history_and_not_another_s(
    auth_service: ServiceProcess, connect_as: Callable[..., Any], lab_device: Callable[[str], dict[str, Any]]
) -> None:
    alice = await connect_as("alice")
    response = await execute(alice.client, "pyats.v1.execute.alice", one_clock(lab_device, "ios-1"), timeout=60)
    records = await query_results(alice.client, HistoryQuery(requester="alice", request_id=response.request_id))
    assert [r.result.hostname for r in records] == [response.results[0].hostname]
    assert [r.requester for r in records] == ["alice"]
    assert alice.errors == []  # replayed by the service: alice needs no JetStream permission
    with pytest.raises(HistoryError, match="may this NATS user ask as 'bob'"):
        await query_via_service(alice.client, HistoryQuery(requester="bob"), stall=2)
    await alice.wait_error('permissions violation for publish to "pyats.v1.history.bob"')
    with pytest.raises(HistoryError, match="may not read"):
        await query_results(alice.client, HistoryQuery())  # every requester's results: refused too


async def test_change_events_reach_their_requester_only_under_the_shipped_permissions(
    auth_service: ServiceProcess, connect_as: Callable[..., Any], lab_device: Callable[[str], dict[str, Any]]
) -> None:
    """The service keeps baselines and publishes change events with its shipped permissions;
    alice receives her own events and may not subscribe to bob's."""
    alice = await connect_as("alice")
    events: list[dict[str, Any]] = []

    async def collect(msg: Any) -> None:
        events.append(json.loads(msg.data))

    await alice.client.subscribe("pyats.v1.changes.alice.>", cb=collect)
    body = {
        "devices": [wire_device(lab_device("chg-auth"))],
        "commands": [{"command": "show ip bgp summary"}],
        "output_format": "parsed",
    }
    for _ in range(2):  # a baseline, then the lab's second answer: one neighbour went Idle
        response = await execute(alice.client, "pyats.v1.execute.alice", body, timeout=60)
        assert response.successful_devices == 1
    await wait_for_async(lambda: events, timeout=30, what="alice's change event")
    (event,) = events
    assert event["requester"] == "alice" and event["command"] == "show ip bgp summary"
    assert event["kind"] == "parsed" and [change["new"] for change in event["changed"]] == ["Idle"]
    assert alice.errors == []
    await alice.client.subscribe("pyats.v1.changes.bob.>")
    await alice.wait_error('Permissions Violation for Subscription to "pyats.v1.changes.bob.>"')
    assert "not available" not in auth_service.log()  # JetStream answered every change-related call
