"""The HTTP gateway leaks no secret: device passwords (right, wrong, misplaced) and API keys (its
own, a wrong one) never reach its log, its answers (errors included), its /metrics or the process
list. (The MCP server's answers, log and /metrics are checked in test_mcp_server.py.)"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from service.devtools.local_server import LocalNatsServer
from tests.bus.test_http_gateway import ALICE_KEY, RUN, Gateway, bearer, gateway_env
from tests.bus.test_secrets_canary import ps_snapshot
from tests.conftest import LAB_PASSWORD, ServiceProcess, wire_device

pytestmark = [pytest.mark.bus, pytest.mark.asyncio]

PREFIX = f"gwsecret{RUN}.v1"
WRONG = "Canary-GW-WRONG-4r8t"
WRONG_KEY = f"pyro_wrong_{uuid.uuid4().hex}"
SECRETS = (LAB_PASSWORD, WRONG, ALICE_KEY, WRONG_KEY)


@pytest.fixture(scope="module")
def verbose_gateway(
    service_factory: Callable[..., ServiceProcess],
    nats_server: LocalNatsServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    service_factory(PYATS_SUBJECT_PREFIX=PREFIX).wait_ready()
    env = gateway_env(nats_server.url, PREFIX) | {"PYATS_LOG_LEVEL": "DEBUG", "PYTHONUNBUFFERED": "1"}
    running = Gateway(env, tmp_path_factory.mktemp("gateway-secrets") / "gateway.log")
    try:
        yield running
    finally:
        running.stop()


async def test_the_gateway_leaks_no_password_or_key(
    verbose_gateway: Gateway, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    good = wire_device(lab_device("iosxe-1"))
    wrong = {**good, "password": WRONG}
    show = [{"command": "show version"}]
    calls: list[tuple[str, dict[str, Any], dict[str, str]]] = [
        ("/api/v1/execute", {"devices": [good], "commands": show}, bearer(ALICE_KEY)),
        ("/api/v1/execute", {"devices": [wrong], "commands": show}, bearer(ALICE_KEY)),
        ("/api/v1/execute", {"devices": [{**good, "port": WRONG}], "commands": show}, bearer(ALICE_KEY)),
        ("/api/v1/execute", {"devices": [good], "commands": [{"command": "reload"}]}, bearer(ALICE_KEY)),
        ("/api/v1/execute", {"devices": [good], "commands": show}, bearer(WRONG_KEY)),
        ("/api/v1/execute", {"devices": [good], "commands": show}, {"X-API-Key": WRONG_KEY}),
        ("/api/v1/execute/stream", {"devices": [good, wrong], "commands": show}, bearer(ALICE_KEY)),
        ("/api/v1/execute/stream", {"devices": [wrong], "commands": show}, bearer(WRONG_KEY)),
        ("/api/v1/jobs", {"devices": [good], "commands": show}, bearer(ALICE_KEY)),
    ]
    answers: list[str] = []
    snapshots: list[str] = []
    statuses: list[int] = []
    async with httpx.AsyncClient(base_url=verbose_gateway.url, timeout=90) as http:
        for path, body, headers in calls:
            task = asyncio.create_task(http.post(path, json=body, headers=headers))
            while not task.done():
                snapshots.append(ps_snapshot())
                await asyncio.sleep(0.1)
            answer = await task
            statuses.append(answer.status_code)
            answers.append(json.dumps(dict(answer.headers)) + "\n" + answer.text)
        metrics = (await http.get("/metrics")).text
    assert statuses == [200, 200, 400, 403, 401, 401, 200, 401, 400], statuses
    assert json.loads(answers[1].split("\n", 1)[1])["results"][0]["error_code"] == "auth_failed"
    assert "auth_failed" in answers[6]  # the stream's failed device
    verbose_gateway.stop()  # its last words flushed, shutdown included
    places = {
        "gateway log": verbose_gateway.log.read_text(),
        "answers": "\n".join(answers),
        "metrics": metrics,
        "process list": "\n".join(snapshots),
    }
    # the gateway's output (PYATS_LOG_LEVEL=DEBUG; uvicorn at warning, no access log) is scanned whatever it holds
    assert verbose_gateway.log.exists()
    for place, text in places.items():
        for secret in SECRETS:
            if secret in text:  # not an assert: its report would print the secret
                pytest.fail(f"secret #{SECRETS.index(secret)} leaked into the gateway's {place}")
