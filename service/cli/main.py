"""``pyats-ro``: serve, request, lab and demo. Settings are built once, here."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from service import __version__
from service.domain.errors import ConfigError


def _settings(env_file: str) -> Any:
    """Settings from the environment and ``env_file``, and logging set up from them; None
    (after saying why on stderr) when they are invalid."""
    from service.config import load_settings
    from service.observability.logging import setup_logging

    try:
        settings = load_settings(env_file)
    except ConfigError as exc:
        print(f"pyats-ro: {exc.message}", file=sys.stderr)  # noqa: T201 - logging is not set up yet
        return None
    setup_logging(
        settings.logging.level,
        settings.logging.format.value,
        settings.logging.file,
        settings.logging.rotation,
        settings.logging.retention,
        settings.logging.asynchronous,
        settings.logging.library_level,
    )
    return settings


def _serve(args: argparse.Namespace) -> int:
    from service.app import App
    from service.devtools.local_server import LocalNatsServer

    settings = _settings(args.env_file)
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
        print(f"pyats-ro: {exc.message}", file=sys.stderr)  # noqa: T201
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


def _worker(args: argparse.Namespace) -> int:
    from service.transport.subjects import sanitize_token
    from service.workers.worker import default_worker_id, run_worker

    settings = _settings(args.env_file)
    if settings is None:
        return 2
    try:
        return run_worker(settings, sanitize_token(args.id or default_worker_id()), args.parent)
    except ConfigError as exc:
        print(f"pyats-ro: {exc.message}", file=sys.stderr)  # noqa: T201
        return 2


def _parse_command(text: str) -> dict[str, Any]:
    """'show run | section bgp' -> command with pipe_option/pipe_value, as an engineer types it."""
    command, sep, pipe = text.partition("|")
    entry: dict[str, Any] = {"command": command.strip()}
    if sep:
        option, _, value = pipe.strip().partition(" ")
        entry["pipe_option"] = option.strip()
        entry["pipe_value"] = value.strip()
    return entry


def _device_entry(spec: str, args: argparse.Namespace, password: str, enable: str | None) -> dict[str, Any]:
    host, port = spec, 22
    if spec.count(":") == 1:
        host, _, port_text = spec.partition(":")
        port = int(port_text)
    elif spec.startswith("[") and "]:" in spec:
        host, _, port_text = spec[1:].partition("]:")
        port = int(port_text)
    entry: dict[str, Any] = {
        "hostname": host,
        "port": port,
        "os": args.os,
        "username": args.username,
        "password": password,
    }
    if enable:
        entry["enable_password"] = enable
    return entry


def build_request(args: argparse.Namespace) -> dict[str, Any]:
    if args.file:
        request: dict[str, Any] = json.loads(Path(args.file).read_text())
        return request
    if not args.device or not args.command:
        raise SystemExit("pyats-ro request: give --device and --command, or --file request.json")
    password = os.environ.get(args.password_env) or getpass.getpass("Device password: ")
    enable = os.environ.get(args.enable_password_env) if args.enable_password_env else None
    request = {
        "devices": [_device_entry(d, args, password, enable) for d in args.device],
        "commands": [_parse_command(c) for c in args.command],
        "output_format": args.format,
    }
    if args.timeout:
        request["timeout"] = args.timeout
    return request


def _request(args: argparse.Namespace) -> int:
    from service.cli.execute import run_request

    return asyncio.run(run_request(args, build_request(args)))


def _lab(args: argparse.Namespace, rest: list[str]) -> int:
    from service.devtools.lab.cli import main as lab_main

    return lab_main(rest)


def _demo(args: argparse.Namespace) -> int:
    from service.cli.demo import run_demo

    return run_demo(devices=args.devices, latency=args.latency, data_dir=Path(args.data_dir))


class _ExactParser(argparse.ArgumentParser):
    """Options only as spelt in full: argparse's abbreviations took ``--enable-password cisco``
    silently as ``--enable-password-env cisco``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)  # keeps the examples' lines
        super().__init__(*args, **kwargs)


