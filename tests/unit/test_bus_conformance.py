"""What the service really puts on the bus, checked against ``schemas/asyncapi.yaml``.

The real nats.micro endpoint, reply sink, result publisher and job worker run against a
fake NATS client that records subscriptions and publishes. Every subscription must be a
documented channel, and every message sent must be one the document describes on that
channel: its headers against the message's header schema, its body against the payload
schema. So the document cannot promise a header, a subject or a queue group the code
does not use, and the code cannot send what the document does not describe.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import nats.js.errors
import pytest
import pytest_asyncio
import yaml
from nats.js import api
from nats.nuid import NUID

from service.config import Settings
from service.contract.errors import ErrorCode
from service.domain.inventory import Inventory, InventoryDevice
from service.domain.models import DeviceOS, Secret, Timeouts
from service.domain.policy import Limits
from service.domain.replies import ReplyRule
from service.observability.metrics import ServiceMetrics
from service.pipeline.handler import RequestHandler
from service.pipeline.result_parser import ResultParser
from service.pipeline.runner import DeviceRunner
from service.pipeline.scheduler import Scheduler, SchedulerLimits
from service.pipeline.session_pool import SessionPool
from service.transport.endpoint import MESSAGE_KIND_HEADER, REQUEST_ID_HEADER, ExecuteService
from service.transport.jobs import JobSettings, JobWorker
from service.transport.results import NatsResultPublisher
from service.transport.subjects import Subjects
from tests.unit.fakes import FakeDevice, FakeParser, FakeSessionFactory
from tests.unit.test_contract_docs import matches

pytestmark = [pytest.mark.unit, pytest.mark.asyncio]

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
INBOX = "_INBOX.conformance"
NOTIFY = "pyats.v1.notify.alice.done"
DEFAULTS = Settings.defaults()


# the document ---------------------------------------------------------------------------


class Document:
    def __init__(self) -> None:
        self.doc: dict[str, Any] = yaml.safe_load((SCHEMAS / "asyncapi.yaml").read_text())

    def resolve(self, ref: str) -> dict[str, Any]:
        node: Any = self.doc
        for token in ref.removeprefix("#/").split("/"):
            node = node[token]
        return self.resolve(node["$ref"]) if "$ref" in node else node

    def channel(self, name: str) -> dict[str, Any]:
        return self.resolve(f"#/channels/{name}")

    def channel_for(self, subject: str) -> str:
        """The documented channel whose address matches a subject; a literal token wins over
        a parameter (``..._summary`` is the summary, not a device named ``_summary``)."""
        found = sorted(
            (channel["address"].count("{"), name)
            for name, channel in self.doc["channels"].items()
            if channel["address"] is not None and re.fullmatch(_address_pattern(channel["address"]), subject)
        )
        assert found, f"no documented channel for {subject}"
        assert len(found) == 1 or found[0][0] < found[1][0], f"{subject} matches channels {found}"
        return found[0][1]

    def messages(self, operation: str, reply: bool = False) -> list[dict[str, Any]]:
        part = self.doc["operations"][operation]
        part = part["reply"] if reply else part
        return [self.resolve(message["$ref"]) for message in part["messages"]]

    def check(self, candidates: list[dict[str, Any]], sent: Published) -> dict[str, Any]:
        """The one candidate message whose headers and body the sent message fits."""
        fitting = [message for message in candidates if _fits(message, sent)]
        assert len(fitting) == 1, f"{sent.subject} {sent.headers} fits {len(fitting)} documented messages"
        return fitting[0]


def _address_pattern(address: str) -> str:
    return "".join(
        "[^.]+" if part.startswith("{") else re.escape(part) for part in re.split(r"(\{\w+\})", address) if part
    )


def _fits(message: dict[str, Any], sent: Published) -> bool:
    if "headers" in message and not jsonschema.Draft7Validator(message["headers"]).is_valid(sent.headers):
        return False
    if "payload" not in message:
        return sent.data == b""
    if not sent.data:
        return False
    try:
        body = json.loads(sent.data)
    except ValueError:
        return False
    schema = json.loads((SCHEMAS / message["payload"]["$ref"]).read_text())
    return jsonschema.Draft202012Validator(schema).is_valid(body)


# a fake NATS client -------------------------------------------------------------------


@dataclass
class Published:
    subject: str
    data: bytes
    headers: dict[str, str]


class FakeSubscription:
    def __init__(self, pending: list[Any] | None = None) -> None:
        self.pending = pending if pending is not None else []

    async def unsubscribe(self) -> None:
        return

    async def drain(self) -> None:
        return

    async def fetch(self, batch: int = 1, timeout: float | None = None) -> list[Any]:
        if self.pending:
            return [self.pending.pop(0)]
        await asyncio.sleep(0.01)
        raise TimeoutError


class FakeJetStream:
    def __init__(self) -> None:
        self.streams: dict[str, api.StreamConfig] = {}
        self.pulls: list[tuple[str, str, str]] = []
        self.jobs: list[FakeJob] = []

    async def stream_info(self, name: str) -> None:
        raise nats.js.errors.NotFoundError

    async def add_stream(self, config: api.StreamConfig) -> None:
        assert config.name is not None
        self.streams[config.name] = config

    async def pull_subscribe(
        self, subject: str, durable: str, stream: str, config: api.ConsumerConfig
    ) -> FakeSubscription:
        self.pulls.append((subject, durable, stream))
        return FakeSubscription(self.jobs)


class FakeNats:
    def __init__(self) -> None:
        self._nuid = NUID()
        self.is_connected = True
        self.subscriptions: dict[str, tuple[str, Callable[[Any], Awaitable[None]]]] = {}
        self.published: list[Published] = []
        self.js = FakeJetStream()

    async def subscribe(
        self, subject: str, queue: str = "", cb: Callable[[Any], Awaitable[None]] | None = None
    ) -> FakeSubscription:
        assert cb is not None
        self.subscriptions[subject] = (queue, cb)
        return FakeSubscription()

    async def flush(self, timeout: float | None = None) -> None:
        return

    async def publish(
        self, subject: str, payload: bytes = b"", reply: str = "", headers: dict[str, str] | None = None
    ) -> None:
        self.published.append(Published(subject, payload, dict(headers or {})))

    def jetstream(self) -> FakeJetStream:
        return self.js

    def sent_to(self, subject: str) -> list[Published]:
        return [p for p in self.published if p.subject == subject]


class FakeRequestMessage:
    """What nats.micro hands an endpoint or a ``$SRV`` handler."""

    def __init__(self, client: FakeNats, subject: str, data: bytes, headers: dict[str, str] | None = None) -> None:
        self._client = client
        self.subject = subject
        self.data = data
        self.headers = headers
        self.reply = INBOX

    async def respond(self, data: bytes = b"", headers: dict[str, str] | None = None) -> None:
        await self._client.publish(self.reply, data, headers=headers)


class FakeJob:
    def __init__(self, subject: str, body: dict[str, Any], sequence: int) -> None:
        self.subject = subject
        self.data = json.dumps(body).encode()
        self.headers: dict[str, str] | None = None
        self.metadata = SimpleNamespace(sequence=SimpleNamespace(stream=sequence), num_delivered=1)
        self.outcome: str | None = None

    async def ack(self) -> None:
        self.outcome = "ack"

    async def term(self) -> None:
        self.outcome = "term"

    async def nak(self, delay: float | None = None) -> None:
        self.outcome = "nak"

    async def in_progress(self) -> None:
        return


# the service, with fake devices ------------------------------------------------------


def build_handler(publisher: NatsResultPublisher) -> RequestHandler:
    factory = FakeSessionFactory({"10.20.0.12": FakeDevice(connect_errors=[ErrorCode.AUTH_FAILED] * 5)})
    pool = SessionPool(factory, idle_ttl=0, max_idle=10)
    runner = DeviceRunner(pool, connect_retries=0, connect_retry_delay=0, sleep=lambda _: None)
    limits = SchedulerLimits(4, 2, 1, queue_timeout=60, request_timeout=60, parse_workers=1)
    scheduler = Scheduler(runner, ResultParser(FakeParser(), 10_000), pool, limits)
    inventory = Inventory(
        {
            "edge-rtr-01": InventoryDevice(
                "edge-rtr-01",
                "edge-rtr-01",
                22,
                DeviceOS("iosxe"),
                "netops-ro",
                Secret("x"),
                groups=frozenset({"edge"}),
            )
        }
    )
    return RequestHandler(
        scheduler,
        Limits(
            max_devices=10, max_commands=5, max_payload_bytes=100_000, max_command_length=200, command_timeout_max=60
        ),
        Timeouts(5, 10, 100),
        ServiceMetrics(),
        inventory=lambda: inventory,
        publisher=publisher,
    )


def request(stream: bool = False, **extra: Any) -> bytes:
    devices = [
        {"hostname": host, "username": "netops-ro", "password": "example-only", "os": "iosxe"}
        for host in ["edge-rtr-01", "10.20.0.12"]
    ]
    commands = [{"command": "show version"}, {"command": "show clock"}]
    return json.dumps({"devices": devices, "commands": commands, "stream": stream, **extra}).encode()


@pytest_asyncio.fixture
async def bus() -> Any:
    client = FakeNats()
    subjects = Subjects(DEFAULTS.bus.subject_prefix)
    publisher = NatsResultPublisher(client, subjects, ServiceMetrics(), jetstream=False, buffer=100)  # type: ignore[arg-type]
    publisher.start()
    handler = build_handler(publisher)
    try:
        yield client, subjects, handler
    finally:
        await publisher.close(grace=1)


def execute_service(client: FakeNats, subjects: Subjects, handler: RequestHandler) -> ExecuteService:
    return ExecuteService(
        client,  # type: ignore[arg-type]
        handler,
        subjects,
        DEFAULTS.bus.service_name,
        DEFAULTS.bus.queue_group,
        ServiceMetrics(),
        ReplyRule(),
    )


def check_results(document: Document, client: FakeNats, operations: dict[str, str]) -> set[str]:
    """Each publish outside the inbox and notify subjects fits its channel's operation."""
    used = set()
    for sent in client.published:
        if sent.subject in (INBOX, NOTIFY):
            continue
        channel = document.channel_for(sent.subject)
        assert channel in operations, f"{sent.subject}: the service does not send on channel {channel}"
        document.check(document.messages(operations[channel]), sent)
        used.add(channel)
    return used


