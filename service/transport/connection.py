"""Open the NATS connection from settings; secrets leave SecretStr only here."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any

import nats
import nkeys
from loguru import logger
from nats.aio.client import Client

from service.config import Settings
from service.contract.errors import ConfigError, ErrorCode

BusClient = Client  # the service's connection, named without importing nats


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    if not (settings.nats.tls_ca or settings.nats.tls_cert):
        return None
    context = ssl.create_default_context(cafile=str(settings.nats.tls_ca) if settings.nats.tls_ca else None)
    if settings.nats.tls_cert and settings.nats.tls_key:
        context.load_cert_chain(str(settings.nats.tls_cert), str(settings.nats.tls_key))
    return context


def _describe(exc: BaseException) -> str:
    """Class and text of a connect error; nats-py, ssl and nkeys errors carry no credentials."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def connect_options(settings: Settings, name: str) -> dict[str, Any]:
    options: dict[str, Any] = {
        "servers": settings.nats.url,
        "name": name,
        "connect_timeout": settings.nats.connect_timeout,
        "max_reconnect_attempts": settings.nats.max_reconnect_attempts,
        "allow_reconnect": True,
    }
    if settings.nats.user:
        options["user"] = settings.nats.user
        if settings.nats.password:
            options["password"] = settings.nats.password.get_secret_value()
    if settings.nats.token:
        options["token"] = settings.nats.token.get_secret_value()
    if settings.nats.credentials_file:
        options["user_credentials"] = str(settings.nats.credentials_file)
    if settings.nats.nkey_seed_file:
        options["nkeys_seed"] = str(settings.nats.nkey_seed_file)
    tls = _tls_context(settings)
    if tls is not None:
        options["tls"] = tls
    return options


async def connect(
    settings: Settings, name: str, on_state: Callable[[bool], None] = lambda _: None, **extra: Any
) -> Client:
    """Connect; ``on_state(connected)`` follows disconnects and reconnects (for readiness).
    ``extra``: more nats.connect options (the device workers' own ``inbox_prefix``)."""

    async def disconnected() -> None:
        on_state(False)
        logger.warning("disconnected from NATS")

    async def reconnected() -> None:
        on_state(True)
        logger.info("reconnected to NATS")

    last_error: list[Exception] = []

    async def error(exc: Exception) -> None:
        last_error[:] = [exc]
        logger.warning("NATS client error: {}", _describe(exc))

    try:
        client = await asyncio.wait_for(
            nats.connect(
                **connect_options(settings, name),
                **extra,
                disconnected_cb=disconnected,
                reconnected_cb=reconnected,
                error_cb=error,
            ),
            timeout=settings.nats.startup_wait,
        )
    except (OSError, TimeoutError, ValueError, nats.errors.Error, nkeys.NkeysError) as exc:
        servers = ", ".join(settings.nats.url)
        cause = _describe(exc)
        if last_error and last_error[0] is not exc:
            cause += f", last error: {_describe(last_error[0])}"
        raise ConfigError(
            ErrorCode.SERVICE_UNAVAILABLE,
            f"cannot connect to NATS at {servers} ({cause}); is nats-server running? "
            "Check PYATS_NATS_URL and the NATS credentials settings",
        ) from exc
    on_state(True)
    return client
