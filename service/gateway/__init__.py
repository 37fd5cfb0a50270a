"""The HTTP gateway (``pyats-ro http``): a thin HTTP client of the bus for the REST ancestor's callers."""

from __future__ import annotations

import os

from fastapi import FastAPI

from service.config import Settings
from service.gateway.app import GatewayOptions, create_app
from service.gateway.bus import Connections, GatewayBus
from service.gateway.keys import KeyStore


def load_keys(settings: Settings) -> KeyStore:
    """The keys of ``PYATS_GATEWAY_KEYS_FILE`` and of the variable named by ``PYATS_GATEWAY_KEYS_ENV``."""
    return KeyStore.load(settings.gateway.keys_file, os.environ.get(settings.gateway.keys_env))


def build_app(settings: Settings, keys: KeyStore | None = None) -> FastAPI:
    """The gateway's app from the settings (``KeysError`` when the keys are malformed)."""
    options = GatewayOptions(
        prefix=settings.bus.subject_prefix,
        request_timeout=settings.gateway.request_timeout,
        max_payload_bytes=settings.requests.max_payload_bytes,
    )
    return create_app(keys if keys is not None else load_keys(settings), Connections(GatewayBus.of(settings)), options)
