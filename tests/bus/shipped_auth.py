"""The shipped ops/nats/auth.conf, for tests that act as its users.

A nats-server runs with that very file (passwords from its environment, as bcrypt hashes),
the service connects as user ``service``, each requester is a nats-py client, and the
``admin`` user reads back what is stored.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import bcrypt
import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client

from service.devtools.local_server import LocalNatsServer
from tests.conftest import ServiceProcess

AUTH_CONF = Path(__file__).resolve().parents[2] / "ops" / "nats" / "auth.conf"
PASSWORDS = {
    "service": "svc-pass-4Kq",
    "admin": "admin-pass-8Rw",
    "alice": "alice-pass-2Lm",
    "bob": "bob-pass-6Tz",
    "gateway": "gw-pass-3Hx",
    "mcp": "mcp-pass-5Jv",
}


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalNatsServer]:
    """nats-server with the shipped auth.conf; the env holds bcrypt hashes, quoted for the config parser."""
    folder = tmp_path_factory.mktemp("nats-auth")
    shutil.copy(AUTH_CONF, folder / "auth.conf")
    (folder / "nats-server.conf").write_text("include ./auth.conf\n")
    server = LocalNatsServer(folder / "data", config_file=folder / "nats-server.conf")
    with pytest.MonkeyPatch.context() as env:
        for user, password in PASSWORDS.items():
            hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
            env.setenv(f"PYATS_NATS_{user.upper()}_PASSWORD", f'"{hashed}"')
        server.start()  # the server reads its environment once, at start
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def auth_service(service_factory: Callable[..., ServiceProcess], auth_server: LocalNatsServer) -> ServiceProcess:
    return service_factory(
        PYATS_NATS_URL=auth_server.url,
        PYATS_NATS_USER="service",
        PYATS_NATS_PASSWORD=PASSWORDS["service"],
        PYATS_LOG_FORMAT="json",
    ).wait_ready()


class Requester:
    """A connection as one user, keeping the errors the server reports to it."""

    def __init__(self, user: str) -> None:
        self.user = user
        self.errors: list[Exception] = []
        self.client: Client | None = None

    async def connect(self, url: str, inbox_prefix: str | None = None) -> Client:
        async def on_error(exc: Exception) -> None:
            self.errors.append(exc)

        self.client = await nats.connect(
            url,
            user=self.user,
            password=PASSWORDS[self.user],
            inbox_prefix=inbox_prefix or f"_INBOX.{self.user}",
            error_cb=on_error,
            allow_reconnect=False,
        )
        return self.client

    async def wait_error(self, text: str, timeout: float = 5.0) -> str:
        for _ in range(int(timeout / 0.05)):
            for exc in self.errors:
                if text.lower() in str(exc).lower():  # nats-py lower-cases the server's -ERR
                    return str(exc)
            await asyncio.sleep(0.05)
        raise AssertionError(f"no error with {text!r} reported to {self.user}: {self.errors}")


@pytest_asyncio.fixture
async def connect_as(auth_server: LocalNatsServer) -> AsyncIterator[Callable[..., Any]]:
    opened: list[Client] = []

    async def connect(user: str, inbox_prefix: str | None = None) -> Requester:
        requester = Requester(user)
        opened.append(await requester.connect(auth_server.url, inbox_prefix))
        return requester

    try:
        yield connect
    finally:
        for client in opened:
            await client.close()


def log_records(service: ServiceProcess) -> list[dict[str, Any]]:
    records = []
    for line in service.log().splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records
