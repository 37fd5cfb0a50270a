"""Prometheus metrics. Labels are bounded enums only: no device hostnames, request ids or free text
(the one exception is ``worker``: the ids of the service's own device workers, a few per host)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from service.contract.errors import ErrorCode
from service.contract.messages import DeviceResult, RequestSummary
from service.domain.models import DeviceOS, Endpoint

_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class ServiceMetrics:
    """All metrics of one service instance, in its own registry (tests build several)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "pyats_requests", "Requests by endpoint and outcome", ["endpoint", "outcome"], registry=r
        )
        self.request_duration = Histogram(
            "pyats_request_duration_seconds",
            "Wall time of a request",
            ["endpoint"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.device_results = Counter(
            "pyats_device_results",
            "Device results by OS, outcome and error code",
            ["os", "outcome", "error_code"],
            registry=r,
        )
        self.device_duration = Histogram(
            "pyats_device_duration_seconds",
            "Wall time of all work on one device",
            ["os"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.connect_duration = Histogram(
            "pyats_connect_duration_seconds",
            "Time to a usable session: a new login, or a warm session checked alive",
            ["os", "kind"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.command_duration = Histogram(
            "pyats_command_duration_seconds",
            "Wall time of one show command on a device, output read in full",
            ["os"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "pyats_queue_wait_seconds",
            "Time a device waited for a worker",
            buckets=(0.001, 0.005, 0.01, 0.05, *_DURATION_BUCKETS),
            registry=r,
        )
        self.rate_limited = Counter(
            "pyats_rate_limited_requests", "Requests refused by a per-requester rate limit", ["endpoint"], registry=r
        )
        self.parse_outcomes = Counter(
            "pyats_parse_outcomes", "Parse outcomes by OS and status", ["os", "status"], registry=r
        )
        self.workers = Gauge("pyats_pool_workers", "Size of the shared device worker pool", registry=r)
        self.busy_workers = Gauge("pyats_pool_busy_workers", "Workers running device work now", registry=r)
        self.queued_devices = Gauge("pyats_queued_devices", "Devices waiting for a worker", registry=r)
        self.warm_sessions = Gauge("pyats_sessions_warm", "Idle device sessions kept open for reuse", registry=r)
        self.in_flight = Gauge("pyats_requests_in_flight", "Requests being worked on now", registry=r)
        self.results_dropped = Counter(
            "pyats_results_dropped", "Results given up on (buffer full or shutdown) and never published", registry=r
        )
        self.publish_failures = Counter(
            "pyats_jetstream_publish_failures", "Result publishes that failed and were retried", registry=r
        )
        self.jetstream_available = Gauge(
            "pyats_jetstream_available", "1 when results are kept in JetStream, 0 when only published", registry=r
        )
        self.bytes_published = Counter("pyats_bytes_published", "Bytes of replies published", ["kind"], registry=r)
        # schedules (a schedule's name is its requester's and bounded by PYATS_SCHEDULES_MAX_PER_REQUESTER)
        self.schedules = Gauge("pyats_schedules", "Schedules defined, by state", ["state"], registry=r)
        self.ticks_run = Counter(
            "pyats_schedule_ticks_run", "Schedule ticks run to the end, by schedule", ["schedule"], registry=r
        )
        self.ticks_missed = Counter(
            "pyats_schedule_ticks_missed",
            "Schedule ticks not run because no replica was running at their time",
            ["schedule"],
            registry=r,
        )
        self.ticks_late = Counter(
            "pyats_schedule_ticks_late",
            "Schedule ticks started later than PYATS_SCHEDULES_LATE_AFTER after their due time",
            ["schedule"],
            registry=r,
        )
        self.tick_lag = Histogram(
            "pyats_schedule_tick_lag_seconds",
            "From a tick's due time (plus its jitter) to the start of its run",
            buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
            registry=r,
        )
        self.schedules_refused = Counter(
            "pyats_schedule_definitions_refused",
            "Definitions found in the KV bucket that do not pass the checks (skipped)",
            registry=r,
        )
        # change events (the command label is the volatile-field rule's name, or "other": bounded)
        self.change_events = Counter(
            "pyats_change_events", "Change events published, by command rule", ["command"], registry=r
        )
        self.change_comparisons = Counter(
            "pyats_change_comparisons",
            "Results compared with the previous one, by outcome (baseline, unchanged, changed, skipped)",
            ["outcome"],
            registry=r,
        )

    # what the pipeline reports (service.pipeline.ports.PipelineMetrics)
    def request_started(self) -> None:
        self.in_flight.inc()

    def request_ended(self) -> None:
        self.in_flight.dec()

    def request_refused(self, endpoint: Endpoint, code: ErrorCode) -> None:
        self.requests.labels(endpoint.value, code.value).inc()
        if code is ErrorCode.RATE_LIMITED:
            self.rate_limited.labels(endpoint.value).inc()

    def request_done(self, endpoint: Endpoint, summary: RequestSummary) -> None:
        self.requests.labels(endpoint.value, summary.status).inc()
        self.request_duration.labels(endpoint.value).observe(summary.duration_s)

    def device_done(self, result: DeviceResult) -> None:
        outcome = "ok" if result.success else "failed"
        self.device_results.labels(result.os, outcome, result.error_code or "none").inc()
        self.device_duration.labels(result.os).observe(result.duration_s)
        for command in result.commands:
            if command.duration_s > 0:  # it ran on the device
                self.command_duration.labels(result.os).observe(command.duration_s)
            if command.parse_status is not None:
                self.parse_outcomes.labels(result.os, command.parse_status).inc()

    def observe_connect(self, os: DeviceOS, seconds: float, reused: bool) -> None:
        """A session became usable: a new login or a warm one checked alive."""
        self.connect_duration.labels(os.value, "reused" if reused else "new").observe(seconds)

    def observe_queue_wait(self, seconds: float) -> None:
        self.queue_wait.observe(seconds)

    def watch_workers(self, directory: Callable[[], Any], remote: Callable[[], Any]) -> None:
        """Expose the device workers (``pyats_device_workers``, ``pyats_worker_*``) at scrape time."""
        self.registry.register(_WorkerCollector(directory, remote))

    def watch_logins(self, source: Callable[[], tuple[int, int]]) -> None:
        """Expose ``pyats_logins_total{kind=new|reused}`` read from the session pool at scrape time."""
        self.registry.register(_LoginCounter(source))


class _WorkerCollector(Collector):
    """Device workers, read from the front's worker directory at scrape time (their heartbeats)."""

    def __init__(self, directory: Callable[[], Any], remote: Callable[[], Any]) -> None:
        self._directory = directory
        self._remote = remote

    def collect(self) -> Iterator[Metric]:
        directory, remote = self._directory(), self._remote()
        live = dict(directory.live) if directory is not None else {}
        counts = directory.map.counts() if directory is not None else {}
        workers = GaugeMetricFamily("pyats_device_workers", "Device workers alive (heartbeats within 3 intervals)")
        workers.add_metric([], len(live))
        yield workers
        gauges = {
            "partitions": GaugeMetricFamily("pyats_worker_partitions", "Partitions a worker owns", labels=["worker"]),
            "busy": GaugeMetricFamily("pyats_worker_busy", "Devices a worker is working on", labels=["worker"]),
            "capacity": GaugeMetricFamily(
                "pyats_worker_capacity", "Devices a worker works on at once now (its governor)", labels=["worker"]
            ),
            "warm_sessions": GaugeMetricFamily(
                "pyats_worker_sessions_warm", "A worker's warm sessions", labels=["worker"]
            ),
        }
        jobs = CounterMetricFamily("pyats_worker_jobs", "Devices a worker was sent", labels=["worker"])
        for worker, beat in sorted(live.items()):
            gauges["partitions"].add_metric([worker], counts.get(worker, 0))
            gauges["busy"].add_metric([worker], beat.busy)
            gauges["capacity"].add_metric([worker], beat.capacity)
            gauges["warm_sessions"].add_metric([worker], beat.warm_sessions)
            jobs.add_metric([worker], beat.jobs)
        yield from gauges.values()
        yield jobs
        lost = CounterMetricFamily("pyats_workers_lost", "Workers that left or stopped answering")
        lost.add_metric([], remote.lost if remote is not None else 0)
        yield lost
        retried = CounterMetricFamily("pyats_worker_retries", "Devices sent again after their worker was lost")
        retried.add_metric([], remote.retries if remote is not None else 0)
        yield retried


class _LoginCounter(Collector):
    def __init__(self, source: Callable[[], tuple[int, int]]) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "pyats_logins", "Device sessions: new logins and reused warm sessions", labels=["kind"]
        )
        new, reused = self._source()
        family.add_metric(["new"], new)
        family.add_metric(["reused"], reused)
        yield family
