from __future__ import annotations

import json
import re
from typing import Any

import msgspec
import pytest

from service.contract.errors import ErrorCode, PyatsRoError
from service.contract.messages import DeviceResult, ExecuteResponse, JobRequest, RequestSummary
from service.domain.inventory import Inventory, InventoryDevice
from service.domain.models import DeviceOS, Endpoint, Secret, Timeouts
from service.domain.policy import Limits
from service.observability.metrics import ServiceMetrics
from service.pipeline.handler import RequestHandler
from service.pipeline.result_parser import ResultParser
from service.pipeline.runner import DeviceRunner
from service.pipeline.scheduler import Scheduler, SchedulerLimits
from service.pipeline.session_pool import SessionPool
from tests.unit.fakes import FakeDevice, FakeParser, FakeSessionFactory
from tests.unit.test_policy import INJECTION_COMMANDS

pytestmark = [pytest.mark.unit, pytest.mark.asyncio]

LIMITS = Limits(
    max_devices=50, max_commands=5, max_payload_bytes=100_000, max_command_length=200, command_timeout_max=60
)


class RecordingSink:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    async def device_result(self, result: DeviceResult) -> None:
        self.events.append(("result", result))

    async def summary(self, summary: RequestSummary) -> None:
        self.events.append(("summary", summary))

    async def end(self) -> None:
        self.events.append(("end", None))

    async def response(self, response: ExecuteResponse) -> None:
        self.events.append(("response", response))

    async def error(self, error: PyatsRoError, request_id: str | None) -> None:
        self.events.append(("error", (error, request_id)))


def build(
    factory: FakeSessionFactory, retries: int = 2, ttl: float = 0
) -> tuple[RequestHandler, ServiceMetrics, list[float]]:
    slept: list[float] = []
    pool = SessionPool(factory, idle_ttl=ttl, max_idle=10)
    runner = DeviceRunner(pool, connect_retries=retries, connect_retry_delay=0.5, sleep=slept.append)
    limits = SchedulerLimits(4, 2, 1, queue_timeout=60, request_timeout=60, parse_workers=1)
    scheduler = Scheduler(runner, ResultParser(FakeParser(), 10_000), pool, limits)
    metrics = ServiceMetrics()
    handler = RequestHandler(scheduler, LIMITS, Timeouts(5, 10, 100), metrics)
    return handler, metrics, slept


def body(hosts: list[str], commands: list[str] | None = None, **extra: Any) -> bytes:
    return json.dumps(
        {
            "devices": [{"hostname": h, "username": "u", "password": "p", "os": "iosxe"} for h in hosts],
            "commands": [{"command": c} for c in (commands or ["show version", "show clock"])],
            **extra,
        }
    ).encode()


async def test_aggregate_reply_keeps_request_order_and_counts() -> None:
    factory = FakeSessionFactory({"r2": FakeDevice(connect_errors=[ErrorCode.AUTH_FAILED])})
    handler, metrics, _ = build(factory)
    sink = RecordingSink()
    await handler.handle(body(["r1", "r2", "r3"]), "alice", None, sink)
    [(kind, response)] = sink.events
    assert kind == "response"
    assert [r.hostname for r in response.results] == ["r1", "r2", "r3"]
    assert (response.total_devices, response.successful_devices, response.failed_devices) == (3, 2, 1)
    failed = response.results[1]
    assert failed.error_code == ErrorCode.AUTH_FAILED and failed.commands == []
    assert response.results[0].commands[1].output == "output of show clock"
    assert all(s.closed for s in factory.sessions)
    assert metrics.requests.labels("execute", "partial")._value.get() == 1
    assert metrics.device_results.labels("iosxe", "ok", "none")._value.get() == 2
    assert metrics.device_results.labels("iosxe", "failed", "auth_failed")._value.get() == 1