EXAMPLES = {
    "serve": """examples:
  pyats-ro serve --with-nats                 # the service and a bundled nats-server with JetStream
  PYATS_NATS_URL=nats://nats:4222 pyats-ro serve
  PYATS_DEVICE_WORKERS=4 pyats-ro serve      # 4 device worker processes (default: one per core)""",
    "worker": """examples:
  pyats-ro worker --id lab-host-1            # on another machine, with the same PYATS_* settings
  PYATS_WORKER_GROUP=core pyats-ro worker    # join the fronts of group 'core' only""",
    "request": """examples:
  pyats-ro request -d 10.0.0.1 -c 'show version' --os iosxe
  pyats-ro request -d r1:2222 -d r2 -c 'show ip interface brief | include up' -f parsed
  pyats-ro request -d r1 -c 'show clock' --requester alice --nats-user alice --inbox-prefix _INBOX.alice
  pyats-ro request --file request.json --json""",
    "status": """examples:
  pyats-ro status                            # replicas, then their device workers
  pyats-ro status --json --wait 2""",
    "demo": """examples:
  pyats-ro demo                              # nats-server, 10 lab devices, the service, one request
  pyats-ro demo --devices 50 --latency 0.2""",
    "history": """examples:
  pyats-ro history -d 10.0.0.1 -c 'show version' --since 24h
  pyats-ro history --requester alice --latest --json""",
    "diff": """examples:
  pyats-ro diff -d 10.0.0.1 -c 'show ip route' --from 24h --to latest
  pyats-ro diff --a REQUEST_ID_1 --b REQUEST_ID_2 --text""",
}


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="pyats-ro", description="Read-only Cisco show commands over NATS.", allow_abbrev=False
    )
    root.add_argument("--version", action="version", version=f"pyats-ro {__version__}")
    commands = root.add_subparsers(dest="verb", required=True, parser_class=_ExactParser)

    serve = commands.add_parser(
        "serve", help="run the service (settings from PYATS_* variables and .env)", epilog=EXAMPLES["serve"]
    )
    serve.add_argument("--env-file", default=".env", help="settings file (default: .env)")
    serve.add_argument(
        "--with-nats", action="store_true", help="also start the bundled nats-server unless PYATS_NATS_URL is set"
    )
    serve.add_argument("--nats-port", type=int, default=4222, help="port of the bundled nats-server")
    serve.add_argument("--data-dir", default=".data", help="where the bundled nats-server keeps JetStream data")

    worker = commands.add_parser(
        "worker",
        help="run one device worker (serve starts its own; run this on more machines to add their cores)",
        epilog=EXAMPLES["worker"],
    )
    worker.add_argument("--env-file", default=".env", help="settings file (default: .env)")
    worker.add_argument("--id", help="worker id, unique on the bus (default: <hostname>-<pid>)")
    worker.add_argument("--parent", type=int, help=argparse.SUPPRESS)  # serve's pid: stop when it is gone

    request = commands.add_parser(
        "request", help="send a request and show results per device", epilog=EXAMPLES["request"]
    )
    request.add_argument("--file", help="a request as JSON (the wire format)")
    request.add_argument("-d", "--device", action="append", help="host or host:port; repeat for more devices")
    request.add_argument(
        "-c", "--command", action="append", help="a show command, e.g. 'show ip int brief | include up'; repeat"
    )
    request.add_argument("--os", default="iosxe", help="device OS: ios, iosxe, iosxr, nxos, asa")
    request.add_argument("-u", "--username", default=os.environ.get("USER", "admin"))
    request.add_argument(
        "--password-env", default="PYATS_DEVICE_PASSWORD", help="variable holding the device password (else prompted)"
    )
    request.add_argument("--enable-password-env", help="variable holding the enable password")
    request.add_argument("-f", "--format", choices=["raw", "parsed", "both"], default="raw")
    request.add_argument("--timeout", type=float, help="per-command timeout in seconds")
    request.add_argument("--requester", default=os.environ.get("USER", "cli"), help="last subject token: who is asking")
    request.add_argument("--nats-url", default=os.environ.get("PYATS_NATS_URL", "nats://127.0.0.1:4222"))
    request.add_argument("--prefix", default=os.environ.get("PYATS_SUBJECT_PREFIX", "pyats.v1"))
    request.add_argument(
        "--inbox-prefix",
        default=os.environ.get("PYATS_INBOX_PREFIX", "_INBOX"),
        help="reply inbox prefix; with the shipped nats-server config use _INBOX.<your user>",
    )
    request.add_argument(
        "--nats-user", default=os.environ.get("PYATS_NATS_USER"), help="NATS user (password from PYATS_NATS_PASSWORD)"
    )
    request.add_argument("--wait", type=float, default=120.0, help="seconds to wait between two replies")
    request.add_argument("--json", action="store_true", help="print JSON instead of tables")
    request.add_argument("--show-output", action="store_true", help="print each command's output under the table")

    from service.cli.history import add_diff_parser, add_history_parser

    add_history_parser(commands, EXAMPLES["history"])
    add_diff_parser(commands, EXAMPLES["diff"])

    commands.add_parser("lab", help="run the fake Cisco device lab (pyats-ro lab --help)", add_help=False)

    status = commands.add_parser(
        "status", help="every replica's version, uptime, requests, errors and latency", epilog=EXAMPLES["status"]
    )
    status.add_argument("--nats-url", default=os.environ.get("PYATS_NATS_URL", "nats://127.0.0.1:4222"))
    status.add_argument("--nats-user", default=os.environ.get("PYATS_NATS_USER"))
    status.add_argument("--service", default="pyats-ro", help="nats.micro service name")
    status.add_argument("--wait", type=float, default=1.0, help="seconds to collect replies")
    status.add_argument("--json", action="store_true")

    demo = commands.add_parser(
        "demo", help="nats-server + lab + service, one sample request, results printed", epilog=EXAMPLES["demo"]
    )
    demo.add_argument("--devices", type=int, default=10)
    demo.add_argument("--latency", type=float, default=0.1)
    demo.add_argument("--data-dir", default=".data/demo")
    return root


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["lab"]:
        return _lab(argparse.Namespace(), argv[1:])
    args = parser().parse_args(argv)
    if args.verb == "serve":
        return _serve(args)
    if args.verb == "worker":
        return _worker(args)
    if args.verb == "request":
        return _request(args)
    if args.verb in ("history", "diff"):
        from service.cli.history import diff_main, history_main

        return history_main(args) if args.verb == "history" else diff_main(args)
    if args.verb == "status":
        from service.cli.status import run_status

        return run_status(args)
    return _demo(args)


if __name__ == "__main__":
    sys.exit(main())
