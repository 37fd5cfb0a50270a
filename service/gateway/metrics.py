"""Prometheus metrics of the gateway itself, in its own registry: requests by route and status, latency.

Labels are route templates (``/api/v1/execute``), never paths, keys or requesters' data.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

UNMATCHED = "unmatched"
Scope = dict[str, Any]
Receive = Any
Send = Any
ASGIApp = Any


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "pyats_gateway_requests",
            "HTTP requests answered by the gateway, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "pyats_gateway_request_duration_seconds",
            "Seconds from the request to the end of its answer (a stream: to its last event), by route.",
            ["route", "method"],
            buckets=(0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=self.registry,
        )
        self.streams = Gauge(
            "pyats_gateway_streams_open",
            "Streamed answers whose reply inbox is still subscribed (0 when idle: none leaks).",
            registry=self.registry,
        )

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """A plain ASGI middleware (no buffering, streams pass through as they are)."""
        metrics = self

        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            started = time.perf_counter()
            status = [500]

            async def sending(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    status[0] = int(message["status"])
                await send(message)

            try:
                await app(scope, receive, sending)
            finally:
                route = scope.get("route")
                template = getattr(route, "path", None) or UNMATCHED
                method = str(scope.get("method", ""))
                metrics.requests.labels(template, method, str(status[0])).inc()
                metrics.latency.labels(template, method).observe(time.perf_counter() - started)

        return wrapped