async def test_request_outcome_is_failed_when_no_device_succeeded() -> None:
    factory = FakeSessionFactory({"r1": FakeDevice(connect_errors=[ErrorCode.AUTH_FAILED])})
    handler, metrics, _ = build(factory)
    await handler.handle(body(["r1"]), "alice", None, RecordingSink())
    assert metrics.requests.labels("execute", "failed")._value.get() == 1
    assert metrics.requests.labels("execute", "partial")._value.get() == 0
    assert metrics.command_duration.labels("iosxe")._sum.get() == 0  # nothing ran


async def test_streamed_reply_sends_results_then_summary_then_end() -> None:
    handler, _, _ = build(FakeSessionFactory())
    sink = RecordingSink()
    await handler.handle(body(["r1", "r2"], stream=True), "alice", None, sink)
    kinds = [k for k, _ in sink.events]
    assert kinds == ["result", "result", "summary", "end"]
    assert sink.events[2][1].successful_devices == 2


@pytest.mark.parametrize("command", INJECTION_COMMANDS)
async def test_refused_requests_touch_no_device(command: str) -> None:
    factory = FakeSessionFactory()
    handler, _, _ = build(factory)
    sink = RecordingSink()
    await handler.handle(body(["r1"], [command]), "alice", None, sink)
    assert sink.events[0][0] == "error"
    assert factory.opened == [] and factory.lines == []


async def test_bad_json_gets_an_error_with_a_fresh_request_id_only_when_known() -> None:
    handler, _, _ = build(FakeSessionFactory())
    sink = RecordingSink()
    await handler.handle(b"{", "alice", "hdr-1", sink)
    error, request_id = sink.events[0][1]
    assert error.code is ErrorCode.INVALID_JSON
    assert request_id == "hdr-1"


async def test_request_id_from_body_then_header_then_generated() -> None:
    handler, _, _ = build(FakeSessionFactory())
    sink = RecordingSink()
    await handler.handle(body(["r1"], request_id="body-id"), "a", "hdr-id", sink)
    await handler.handle(body(["r1"]), "a", "hdr-id", sink)
    await handler.handle(body(["r1"]), "a", None, sink)
    ids = [event[1].request_id for event in sink.events]
    assert ids[:2] == ["body-id", "hdr-id"]
    assert len(ids[2]) == 36 and ids[2][14] == "7"
    assert all(r.request_id == ids[i] for i, e in enumerate(sink.events) for r in e[1].results)


async def test_invalid_request_id_is_refused() -> None:
    handler, _, _ = build(FakeSessionFactory())
    sink = RecordingSink()
    await handler.handle(body(["r1"], request_id="has space"), "a", None, sink)
    assert sink.events[0][1][0].details == {"path": "$.request_id"}


async def test_connect_retries_back_off_on_refused_timeout_and_overload_but_never_on_auth() -> None:
    factory = FakeSessionFactory(
        {
            "flaky": FakeDevice(
                connect_errors=[ErrorCode.CONNECT_REFUSED, ErrorCode.CONNECT_TIMEOUT, ErrorCode.OVERLOADED]
            ),
            "locked": FakeDevice(connect_errors=[ErrorCode.AUTH_FAILED, ErrorCode.AUTH_FAILED]),
        }
    )
    handler, _, slept = build(factory, retries=3)
    sink = RecordingSink()
    await handler.handle(body(["flaky", "locked"]), "a", None, sink)
    flaky, locked = sink.events[0][1].results
    assert flaky.success and not locked.success
    assert factory.opened.count("flaky") == 4 and factory.opened.count("locked") == 1
    assert slept == [0.5, 1.0, 2.0]


async def test_retries_are_bounded() -> None:
    factory = FakeSessionFactory({"down": FakeDevice(connect_errors=[ErrorCode.CONNECT_REFUSED] * 5)})
    handler, _, _ = build(factory, retries=1)
    sink = RecordingSink()
    await handler.handle(body(["down"]), "a", None, sink)
    assert sink.events[0][1].results[0].error_code == ErrorCode.CONNECT_REFUSED
    assert factory.opened.count("down") == 2


