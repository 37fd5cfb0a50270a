"""The device layer: Unicon sessions (pty or paramiko), Genie parsing, the inventory.

Unicon's compiled dialog code binds ``inspect.getfullargspec`` when it is imported, so
the cache (``argspec_cache``) is installed here, before anything imports Unicon.
"""

from service.device import argspec_cache

argspec_cache.install()
