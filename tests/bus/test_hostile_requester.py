"""Attacks of a hostile requester under the shipped ops/nats/auth.conf (issue 10).

alice attacks; bob is the victim. After each attack the admin user reads back the
results stream, bob's results and bob's outputs, which must be untouched. Every subject
alice names as a reply or notify is watched by the admin: the service must publish
nothing there.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import random
from collections.abc import Callable
from typing import Any

import msgspec
import nats.errors
import nats.js.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import api

from service.client.execute import execute
from service.client.history import query_results
from service.client.outputs import OutputFetchError, OutputRoute, fetch_output_from_service
from service.contract.messages import DeviceResult
from service.transport.history import HistoryQuery
from tests.bus.shipped_auth import PASSWORDS, Requester, auth_server, auth_service, connect_as, log_records
from tests.conftest import ServiceProcess, wire_device
from tests.waiting import wait_for_async

__all__ = ["auth_server", "auth_service", "connect_as"]  # fixtures, used by name

pytestmark = [pytest.mark.bus, pytest.mark.asyncio]

STREAM = "PYATS_RESULTS"
ConnectAs = Callable[..., Any]


def clock(lab_device: Callable[[str], dict[str, Any]], name: str = "ios-1", **extra: Any) -> dict[str, Any]:
    return {"devices": [wire_device(lab_device(name))], "commands": [{"command": "show clock"}], **extra}


async def stored_count(admin: Client, subjects: str = "pyats.v1.results.>") -> int:
    info = await admin.jetstream().stream_info(STREAM, subjects_filter=subjects)
    return sum((info.state.subjects or {}).values())


class Watch:
    """The admin's view of every message on the bus, to prove nothing went where alice pointed."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def start(self, admin: Client) -> None:
        async def record(msg: Msg) -> None:
            self.seen.append(msg.subject)

        await admin.subscribe(">", cb=record)
        await admin.flush()

    def hits(self, targets: set[str]) -> list[str]:
        return [subject for subject in self.seen if subject in targets]


def forbidden_replies(bob_result_subject: str, seed: int = 10) -> list[str]:
    """Named attacks, then random subjects made of tokens an attacker would try."""
    named = [
        f"$JS.API.STREAM.PURGE.{STREAM}",
        f"$JS.API.STREAM.DELETE.{STREAM}",
        f"$JS.API.STREAM.MSG.DELETE.{STREAM}",
        f"$JS.API.CONSUMER.DELETE.{STREAM}.anything",
        "$JS.API.STREAM.PURGE.PYATS_JOBS",
        bob_result_subject,
        "pyats.v1.results.alice.forged.device",  # even alice's own results subject is not an inbox
        "pyats.v1.notify.bob.done",
        "pyats.v1.execute.bob",
        "_INBOX.bob.stolen",
        "_INBOX.alicebob.x",
        "_INBOX.stranger",
        "_R_.abc.def",
        "$SRV.PING",
        "$O.PYATS_OUTPUTS.M.x",
    ]
    rng = random.Random(seed)
    tokens = ["_INBOX", "alice", "bob", "$JS", "API", "STREAM", "PURGE", STREAM, "pyats", "v1", "results", "x"]
    generated = [".".join(rng.choice(tokens) for _ in range(rng.randint(1, 6))) for _ in range(40)]
    return list(dict.fromkeys(s for s in named + generated if not s.startswith("_INBOX.alice.")))


