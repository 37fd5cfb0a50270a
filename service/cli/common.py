"""What every command shares: exact option spelling, settings and logging, the bus options."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from service.client.connect import DEFAULT_URL, BusAddress
from service.contract.errors import ConfigError

if TYPE_CHECKING:
    from service.config import Settings


class ExactParser(argparse.ArgumentParser):
    """Options only as spelt in full: argparse's abbreviations took ``--enable-password cisco``
    silently as ``--enable-password-env cisco``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)  # keeps the examples' lines
        super().__init__(*args, **kwargs)


def fail(message: str) -> None:
    """One line on stderr, for errors before logging is set up or outside the service."""
    print(f"pyats-ro: {message}", file=sys.stderr)  # noqa: T201


def load_settings_and_logging(env_file: str) -> Settings | None:
    """Settings from the environment and ``env_file``, and logging set up from them; None
    (after saying why on stderr) when they are invalid."""
    from service.config import load_settings
    from service.observability.logging import setup_logging

    try:
        settings = load_settings(env_file)
    except ConfigError as exc:
        fail(exc.message)
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


def add_bus_arguments(parser: argparse.ArgumentParser, *, requester_side: bool = True) -> None:
    """``--nats-url`` and ``--nats-user``; for requests also ``--prefix`` and ``--inbox-prefix``."""
    parser.add_argument("--nats-url", default=os.environ.get("PYATS_NATS_URL", DEFAULT_URL))
    parser.add_argument(
        "--nats-user", default=os.environ.get("PYATS_NATS_USER"), help="NATS user (password from PYATS_NATS_PASSWORD)"
    )
    if requester_side:
        parser.add_argument("--prefix", default=os.environ.get("PYATS_SUBJECT_PREFIX", "pyats.v1"))
        parser.add_argument(
            "--inbox-prefix",
            default=os.environ.get("PYATS_INBOX_PREFIX", "_INBOX"),
            help="reply inbox prefix; with the shipped nats-server config use _INBOX.<your user>",
        )


def bus_address(args: argparse.Namespace) -> BusAddress:
    return BusAddress.of(args.nats_url, getattr(args, "nats_user", None), getattr(args, "inbox_prefix", None))
