"""``pyats-ro worker``: one device worker process; serve starts its own, other machines add theirs."""

from __future__ import annotations

import argparse
from typing import Any

from service.cli.common import fail, load_settings_and_logging
from service.contract.errors import ConfigError

EXAMPLES = """examples:
  pyats-ro worker --id lab-host-1            # on another machine, with the same PYATS_* settings
  PYATS_WORKER_GROUP=core pyats-ro worker    # join the fronts of group 'core' only"""


def add_parser(commands: Any) -> None:
    worker = commands.add_parser(
        "worker",
        help="run one device worker (serve starts its own; run this on more machines to add their cores)",
        epilog=EXAMPLES,
    )
    worker.add_argument("--env-file", default=".env", help="settings file (default: .env)")
    worker.add_argument("--id", help="worker id, unique on the bus (default: <hostname>-<pid>)")
    worker.add_argument("--parent", type=int, help=argparse.SUPPRESS)  # serve's pid: stop when it is gone


def run(args: argparse.Namespace) -> int:
    from service.transport.subjects import sanitize_token
    from service.workers.worker import default_worker_id, run_worker

    settings = load_settings_and_logging(args.env_file)
    if settings is None:
        return 2
    try:
        return run_worker(settings, sanitize_token(args.id or default_worker_id()), args.parent)
    except ConfigError as exc:
        fail(exc.message)
        return 2
