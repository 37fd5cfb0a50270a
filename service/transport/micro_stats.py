"""``$SRV.STATS`` that count what the endpoints really did (ADR-32).

nats.micro times only the endpoint callback and counts an error only when the callback
raises. Our callbacks return at once, because each request runs in its own task (nats-py
runs one subscription's callbacks one after another, so awaiting the work would queue every
request behind the slowest), and they answer errors themselves. nats.micro alone would
therefore report about 50 µs per request and no errors. ``EndpointStats`` adds each
request's real handling time and its error reply to the endpoint's counters when the work
ends. nats.micro keeps those counters in private attributes and offers no hook: this is the
one place that touches them, and ``tests/bus/test_micro_stats.py`` reads them back with a
NATS client.
"""

from __future__ import annotations

from typing import Any

from nats.micro.service import Service


class EndpointStats:
    def __init__(self, endpoint: Any) -> None:
        self._endpoint = endpoint

    @classmethod
    def of(cls, service: Service, name: str) -> EndpointStats:
        endpoints = getattr(service, "_endpoints", None) or []
        found = [endpoint for endpoint in endpoints if getattr(endpoint, "_name", None) == name]
        if len(found) != 1:
            raise LookupError(f"nats.micro endpoint {name!r} not found")
        return cls(found[0])

    def finished(self, elapsed_ns: int, error: str | None) -> None:
        """One request is done: its handling time, and its error reply if it got one."""
        endpoint = self._endpoint
        endpoint._processing_time += max(0, elapsed_ns)
        if error is not None:
            endpoint._num_errors += 1
            endpoint._last_error = error
        endpoint._average_processing_time = endpoint._processing_time // max(1, endpoint._num_requests)
