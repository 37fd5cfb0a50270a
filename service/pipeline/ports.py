"""The seams the pipeline depends on; the device layer implements them, tests fake them."""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import Protocol

from service.contract.errors import ErrorCode
from service.contract.messages import DeviceResult, RequestSummary
from service.domain.models import DeviceOS, DeviceTarget, Endpoint, ParseOutcome, Privilege


class DeviceSession(Protocol):
    """A logged-in, read-only CLI session on one device (synchronous; runs in a worker thread)."""

    def execute(self, line: str, timeout: float) -> str:
        """Run one already-validated show line; raise ``CommandError`` on failure."""
        ...

    def is_alive(self) -> bool:
        """Cheap check that the device has not closed the session (before reusing it)."""
        ...

    @property
    def last_transformed(self) -> tuple[str, ...]:
        """What was changed in the last output (e.g. ``invalid_utf8_replaced``); empty: nothing."""
        ...

    @property
    def privilege(self) -> Privilege | None:
        """Where commands run: ``USER`` (``>``, no enable sent) or ``ENABLED`` (``#``); None if unknown."""
        ...

    def close(self) -> None:
        """Log out; never raises."""
        ...


class DeviceSessionFactory(Protocol):
    def open(self, target: DeviceTarget, connect_timeout: float) -> DeviceSession:
        """Log in read-only; raise ``ConnectError`` with a specific code on failure."""
        ...


class ResultPublisher(Protocol):
    """Where finished results go besides the reply: result subjects kept for replay."""

    async def publish_result(self, requester: str, result: DeviceResult) -> Awaitable[bool]:
        """Queue one device result; the awaitable resolves once it is stored (True) or dropped."""
        ...

    async def publish_summary(self, requester: str, summary: RequestSummary) -> Awaitable[bool]: ...


class OutputParser(Protocol):
    def parse(self, os: DeviceOS, line: str, output: str) -> ParseOutcome:
        """Parse ``output`` of the exact ``line`` sent; never raises."""
        ...

    def prewarm(self, pairs: Iterable[tuple[DeviceOS, str]]) -> None:
        """Load parser indexes and modules ahead of the first request."""
        ...


class PipelineMetrics(Protocol):
    """What the pipeline reports; ``observability/metrics.py`` turns it into Prometheus series."""

    def request_started(self) -> None: ...

    def request_ended(self) -> None:
        """Paired with ``request_started``, however the request ended."""
        ...

    def request_refused(self, endpoint: Endpoint, code: ErrorCode) -> None: ...

    def request_done(self, endpoint: Endpoint, summary: RequestSummary) -> None: ...

    def device_done(self, result: DeviceResult) -> None:
        """One device's result as answered (its commands' durations and parse outcomes too)."""
        ...

    def observe_connect(self, os: DeviceOS, seconds: float, reused: bool) -> None:
        """A session became usable: a new login, or a warm one checked alive."""
        ...

    def observe_queue_wait(self, seconds: float) -> None:
        """How long a device waited for a free slot."""
        ...
