"""One way to create or update a JetStream stream (results, jobs, ticks, changes) or KV bucket
the service owns.

It creates the stream when missing, refuses one that exists for other subjects, keeps the
``deny_delete``/``deny_purge`` flags as found (nats-server never lets them be turned off),
and turns every JetStream refusal into a ``ConfigError`` that names the setting to change.
``JetStreamUnavailableError`` says the server has no JetStream at all (no responders,
service unavailable, a timeout): the caller decides whether that is fatal.
"""

from __future__ import annotations

import nats.errors
import nats.js.errors
from loguru import logger
from nats.js import api
from nats.js.client import JetStreamContext
from nats.js.kv import KeyValue

from service.contract.errors import ConfigError, ErrorCode


class JetStreamUnavailableError(Exception):
    """The NATS server answered no JetStream request."""


_UNAVAILABLE = (nats.errors.NoRespondersError, nats.js.errors.ServiceUnavailableError, TimeoutError)


async def ensure_stream(js: JetStreamContext, config: api.StreamConfig, setting: str) -> api.StreamConfig:
    """Create ``config`` or bring the existing stream to it; return the stream's config as applied.

    ``setting`` names the variables an operator changes to fix a mismatch (``PYATS_RESULTS_*``).
    """
    name = str(config.name)
    wanted = list(config.subjects or [])
    try:
        try:
            existing = await js.stream_info(name)
        except nats.js.errors.NotFoundError:
            await js.add_stream(config)
            logger.info("created JetStream stream {} for {}", name, ", ".join(wanted))
            return config
        found = list(existing.config.subjects or [])
        if not set(wanted) <= set(found):
            raise ConfigError(
                ErrorCode.CONFIG_INVALID,
                f"the JetStream stream {name} exists for {', '.join(found)}, not {', '.join(wanted)}; "
                f"give this prefix its own stream with {setting.rstrip('*')}STREAM",
            )
        if config.deny_delete or config.deny_purge:
            config.deny_delete = bool(existing.config.deny_delete)
            config.deny_purge = bool(existing.config.deny_purge)
        await js.update_stream(config)
    except _UNAVAILABLE:
        raise JetStreamUnavailableError(f"no JetStream answered for stream {name}") from None
    except nats.js.errors.APIError as exc:
        raise ConfigError(
            ErrorCode.CONFIG_INVALID,
            f"the JetStream stream {name} cannot take these settings ({exc.description}); "
            f"change {setting} to match it, or remove the stream",
        ) from None
    logger.info("JetStream stream {} is up to date", name)
    return config


async def ensure_bucket(js: JetStreamContext, config: api.KeyValueConfig, setting: str) -> KeyValue:
    """The KV bucket, created as ``config`` says when missing; ``setting`` names the variable an
    operator changes when JetStream refuses it (``PYATS_CHANGES_BUCKET``)."""
    try:
        try:
            return await js.key_value(config.bucket)
        except nats.js.errors.BucketNotFoundError:
            kv = await js.create_key_value(config)
            logger.info("created KV bucket {}", config.bucket)
            return kv
    except _UNAVAILABLE:
        raise JetStreamUnavailableError(f"no JetStream answered for KV bucket {config.bucket}") from None
    except nats.js.errors.APIError as exc:
        raise ConfigError(
            ErrorCode.CONFIG_INVALID,
            f"the KV bucket {config.bucket} cannot be used ({exc.description}); change {setting}, or remove the bucket",
        ) from None
