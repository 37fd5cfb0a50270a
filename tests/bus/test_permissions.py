"""The shipped ops/nats/auth.conf: a requester can publish only under its own subject token.

A nats-server runs with that very file (passwords from its environment, as bcrypt hashes)
and the service connects as user ``service``; each requester is a nats-py client.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import bcrypt
import msgspec
import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client

from service.transport.client import execute, execute_streamed
from service.transport.history import HistoryError, HistoryQuery, query_results
from service.transport.large_outputs import (
    OutputFetchError,
    OutputRoute,
    fetch_output_from_service,
)
from service.transport.local_server import LocalNatsServer, nats_server_binary
from tests.conftest import ServiceProcess, wire_device

pytestmark = [pytest.mark.bus, pytest.mark.asyncio]

AUTH_CONF = Path(__file__).resolve().parents[2] / "ops" / "nats" / "auth.conf"
PASSWORDS = {
    "service": "svc-pass-4Kq",
    "admin": "admin-pass-8Rw",
    "alice": "alice-pass-2Lm",
    "bob": "bob-pass-6Tz",
}


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNatsServer]:
    """nats-server with the shipped auth.conf; the env holds bcrypt hashes, quoted for the config parser."""
    folder = tmp_path_factory.mktemp("nats-auth")
    shutil.copy(AUTH_CONF, folder / "auth.conf")
    (folder / "nats-server.conf").write_text("include ./auth.conf\n")
    server = LocalNatsServer(folder / "data", config_file=folder / "nats-server.conf")
    with pytest.MonkeyPatch.context() as env:
        for user, password in PASSWORDS.items():
            hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
            env.setenv(f"PYATS_NATS_{user.upper()}_PASSWORD", f'"{hashed}"')
        server.start()  # the server reads its environment once, at start
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def auth_service(service_factory: Callable[..., ServiceProcess], auth_server: LocalNatsServer) -> ServiceProcess:
    return service_factory(
        PYATS_NATS_URL=auth_server.url,
        PYATS_NATS_USER="service",
        PYATS_NATS_PASSWORD=PASSWORDS["service"],
        PYATS_LOG_FORMAT="json",
    ).wait_ready()


class Requester:
    """A connection as one user, keeping the errors the server reports to it."""

    def __init__(self, user: str) -> None:
        self.user = user
        self.errors: list[Exception] = []
        self.client: Client | None = None

    async def connect(self, url: str, inbox_prefix: str | None = None) -> Client:
        async def on_error(exc: Exception) -> None:
            self.errors.append(exc)

        self.client = await nats.connect(
            url,
            user=self.user,
            password=PASSWORDS[self.user],
            inbox_prefix=inbox_prefix or f"_INBOX.{self.user}",
            error_cb=on_error,
            allow_reconnect=False,
        )
        return self.client

    async def wait_error(self, text: str, timeout: float = 5.0) -> str:
        for _ in range(int(timeout / 0.05)):
            for exc in self.errors:
                if text.lower() in str(exc).lower():  # nats-py lower-cases the server's -ERR
                    return str(exc)
            await asyncio.sleep(0.05)
        raise AssertionError(f"no error with {text!r} reported to {self.user}: {self.errors}")


@pytest_asyncio.fixture
async def connect_as(auth_server: LocalNatsServer) -> AsyncIterator[Callable[..., Any]]:
    opened: list[Client] = []

    async def connect(user: str, inbox_prefix: str | None = None) -> Requester:
        requester = Requester(user)
        opened.append(await requester.connect(auth_server.url, inbox_prefix))
        return requester

    try:
        yield connect
    finally:
        for client in opened:
            await client.close()


def log_records(service: ServiceProcess) -> list[dict[str, Any]]:
    records = []
    for line in service.log().splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


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
    await asyncio.sleep(1.0)
    records = log_records(auth_service)
    assert any(r["requester"] == "alice" and "refused" in r["message"] for r in records)
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
    assert alice.errors == []
    with pytest.raises(HistoryError, match="--requester"):
        await query_results(alice.client, HistoryQuery(requester="bob"))
    await alice.wait_error("permissions violation")
    with pytest.raises(HistoryError, match="may not read"):
        await query_results(alice.client, HistoryQuery())  # every requester's results: refused too
