"""``pyats-ro http``: the HTTP gateway (the REST ancestor's routes) in front of the bus."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from service.cli.common import fail, load_settings_and_logging

EXAMPLES = """examples:
  pyats-ro http --new-key alice              # print a key once, and its line for the keys file
  PYATS_GATEWAY_KEYS_FILE=keys.json PYATS_GATEWAY_NATS_USER=gateway pyats-ro http --port 8000
  curl -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \\
       -d @request.json http://127.0.0.1:8000/api/v1/execute"""


def add_parser(commands: Any) -> None:
    http = commands.add_parser(
        "http",
        epilog=EXAMPLES,
        help="serve the REST ancestor's HTTP API as a client of the bus",
        description=(
            "An HTTP gateway: POST /api/v1/execute and the ancestor's other routes, plus streams, history "
            "and diffs. Each API key speaks for one requester; every request travels over NATS."
        ),
    )
    http.add_argument("--env-file", default=".env", help="settings file (PYATS_* variables)")
    http.add_argument("--host", help="bind address (default PYATS_GATEWAY_HOST)")
    http.add_argument("--port", type=int, help="port (default PYATS_GATEWAY_PORT)")
    http.add_argument(
        "--new-key", metavar="REQUESTER", help="print a new API key for REQUESTER and its keys-file entry, then exit"
    )


def run(args: argparse.Namespace) -> int:
    from service.gateway.keys import KeysError, new_key

    if args.new_key:
        try:
            key, line = new_key(args.new_key)
        except KeysError as exc:
            fail(str(exc))
            return 2
        sys.stdout.write(f"API key (shown once, keep it secret): {key}\n")
        sys.stdout.write(f"add to the keys file (PYATS_GATEWAY_KEYS_FILE), inside its object:\n{line}\n")
        return 0
    settings = load_settings_and_logging(args.env_file)
    if settings is None:
        return 2
    import uvicorn

    from service.gateway import build_app

    try:
        app = build_app(settings)
    except KeysError as exc:
        fail(str(exc))
        return 2
    uvicorn.run(
        app,
        host=args.host or settings.gateway.host,
        port=args.port if args.port is not None else settings.gateway.port,
        log_level="warning",
        access_log=False,
    )
    return 0