# the tests ----------------------------------------------------------------------------


async def test_endpoint_and_discovery_subscriptions_and_replies_are_documented(bus: Any) -> None:
    client, subjects, handler = bus
    document = Document()
    service = execute_service(client, subjects, handler)
    await service.start()
    try:
        queue, _ = client.subscriptions.pop(subjects.execute_wildcard)
        assert queue == document.doc["operations"]["execute"]["bindings"]["nats"]["queue"]
        assert re.fullmatch(_address_pattern(document.channel("execute")["address"]), subjects.execute("alice"))
        queue, outputs = client.subscriptions.pop(subjects.outputs_wildcard)
        assert queue == document.doc["operations"]["fetchOutput"]["bindings"]["nats"]["queue"]
        assert re.fullmatch(_address_pattern(document.channel("outputs")["address"]), subjects.outputs("alice"))
        queue, history = client.subscriptions.pop(subjects.history_wildcard)
        assert queue == document.doc["operations"]["replayHistory"]["bindings"]["nats"]["queue"]
        assert re.fullmatch(_address_pattern(document.channel("history")["address"]), subjects.history("alice"))
        client.published.clear()
        await history(FakeRequestMessage(client, subjects.history("alice"), b'{"device": "a:b:c:d"}'))
        await history(FakeRequestMessage(client, subjects.history("alice"), b'{"limit": 0}'))
        assert await service.wait_in_flight(10) == 0
        replies = document.messages("replayHistory", reply=True)
        assert [document.check(replies, sent)["name"] for sent in client.sent_to(INBOX)] == ["ErrorReply"] * 2
        client.published.clear()
        ref = b'{"bucket": "PYATS_OUTPUTS", "name": "alice/a/b/0", "size": 1, "sha256": "00"}'
        await outputs(FakeRequestMessage(client, subjects.outputs("alice"), ref))
        await outputs(FakeRequestMessage(client, subjects.outputs("alice"), b"not json"))
        assert await service.wait_in_flight(10) == 0
        replies = document.messages("fetchOutput", reply=True)
        assert [document.check(replies, sent)["name"] for sent in client.sent_to(INBOX)] == ["ErrorReply"] * 2
        documented = {name for name, c in document.doc["channels"].items() if (c["address"] or "").startswith("$SRV.")}
        found = set()
        for subject, (queue, callback) in client.subscriptions.items():
            channel = document.channel_for(subject)
            assert channel in documented, f"{subject} is subscribed but not a documented $SRV channel"
            assert queue == "", f"{subject}: every replica answers discovery"
            found.add(channel)
            client.published.clear()
            await callback(FakeRequestMessage(client, subject, b""))
            (operation,) = [
                name
                for name, op in document.doc["operations"].items()
                if op["channel"]["$ref"] == f"#/channels/{channel}"
            ]
            document.check(document.messages(operation, reply=True), client.published[0])
        assert found == documented, "every documented $SRV subject is answered"
    finally:
        await service.stop_intake()


