"""Start-up is one AsyncExitStack: whichever step fails, nothing it or an earlier step started is left.

Each step of ``App._start`` is made to fail in turn, before it does anything and after it has
done all of its work; then no task, thread, child process or NATS connection of the app may
remain, and the error reaches the caller unchanged.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil
import pytest

from service.app import App
from service.config import load_settings
from service.devtools.child import descendants
from service.devtools.local_server import LocalNatsServer, free_port
from service.transport.endpoint import ExecuteService

pytestmark = [pytest.mark.bus, pytest.mark.asyncio]

STEPS = [
    "_start_health",
    "_start_prewarm",
    "_connect",
    "_start_results",
    "_start_background",
    "_start_jobs",
    "_start_schedules",
]
WORKER_STEPS = ["_start_workers", "service.start"]
_counter = itertools.count()


class InjectedError(Exception):
    pass


def _nats_connections(port: int) -> int:
    return sum(1 for c in psutil.Process().net_connections(kind="tcp") if c.raddr and c.raddr.port == port)


def _app_threads() -> set[threading.Thread]:
    """Threads the app may start (the loop's own default executor belongs to the test's loop)."""
    return {t for t in threading.enumerate() if t.is_alive() and not t.name.startswith("asyncio_")}


async def _settle(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.05)
    return check()


def _inject(monkeypatch: pytest.MonkeyPatch, step: str, when: str) -> None:
    owner: Any = ExecuteService if step == "service.start" else App
    name = "start" if step == "service.start" else step
    original = getattr(owner, name)

    if asyncio.iscoroutinefunction(original):

        async def failing_async(*args: Any, **kwargs: Any) -> Any:
            if when == "after":
                await original(*args, **kwargs)
            raise InjectedError(f"{step} failed {when} its work")

        monkeypatch.setattr(owner, name, failing_async)
    else:

        def failing(*args: Any, **kwargs: Any) -> Any:
            if when == "after":
                original(*args, **kwargs)
            raise InjectedError(f"{step} failed {when} its work")

        monkeypatch.setattr(owner, name, failing)


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("step", STEPS + WORKER_STEPS)
async def test_a_failing_start_up_step_leaves_nothing_behind(
    step: str, when: str, nats_server: LocalNatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = next(_counter)
    for key in [k for k in os.environ if k.startswith("PYATS_")]:
        monkeypatch.delenv(key)
    env = {
        "PYATS_NATS_URL": nats_server.url,
        "PYATS_METRICS_PORT": str(free_port()),
        "PYATS_SUBJECT_PREFIX": f"startfail{n}.v1",
        "PYATS_RESULTS_STREAM": f"STARTFAIL{n}_RESULTS",
        "PYATS_JOBS_STREAM": f"STARTFAIL{n}_JOBS",
        "PYATS_CHANGES_STREAM": f"STARTFAIL{n}_CHANGES",
        "PYATS_CHANGES_BUCKET": f"STARTFAIL{n}_BASELINES",
        "PYATS_SCHEDULES_STREAM": f"STARTFAIL{n}_TICKS",
        "PYATS_SCHEDULES_BUCKET": f"STARTFAIL{n}_SCHEDULES",
        "PYATS_SCHEDULES_STATE_BUCKET": f"STARTFAIL{n}_SCHEDULE_TICKS",
        "PYATS_WORKER_GROUP": f"startfail{n}",
        "PYATS_DEVICE_WORKERS": "1" if step in WORKER_STEPS else "0",
        "PYATS_PARSER_PREWARM": "",
        "PYATS_WORKER_WAIT": "30",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings(os.devnull)
    threads_before = _app_threads()
    children_before = set(descendants(os.getpid()))
    connections_before = _nats_connections(nats_server.port)
    tasks_before = asyncio.all_tasks()
    _inject(monkeypatch, step, when)

    app = App(settings)
    with pytest.raises(InjectedError, match=step):
        await app.run(asyncio.Event())

    assert await _settle(lambda: asyncio.all_tasks() <= tasks_before), asyncio.all_tasks() - tasks_before
    assert await _settle(lambda: _app_threads() <= threads_before), _app_threads() - threads_before
    assert await _settle(lambda: set(descendants(os.getpid())) <= children_before)
    assert await _settle(lambda: _nats_connections(nats_server.port) <= connections_before)
    assert not app.ready.is_set()
