"""Across accounts the server-set Nats-Request-Info header, not the subject, says who asks."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest

from service.devtools.local_server import LocalNatsServer, free_port
from tests.conftest import ServiceProcess, wire_device

pytestmark = [pytest.mark.bus, pytest.mark.asyncio]

CONFIG = """
accounts {
  SVC: {
    users: [{user: svc, password: svc-pass}]
    exports: [{service: "pyats.v1.execute.>", response_type: stream}]
  }
  TEAM: {
    users: [{user: carol, password: carol-pass}]
    imports: [{service: {account: SVC, subject: "pyats.v1.execute.>"}, share: true}]
  }
}
"""


@pytest.fixture(scope="module")
def accounts_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNatsServer]:
    folder = tmp_path_factory.mktemp("accounts")
    config = folder / "accounts.conf"
    config.write_text(CONFIG)
    server = LocalNatsServer(folder, port=free_port(), config_file=config, jetstream=False)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_a_request_from_another_account_is_attributed_to_the_vouched_user(
    service_factory: Callable[..., ServiceProcess],
    accounts_server: LocalNatsServer,
    lab_device: Callable[[str], dict[str, Any]],
    tmp_path: Path,
) -> None:
    log = tmp_path / "service.jsonl"
    service = service_factory(
        PYATS_NATS_URL=accounts_server.url,
        PYATS_NATS_USER="svc",
        PYATS_NATS_PASSWORD="svc-pass",
        PYATS_TRUST_REQUEST_INFO="true",  # the requesters live in another account
        PYATS_LOG_FORMAT="json",
        PYATS_LOG_FILE=str(log),
    ).wait_ready()
    client = await nats.connect(accounts_server.url, user="carol", password="carol-pass")
    try:
        body = {"devices": [wire_device(lab_device("ios-1"))], "commands": [{"command": "show clock"}]}
        msg = await client.request("pyats.v1.execute.mallory", json.dumps(body).encode(), timeout=60)
        assert json.loads(msg.data)["successful_devices"] == 1
    finally:
        await client.close()
    service.stop()
    requesters = {json.loads(line)["requester"] for line in log.read_text().splitlines()}
    assert "carol@TEAM" in requesters
    assert "mallory" not in requesters