async def test_every_execute_reply_and_result_is_documented(bus: Any) -> None:
    client, subjects, handler = bus
    document = Document()
    service = execute_service(client, subjects, handler)
    await service.start()
    _, execute = client.subscriptions[subjects.execute_wildcard]
    replies = document.messages("execute", reply=True)
    try:
        for body, headers in [
            (request(), {REQUEST_ID_HEADER: "01a215c0-4cd6-7de2-bc00-3dbd7c1371fb"}),
            (request(stream=True), None),
            (b'{"devices": [', None),
            (request(output_format="xml"), None),
        ]:
            await execute(FakeRequestMessage(client, subjects.execute("alice"), body, headers))
            assert await service.wait_in_flight(10) == 0
    finally:
        await service.stop_intake()
    kinds = [
        document.check(replies, sent)["headers"]["properties"][MESSAGE_KIND_HEADER]["const"]
        for sent in client.sent_to(INBOX)
    ]
    documented = {m["headers"]["properties"][MESSAGE_KIND_HEADER]["const"] for m in replies}
    assert set(kinds) == documented, "each documented reply was sent, and nothing else"
    assert kinds[-1] == "error"
    used = check_results(document, client, {"results": "publishResult", "summary": "publishSummary"})
    assert used == {"results", "summary"}


