"""``pyats-ro``: the parser and the dispatch; each command lives in its own module beside this one."""

from __future__ import annotations

import argparse
import sys

from service import __version__
from service.cli import demo, diff, history, http, lab, mcp, request, schedule, serve, status, watch, worker
from service.cli.common import ExactParser

COMMANDS = {
    "serve": serve,
    "worker": worker,
    "request": request,
    "history": history,
    "diff": diff,
    "schedule": schedule,
    "watch": watch,
    "status": status,
    "demo": demo,
    "http": http,
    "mcp": mcp,
}
EXAMPLES = {name: module.EXAMPLES for name, module in COMMANDS.items()}


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="pyats-ro", description="Read-only Cisco show commands over NATS.", allow_abbrev=False
    )
    root.add_argument("--version", action="version", version=f"pyats-ro {__version__}")
    commands = root.add_subparsers(dest="verb", required=True, parser_class=ExactParser)
    for name in ("serve", "worker", "request", "history", "diff", "schedule", "watch"):
        COMMANDS[name].add_parser(commands)
    lab.add_parser(commands)
    for name in ("status", "demo", "http", "mcp"):
        COMMANDS[name].add_parser(commands)
    return root


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["lab"]:
        return lab.run(argv[1:])  # the lab parses its own options
    args = parser().parse_args(argv)
    result: int = COMMANDS[args.verb].run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
