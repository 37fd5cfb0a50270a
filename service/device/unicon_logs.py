"""Unicon's per-connection loggers: routed where the service wants them, dropped after use.

Unicon makes one logger per connection, named ``unicon.<hostname>.<epoch second>``, that
does not propagate; two connections to one host in the same second share it, so uses are
counted. Where its lines go is the service's logging set-up's business: it is passed in
as a ``LogRouter`` (the service passes ``service.observability.logging.route_library_logger``).
Without one, a connection's lines go only to Unicon's own log file (``/dev/null``).

The last use closes the logger's handlers (Unicon never closes its log file itself) and
drops it from the logging registry, which would otherwise keep one per host and second.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["LogRouter", "hold", "release"]

LogRouter = Callable[[logging.Logger], None]

# process-wide, as the logging registry is: connections of different factories may share a logger
_lock = threading.Lock()
_uses: dict[str, int] = {}


def hold(log: logging.Logger, route: LogRouter | None) -> None:
    """One more connection uses ``log``; ``route`` (if any) sends its lines where the service wants them."""
    with _lock:
        _uses[log.name] = _uses.get(log.name, 0) + 1
        if route is not None:
            route(log)


def release(log: logging.Logger) -> None:
    """One use of ``log`` ended; the last one closes its handlers and drops it from the registry."""
    with _lock:
        left = _uses.get(log.name, 0) - 1
        if left > 0:
            _uses[log.name] = left
            return
        _uses.pop(log.name, None)
        for handler in list(log.handlers):
            handler.close()
            log.removeHandler(handler)
        logging.Logger.manager.loggerDict.pop(log.name, None)