async def test_reply_subjects_outside_the_requester_inbox_reach_nothing(
    auth_service: ServiceProcess, connect_as: ConnectAs, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    alice: Requester = await connect_as("alice")
    bob: Requester = await connect_as("bob")
    admin: Requester = await connect_as("admin", inbox_prefix="_INBOX.admin")
    done = await execute(bob.client, "pyats.v1.execute.bob", clock(lab_device), timeout=60)
    port = lab_device("ios-1")["port"]
    bob_subject = f"pyats.v1.results.bob.{done.request_id}.127_0_0_1-p{port}"
    before_all, before_bob = (
        await stored_count(admin.client),
        await stored_count(admin.client, "pyats.v1.results.bob.>"),
    )
    assert before_bob == 2  # the device result and the summary
    watch = Watch()
    await watch.start(admin.client)
    accepted_before = sum("accepted" in r["message"] for r in log_records(auth_service) if r["requester"] == "alice")

    targets = forbidden_replies(bob_subject)
    valid, streamed = json.dumps(clock(lab_device)).encode(), json.dumps(clock(lab_device, stream=True)).encode()
    requests = [
        ("pyats.v1.execute.alice", streamed),
        ("pyats.v1.execute.alice", valid),
        ("pyats.v1.execute.alice", b"{not json"),
        ("pyats.v1.outputs.alice", b'{"bucket": "PYATS_OUTPUTS", "name": "x", "size": 1, "sha256": "0"}'),
        ("pyats.v1.history.alice", b"{}"),
    ]
    # discovery requests carry no requester: their public answer may go to any inbox, nowhere else
    discovery = [("$SRV.PING.pyats-ro", b""), ("$SRV.INFO.pyats-ro", b"")]
    outside_inboxes = [t for t in targets if not t.startswith("_INBOX.")]
    for reply in targets:
        for subject, body in requests + (discovery if reply in outside_inboxes else []):
            await alice.client.publish(subject, body, reply=reply)
    await alice.client.flush()
    # nats-server itself never delivered the requests whose reply is its reserved _R_ prefix
    delivered = [t for t in targets if not t.startswith("_R_.")]

    def unlogged(records: list[dict[str, Any]]) -> list[str]:
        """Forbidden reply subjects not yet refused once per request."""
        refused = [r["message"] for r in records if "reply_forbidden" in r["message"] and r["requester"] == "alice"]
        return [t for t in delivered if sum(f"reply subject {t!r}:" in m for m in refused) != len(requests)]

    def dropped(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in records if r["message"].startswith("discovery request on")]

    # every request was handled (and logged) before anything is checked for what it did not do
    await wait_for_async(lambda: not unlogged(log_records(auth_service)), 30)
    discovered = len(discovery) * len([t for t in outside_inboxes if t in delivered])
    await wait_for_async(lambda: len(dropped(log_records(auth_service))) >= discovered, 30)
    await admin.client.flush()

    assert watch.hits(set(targets)) == [], "the service published where alice pointed it"
    assert len(watch.seen) > 0  # the watch works: it saw alice's own requests
    info = await admin.client.jetstream().stream_info(STREAM)
    assert info.config.deny_delete and info.config.deny_purge
    assert await stored_count(admin.client) == before_all, "no device ran, nothing was stored or erased"
    assert await stored_count(admin.client, "pyats.v1.results.bob.>") == before_bob
    records = log_records(auth_service)
    assert unlogged(records) == [], "each forbidden reply subject was refused once per request"
    assert len(dropped(records)) == discovered
    accepted_after = sum("accepted" in r["message"] for r in records if r["requester"] == "alice")
    assert accepted_after == accepted_before, "a request with a forbidden reply subject reached the devices"
    # bob's history is still only his own request
    history = await query_results(bob.client, HistoryQuery(requester="bob"))
    assert [r.request_id for r in history] == [done.request_id]


async def test_a_reply_under_the_requester_inbox_still_works(
    auth_service: ServiceProcess, connect_as: ConnectAs, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    alice: Requester = await connect_as("alice")
    reply = await alice.client.request("$SRV.PING.pyats-ro", b"", timeout=5)
    assert json.loads(reply.data)["name"] == "pyats-ro"
    response = await execute(alice.client, "pyats.v1.execute.alice", clock(lab_device), timeout=60)
    assert response.successful_devices == 1


async def test_a_job_notify_goes_only_to_the_requester_s_own_subjects(
    auth_service: ServiceProcess, connect_as: ConnectAs
) -> None:
    alice: Requester = await connect_as("alice")
    admin: Requester = await connect_as("admin", inbox_prefix="_INBOX.admin")
    watch = Watch()
    await watch.start(admin.client)
    mine: asyncio.Queue[Msg] = asyncio.Queue()
    await alice.client.subscribe("pyats.v1.notify.alice.>", cb=mine.put)
    before = await stored_count(admin.client, "pyats.v1.results.bob.>")
    # inline devices are refused for jobs: the refusal is what a good notify subject receives
    job = {"devices": [{"hostname": "10.0.0.1", "username": "u", "password": "p", "os": "iosxe"}]}
    job["commands"] = [{"command": "show clock"}]
    forged = "pyats.v1.results.bob.job-forged.device"
    for notify in (forged, "_INBOX.bob.x", "$JS.API.STREAM.PURGE.PYATS_RESULTS"):
        await alice.client.publish("pyats.v1.jobs.alice", json.dumps({**job, "notify": notify}).encode())
    await alice.client.publish(
        "pyats.v1.jobs.alice", json.dumps({**job, "notify": "pyats.v1.notify.alice.n1"}).encode()
    )
    notice = await asyncio.wait_for(mine.get(), timeout=30)
    assert notice.subject == "pyats.v1.notify.alice.n1"
    assert json.loads(notice.data)["error"]["code"] == "feature_disabled"  # inline credentials in a job

    def refusals() -> list[dict[str, Any]]:
        return [r for r in log_records(auth_service) if "reply_forbidden" in r["message"] and "notify" in r["message"]]

    await wait_for_async(lambda: len(refusals()) >= 3, 30)  # the three forged notify subjects were handled
    await admin.client.flush()
    assert watch.hits({forged, "_INBOX.bob.x", "$JS.API.STREAM.PURGE.PYATS_RESULTS"}) == []
    assert await stored_count(admin.client, "pyats.v1.results.bob.>") == before


async def test_reusing_another_requester_s_request_id_reaches_none_of_its_outputs(
    auth_service: ServiceProcess, connect_as: ConnectAs, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    alice: Requester = await connect_as("alice")
    bob: Requester = await connect_as("bob")
    admin: Requester = await connect_as("admin", inbox_prefix="_INBOX.admin")
    body = {"devices": [wire_device(lab_device("bulky"))], "commands": [{"command": "show ip interface brief"}]}
    shared = {**body, "request_id": "shared-id-1"}
    bobs = await execute(bob.client, "pyats.v1.execute.bob", shared, timeout=120)
    alices = await execute(alice.client, "pyats.v1.execute.alice", shared, timeout=120)
    bob_ref, alice_ref = bobs.results[0].commands[0].output_ref, alices.results[0].commands[0].output_ref
    assert bob_ref is not None and alice_ref is not None
    assert bob_ref.name.startswith("bob/shared-id-1/") and alice_ref.name.startswith("alice/shared-id-1/")
    # both results are stored: alice's copy of the id neither replaced nor suppressed bob's
    assert await stored_count(admin.client, "pyats.v1.results.bob.shared-id-1.>") == 2
    assert await stored_count(admin.client, "pyats.v1.results.alice.shared-id-1.>") == 2

    for ref in (bob_ref, msgspec.structs.replace(alice_ref, name=bob_ref.name.replace("bob/", "alice/", 1) + "9")):
        with pytest.raises(OutputFetchError, match="output_not_found"):
            await fetch_output_from_service(alice.client, OutputRoute("pyats.v1", "alice"), ref)
    # a ref of her own naming a result of hers, but not an output that result holds
    stray = msgspec.structs.replace(alice_ref, name=alice_ref.name.rsplit("/", 1)[0] + "/7")
    with pytest.raises(OutputFetchError, match="output_not_found"):
        await fetch_output_from_service(alice.client, OutputRoute("pyats.v1", "alice"), stray)

    # bob's object is intact, and bob still gets it
    store = await admin.client.jetstream().object_store("PYATS_OUTPUTS")
    sink = io.BytesIO()
    await store.get(bob_ref.name, writeinto=sink)
    assert hashlib.sha256(sink.getvalue()).hexdigest() == bob_ref.sha256
    text = await fetch_output_from_service(bob.client, OutputRoute("pyats.v1", "bob"), bob_ref)
    assert len(text.encode()) == bob_ref.size


async def test_requesters_cannot_touch_consumers_or_read_the_stream(
    auth_service: ServiceProcess, connect_as: ConnectAs, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    bob: Requester = await connect_as("bob")
    alice: Requester = await connect_as("alice")
    admin: Requester = await connect_as("admin", inbox_prefix="_INBOX.admin")
    await execute(bob.client, "pyats.v1.execute.bob", clock(lab_device, "iosxe-1"), timeout=60)
    js = admin.client.jetstream()
    name = "watch-bob"
    await js.add_consumer(
        STREAM,
        api.ConsumerConfig(durable_name=name, filter_subject="pyats.v1.results.bob.>", ack_policy=api.AckPolicy.NONE),
    )
    try:
        attacks = [
            f"$JS.API.CONSUMER.INFO.{STREAM}.{name}",
            f"$JS.API.CONSUMER.MSG.NEXT.{STREAM}.{name}",
            f"$JS.API.CONSUMER.DELETE.{STREAM}.{name}",
            f"$JS.API.CONSUMER.CREATE.{STREAM}.mine.pyats.v1.results.bob.x",
            f"$JS.API.CONSUMER.CREATE.{STREAM}.mine.pyats.v1.results.alice.x",
            f"$JS.API.CONSUMER.CREATE.{STREAM}",
            f"$JS.API.STREAM.INFO.{STREAM}",
            f"$JS.API.STREAM.MSG.GET.{STREAM}",
            f"$JS.API.DIRECT.GET.{STREAM}",
            f"$JS.API.STREAM.PURGE.{STREAM}",
            f"$JS.API.STREAM.DELETE.{STREAM}",
            "$JS.API.CONSUMER.LIST." + STREAM,
        ]
        for subject in attacks:
            with pytest.raises(nats.errors.Error):  # refused by the server: no answer
                await alice.client.request(subject, b'{"batch": 5}', timeout=0.5)
            await alice.wait_error(f'permissions violation for publish to "{subject.lower()}"')
        info = await js.consumer_info(STREAM, name)
        assert info.delivered.stream_seq == 0, "nobody pulled from bob's consumer"
        assert await stored_count(admin.client, "pyats.v1.results.bob.>") >= 2
    finally:
        await js.delete_consumer(STREAM, name)


async def test_a_forged_request_info_header_does_not_make_alice_bob(
    auth_service: ServiceProcess, connect_as: ConnectAs, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    """Within one account nats-server passes a client's own Nats-Request-Info through untouched."""
    alice: Requester = await connect_as("alice")
    admin: Requester = await connect_as("admin", inbox_prefix="_INBOX.admin")
    before = await stored_count(admin.client, "pyats.v1.results.bob.>")
    for info in ('{"acc": "bob"}', '{"acc": "$G", "user": "bob"}'):
        reply = await alice.client.request(
            "pyats.v1.execute.alice",
            json.dumps(clock(lab_device, request_id="forged-info")).encode(),
            headers={"Nats-Request-Info": info},
            timeout=60,
        )
        assert json.loads(reply.data)["successful_devices"] == 1
    assert await stored_count(admin.client, "pyats.v1.results.bob.>") == before
    assert await stored_count(admin.client, "pyats.v1.results.alice.forged-info.>") == 2


async def test_the_service_user_itself_cannot_erase_results(
    auth_service: ServiceProcess, connect_as: ConnectAs
) -> None:
    """The second wall: even a bug in the service could not purge, delete or rewrite history."""
    service = await connect_as("service", inbox_prefix="_INBOX.svc-test")
    admin: Requester = await connect_as("admin", inbox_prefix="_INBOX.admin")
    before = await stored_count(admin.client)
    js = service.client.jetstream()
    for attempt in (
        js.purge_stream(STREAM),
        js.delete_stream(STREAM),
        js.delete_msg(STREAM, 1),
        js.purge_stream("PYATS_JOBS"),
        js.delete_stream("PYATS_JOBS"),
    ):
        with pytest.raises((TimeoutError, nats.errors.Error)):
            await asyncio.wait_for(attempt, timeout=2)
    await service.wait_error("permissions violation for publish to")
    await service.client.publish("pyats.v1.execute.bob", b"{}")
    await service.wait_error('permissions violation for publish to "pyats.v1.execute.bob"')
    assert await stored_count(admin.client) == before
    # the deny flags hold even for a user the permissions would let through
    with pytest.raises(nats.js.errors.Error, match="not permitted"):
        await admin.client.jetstream().purge_stream(STREAM)


async def test_history_through_the_service_is_the_requester_s_own(
    auth_service: ServiceProcess, connect_as: ConnectAs, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    alice: Requester = await connect_as("alice")
    bob: Requester = await connect_as("bob")
    mine = await execute(alice.client, "pyats.v1.execute.alice", clock(lab_device, "nxos-1"), timeout=60)
    await execute(bob.client, "pyats.v1.execute.bob", clock(lab_device, "nxos-1"), timeout=60)
    records = await query_results(alice.client, HistoryQuery(requester="alice", device=None, command="show clock"))
    assert records and {r.requester for r in records} == {"alice"}
    assert mine.request_id in {r.request_id for r in records}
    assert all(isinstance(r.result, DeviceResult) for r in records)
    assert alice.errors == []
    assert PASSWORDS["alice"] not in json.dumps([r.as_dict() for r in records])
