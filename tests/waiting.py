"""Waiting on a condition instead of sleeping a fixed time and hoping it happened."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

POLL = 0.01


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    """Poll ``predicate`` until it is true; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout:g}s: {what or _name(predicate)}")
        time.sleep(POLL)


async def wait_for_async(
    predicate: Callable[[], object | Awaitable[object]], timeout: float = 10.0, what: str = ""
) -> None:
    """``wait_for`` inside an event loop: the loop keeps running while we wait; ``predicate``
    may be a coroutine function."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout:g}s: {what or _name(predicate)}")
        await asyncio.sleep(POLL)


def _name(predicate: Callable[..., object]) -> str:
    return getattr(predicate, "__qualname__", repr(predicate))
