"""The device layer as the service runs it: Unicon sessions and Genie, built from the settings.

Used by the front (in-process mode) and by each device worker; ``prepare_process`` installs
what Unicon needs once per process, here, never at import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.device import prepare_process
from service.device.genie_parser import GenieOutputParser
from service.device.unicon_logs import LogRouter
from service.device.unicon_session import SessionOptions, UniconSessionFactory

if TYPE_CHECKING:
    from service.config import Settings


def device_layer(
    settings: Settings, route_logs: LogRouter | None = None
) -> tuple[UniconSessionFactory, GenieOutputParser]:
    """The session factory (which owns its jump host sessions: close it) and the parser.

    ``route_logs`` sends each connection's Unicon logger to the service's log (masked); without
    it, Unicon's lines go nowhere.
    """
    prepare_process()
    settings.ssh.known_hosts_file.parent.mkdir(parents=True, exist_ok=True)
    return UniconSessionFactory(SessionOptions.of(settings.ssh), route_logs=route_logs), GenieOutputParser()