async def test_a_failed_command_does_not_stop_the_next_one() -> None:
    factory = FakeSessionFactory({"r1": FakeDevice(command_errors={"show clock": ErrorCode.INVALID_COMMAND})})
    handler, _, _ = build(factory)
    sink = RecordingSink()
    await handler.handle(body(["r1"], ["show clock", "show version"]), "a", None, sink)
    result = sink.events[0][1].results[0]
    assert [c.success for c in result.commands] == [False, True]
    assert result.commands[0].output == "% fake" and result.commands[0].error_code == ErrorCode.INVALID_COMMAND
    assert not result.success and result.error == "1 of 2 commands failed"


async def test_parsed_format_keeps_raw_only_where_parsing_failed() -> None:
    handler, metrics, _ = build(FakeSessionFactory())
    sink = RecordingSink()
    await handler.handle(body(["r1"], ["show version", "show clock"], output_format="parsed"), "a", None, sink)
    version, clock = sink.events[0][1].results[0].commands
    assert version.output is None and version.parsed == {"version": {"os": "iosxe", 1: "int key"}}
    assert version.parse_status == "ok" and version.parse_error is None
    assert clock.output == "output of show clock" and clock.parse_status == "no_parser"
    assert metrics.parse_outcomes.labels("iosxe", "no_parser")._value.get() == 1


async def test_both_format_keeps_raw_and_parsed() -> None:
    handler, _, _ = build(FakeSessionFactory())
    sink = RecordingSink()
    await handler.handle(body(["r1"], ["show version"], output_format="both"), "a", None, sink)
    command = sink.events[0][1].results[0].commands[0]
    assert command.output == "output of show version" and command.parsed is not None


class ExplodingFactory(FakeSessionFactory):
    def open(self, target: Any, connect_timeout: float) -> Any:
        if target.hostname == "bug":
            raise RuntimeError("adapter bug")
        return super().open(target, connect_timeout)


async def test_an_adapter_bug_fails_one_device_not_the_request() -> None:
    handler, _, _ = build(ExplodingFactory())
    sink = RecordingSink()
    await handler.handle(body(["ok", "bug"]), "a", None, sink)
    ok, bug = sink.events[0][1].results
    assert ok.success and bug.error_code == ErrorCode.INTERNAL_ERROR


async def test_rate_limited_and_denied_requests_touch_no_device() -> None:
    from service.domain.requester_policy import RateRule, RequesterPolicy, RequesterRules

    factory = FakeSessionFactory()
    handler, metrics, _ = build(factory)
    handler.policy = RequesterPolicy(
        default=RequesterRules(rate=RateRule(requests=1, devices=100, period=60)),
        requesters={"auditor": RequesterRules(deny=(re.compile("^show clock"),), rate=RateRule(0, 0, 1))},
    )
    sink = RecordingSink()
    await handler.handle(body(["r1"]), "flood", None, sink)
    opened_after_first = list(factory.opened)
    for _ in range(5):
        await handler.handle(body(["r1"]), "flood", None, sink)
    await handler.handle(body(["r2"], ["show clock"]), "auditor", None, sink)
    await handler.handle(body(["r3"], ["show version"]), "other", None, sink)
    kinds = [(kind, payload[0].code if kind == "error" else None) for kind, payload in sink.events]
    assert kinds[0] == ("response", None)
    assert kinds[1:6] == [("error", ErrorCode.RATE_LIMITED)] * 5
    assert kinds[6] == ("error", ErrorCode.COMMAND_NOT_ALLOWED)
    assert kinds[7] == ("response", None)  # the flood did not slow another requester
    assert factory.opened == [*opened_after_first, "r3"]
    assert metrics.requests.labels("execute", "rate_limited")._value.get() == 5


async def test_a_body_that_fails_to_decode_is_answered_with_its_request_id() -> None:
    handler, _, _ = build(FakeSessionFactory())
    sink = RecordingSink()
    await handler.handle(body(["r1"], extra_field=1, request_id="req-7"), "alice", None, sink)
    [(kind, (error, request_id))] = sink.events
    assert kind == "error" and error.code is ErrorCode.INVALID_REQUEST
    assert request_id == "req-7"
    assert error.details["path"] == "$.extra_field"


