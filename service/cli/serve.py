"""``pyats-ro serve``: the service (front and its device workers), optionally on a bundled nats-server."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path
from typing import Any

from service.cli.common import fail, load_settings_and_logging
from service.contract.errors import ConfigError

EXAMPLES = """examples:
  pyats-ro serve --with-nats                 # the service and a bundled nats-server with JetStream
  PYATS_NATS_URL=nats://nats:4222 pyats-ro serve
  PYATS_DEVICE_WORKERS=4 pyats-ro serve      # 4 device worker processes (default: one per core)"""


def add_parser(commands: Any) -> None:
    serve = commands.add_parser(
        "serve", help="run the service (settings from PYATS_* variables and .env)", epilog=EXAMPLES
    )
    serve.add_argument("--env-file", default=".env", help="settings file (default: .env)")
    serve.add_argument(
        "--with-nats", action="store_true", help="also start the bundled nats-server unless PYATS_NATS_URL is set"
    )
    serve.add_argument("--nats-port", type=int, default=4222, help="port of the bundled nats-server")
    serve.add_argument("--data-dir", default=".data", help="where the bundled nats-server keeps JetStream data")


def run(args: argparse.Namespace) -> int:
    from service.app import App
    from service.devtools.local_server import LocalNatsServer

    settings = load_settings_and_logging(args.env_file)
    if settings is None:
        return 2
    local: LocalNatsServer | None = None
    if args.with_nats and "url" not in settings.nats.model_fields_set:
        local = LocalNatsServer(Path(args.data_dir) / "nats", port=args.nats_port)
        local.start()
        settings = settings.model_copy(update={"nats": settings.nats.model_copy(update={"url": [local.url]})})
        from loguru import logger

        logger.info("started bundled nats-server at {} (JetStream data in {})", local.url, local.data_dir)
    try:
        return asyncio.run(_run_app(App(settings, env_file=args.env_file)))
    except ConfigError as exc:
        fail(exc.message)
        return 2
    finally:
        if local is not None:
            local.stop()


async def _run_app(app: Any) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, app.reload)
    await app.run(stop)
    return 0
