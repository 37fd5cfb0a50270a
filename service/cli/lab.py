"""``pyats-ro lab``: the fake Cisco device lab; its own options (``pyats-ro lab --help``)."""

from __future__ import annotations

from typing import Any


def add_parser(commands: Any) -> None:
    commands.add_parser("lab", help="run the fake Cisco device lab (pyats-ro lab --help)", add_help=False)


def run(rest: list[str]) -> int:
    from service.devtools.lab.cli import main as lab_main

    return lab_main(rest)
