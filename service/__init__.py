"""pyats-ro-bus: read-only Cisco show commands over a NATS bus."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pyats-ro-bus")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"