async def test_redaction_follows_the_requester_s_policy() -> None:
    from service.domain.requester_policy import RateRule, RequesterPolicy, RequesterRules

    config = "hostname r1\nsnmp-server community canary-ro RO\n"
    handler, _, _ = build(FakeSessionFactory({"r1": FakeDevice(outputs={"show running-config": config})}))
    unlimited = RateRule(0, 0, 1)
    handler.policy = RequesterPolicy(
        default=RequesterRules(rate=unlimited), requesters={"auditor": RequesterRules(redact=False, rate=unlimited)}
    )
    sink = RecordingSink()
    await handler.handle(body(["r1"], ["show running-config"]), "alice", None, sink)
    await handler.handle(body(["r1"], ["show running-config"]), "auditor", None, sink)
    alice, auditor = (event[1].results[0].commands[0].output for event in sink.events)
    assert alice == "hostname r1\nsnmp-server community <redacted> RO\n"
    assert auditor == config


async def test_an_unusable_header_request_id_is_replaced() -> None:
    handler, _, _ = build(FakeSessionFactory())
    sink = RecordingSink()
    await handler.handle(body(["r1"]), "a", "bad id; reload", sink)
    [(kind, response)] = sink.events
    assert kind == "response" and response.request_id != "bad id; reload"
    assert len(response.request_id) == 36 and response.request_id[14] == "7"


async def test_a_job_with_inline_credentials_is_refused_and_touches_no_device() -> None:
    factory = FakeSessionFactory()
    handler, _, _ = build(factory)
    sink = RecordingSink()
    await handler.handle(body(["r1"]), "a", "job-1", sink, endpoint=Endpoint.JOBS)
    [(kind, (error, _))] = sink.events
    assert kind == "error" and error.code is ErrorCode.FEATURE_DISABLED
    assert factory.opened == []


async def test_a_device_cut_off_at_shutdown_is_still_streamed() -> None:
    import asyncio

    handler, _, _ = build(FakeSessionFactory({"fast": FakeDevice(), "slow": FakeDevice(delay=5)}))
    sink = RecordingSink()
    task = asyncio.create_task(handler.handle(body(["fast", "slow"], stream=True), "a", None, sink))
    await asyncio.sleep(0.3)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert [kind for kind, _ in sink.events] == ["result", "result", "summary", "end"]
    assert sink.events[1][1].error_code is ErrorCode.SERVICE_UNAVAILABLE
    assert sink.events[2][1].failed_devices == 1


async def test_a_schedule_s_tick_has_its_own_device_bound() -> None:
    devices = {
        f"r{i}": InventoryDevice(f"r{i}", f"10.0.0.{i}", 22, DeviceOS.IOSXE, "u", Secret("p"), groups=frozenset({"g"}))
        for i in range(60)
    }
    scheduler = build(FakeSessionFactory())[0]._scheduler
    request = msgspec.json.decode(
        b'{"devices": [{"group": "g"}], "commands": [{"command": "show clock"}]}', type=JobRequest
    )
    for tick_bound, endpoint, fits in [
        (100, Endpoint.TICKS, True),
        (55, Endpoint.TICKS, False),
        (100, Endpoint.JOBS, False),  # a job keeps the per-request bound (50)
    ]:
        handler = RequestHandler(
            scheduler,
            LIMITS,
            Timeouts(5, 10, 100),
            ServiceMetrics(),
            inventory=lambda: Inventory(devices),
            tick_max_devices=tick_bound,
        )
        if fits:
            plan, _ = handler.check(request, "noc", "r-1", endpoint)
            assert len(plan.targets) == 60
        else:
            with pytest.raises(PyatsRoError) as refused:
                handler.check(request, "noc", "r-1", endpoint)
            assert refused.value.code is ErrorCode.TOO_MANY_DEVICES
