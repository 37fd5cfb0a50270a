"""Logging is configured here and nowhere else.

loguru carries ``request_id``, ``requester`` and ``device`` through
``logger.contextualize``; standard-library loggers (nats, unicon, genie, paramiko,
asyncssh) are routed into it, so their lines carry the same context. ``diagnose`` is
off: loguru would otherwise print variable values (passwords among them) in tracebacks.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from service.domain.live_secrets import LIVE_SECRETS

if TYPE_CHECKING:
    from loguru import Record

LIBRARY_LOGGERS = ("nats", "unicon", "genie", "pyats", "paramiko", "asyncssh")
_library_level = logging.WARNING
_CONTEXT_DEFAULTS = {"request_id": "-", "requester": "-", "device": "-"}
_TEXT_FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
    "<cyan>{extra[request_id]}</cyan> {extra[requester]} {extra[device]} | {message}"
)


class _InterceptHandler(logging.Handler):
    """Hands standard-library records to loguru, keeping the caller's module; live secrets masked."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        message = LIVE_SECRETS.mask(record.getMessage())
        logger.opt(depth=6, exception=record.exc_info).bind(module_name=record.name).log(level, message)


def _json_line(record: Record) -> str:
    extra = record["extra"]
    entry: dict[str, Any] = {
        "time": record["time"].isoformat(),
        "level": record["level"].name,
        "message": record["message"],
        "request_id": extra.get("request_id", "-"),
        "requester": extra.get("requester", "-"),
        "device": extra.get("device", "-"),
        "module": extra.get("module_name", record["name"]),
        "thread": record["thread"].name,
    }
    if record["exception"] is not None and record["exception"].type is not None:
        entry["exception"] = record["exception"].type.__name__
    extra["_json"] = json.dumps(entry, default=str)
    return "{extra[_json]}\n"


def setup_logging(
    level: str = "INFO",
    fmt: str = "text",
    file: Path | None = None,
    rotation: str = "50 MB",
    retention: str = "14 days",
    enqueue: bool = False,
    library_level: str = "WARNING",
) -> None:
    logger.remove()
    logger.configure(extra=dict(_CONTEXT_DEFAULTS))
    formatter: Any = _json_line if fmt == "json" else _TEXT_FORMAT
    logger.add(
        sys.stderr,
        level=level,
        format=formatter,
        colorize=fmt != "json" and sys.stderr.isatty(),
        enqueue=enqueue,
        backtrace=False,
        diagnose=False,
    )
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        logger.add(
            file,
            level=level,
            format=formatter,
            rotation=rotation,
            retention=retention,
            enqueue=enqueue,
            backtrace=False,
            diagnose=False,
        )
    logging.basicConfig(handlers=[_InterceptHandler()], level=0, force=True)
    library = logging.getLevelName(library_level if library_level != "SUCCESS" else "INFO")
    global _library_level  # noqa: PLW0603 - one logging set-up per process, like loguru's own
    _library_level = library if isinstance(library, int) else logging.WARNING
    for name in LIBRARY_LOGGERS:
        lib_logger = logging.getLogger(name)
        lib_logger.handlers = [_InterceptHandler()]
        lib_logger.propagate = False
        lib_logger.setLevel(_library_level)


def route_library_logger(log: logging.Logger) -> None:
    """Route a library logger that does not propagate into loguru at the library level.

    For Unicon's per-connection loggers (``unicon.<hostname>.<epoch second>``): the device
    layer is given this function, calls it for each connection, and drops the logger after
    the connection's end (``service.device.unicon_logs``). Idempotent.
    """
    if not any(isinstance(handler, _InterceptHandler) for handler in log.handlers):
        log.addHandler(_InterceptHandler(level=_library_level))
    # lower the logger's own level only: other handlers (the login transcript) need INFO
    log.setLevel(min(log.getEffectiveLevel(), _library_level))