async def test_job_worker_subjects_and_notices_are_documented(bus: Any) -> None:
    client, subjects, handler = bus
    document = Document()
    jobs_channel = document.channel("jobs")
    settings = JobSettings(stream=DEFAULTS.jobs.stream, ack_wait=30, max_deliver=3, concurrency=1, max_age=3600)
    job_subject = subjects.jobs("alice")
    assert re.fullmatch(_address_pattern(jobs_channel["address"]), job_subject)
    good = FakeJob(
        job_subject, {"devices": [{"group": "edge"}], "commands": [{"command": "show version"}], "notify": NOTIFY}, 7
    )
    inline = json.loads(request(notify=NOTIFY))
    refused = FakeJob(job_subject, inline, 8)
    client.js.jobs.extend([good, refused])
    worker = JobWorker(client, handler, subjects, settings, ReplyRule(), ServiceMetrics())  # type: ignore[arg-type]
    await worker.start()
    try:
        for _ in range(500):
            if good.outcome and refused.outcome:
                break
            await asyncio.sleep(0.01)
    finally:
        await worker.stop(grace=1)
    assert (good.outcome, refused.outcome) == ("ack", "term")

    ((pulled, durable, stream),) = client.js.pulls
    jetstream = jobs_channel["x-nats-jetstream"]
    assert (durable, stream) == (jetstream["durable_consumer"], jetstream["stream"])
    assert client.js.streams[stream].retention == api.RetentionPolicy.WORK_QUEUE
    assert jetstream["retention"] == "workqueue"
    assert matches(job_subject, pulled), f"the worker takes {pulled}"

    notices = document.messages("notifyJob")
    kinds = [
        document.check(notices, sent)["headers"]["properties"][MESSAGE_KIND_HEADER]["const"]
        for sent in client.sent_to(NOTIFY)
    ]
    assert kinds == ["summary", "error"]
    assert check_results(document, client, {"results": "publishResult", "summary": "publishSummary"}) == {
        "results",
        "summary",
    }


async def test_a_message_the_document_does_not_describe_is_caught() -> None:
    document = Document()
    replies = document.messages("execute", reply=True)
    for sent in [
        Published(INBOX, b"{}", {MESSAGE_KIND_HEADER: "response", REQUEST_ID_HEADER: "x"}),  # body misses fields
        Published(INBOX, b"", {MESSAGE_KIND_HEADER: "finished"}),  # undocumented kind
        Published(INBOX, b"x", {MESSAGE_KIND_HEADER: "end"}),  # the end marker has no body
    ]:
        with pytest.raises(AssertionError):
            document.check(replies, sent)
    with pytest.raises(AssertionError):
        document.channel_for("pyats.v1.archive.alice")
