"""Host keys for the paramiko backend, checked as OpenSSH checks them.

Keys come from the target's known_hosts files and the global one. A key of another
type than the one known, or another key of the same type, is refused under every policy
(``SshHostKeyChangedError``); an unknown key is refused under ``yes`` / ``ask``, learned
under ``accept-new`` (appended to the first user file, mode 0600) and accepted under ``no``.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import paramiko

from service.device.ssh.errors import SshHostKeyChangedError, SshHostKeyUnknownError
from service.device.ssh.options import HostKeyPolicy
from service.device.ssh.target import SshTarget

__all__ = ["check_host_key", "load_known_hosts", "prefer_known_key_types"]

_GLOBAL_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts",)
_WRITE_LOCK = threading.Lock()


def load_known_hosts(target: SshTarget) -> dict[str, Any]:
    """Keys known for the target, by key type, from the user and global files."""
    keys = paramiko.HostKeys()
    for name in (*target.known_hosts_files, *_GLOBAL_KNOWN_HOSTS):
        path = Path(name).expanduser()
        if path.is_file() or name == os.devnull:
            keys.load(str(path))
    found = keys.lookup(target.known_hosts_name)
    return dict(found) if found is not None else {}


def check_host_key(target: SshTarget, key: Any, known: dict[str, Any], role: str = "") -> None:
    """Accept ``key`` for ``target`` under its policy, or raise; ``role`` names a jump host in messages."""
    kind = key.get_name()
    if known:
        if known.get(kind) == key:
            return
        # a key of another type only: the host no longer offers the type we know (we asked for it first)
        raise SshHostKeyChangedError(
            f"WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! The {kind} host key for {role}"
            f"{target.known_hosts_name} does not match known_hosts. Host key verification failed."
        )
    if target.host_key_policy is HostKeyPolicy.NO:
        return
    if target.host_key_policy is HostKeyPolicy.ACCEPT_NEW:
        _remember_host_key(target, key)
        return
    raise SshHostKeyUnknownError(
        f"No {kind} host key is known for {role}{target.known_hosts_name} and you have requested strict checking. "
        "Host key verification failed."
    )


def prefer_known_key_types(transport: Any, known: dict[str, Any]) -> None:
    """Ask for the key types already known first, as OpenSSH does, so a second key type is not 'changed'."""
    if not known:
        return

    def is_known(algorithm: str) -> bool:
        return algorithm in known or ("ssh-rsa" in known and algorithm.startswith("rsa-sha2-"))

    options = transport.get_security_options()
    available = list(options.key_types)
    options.key_types = [a for a in available if is_known(a)] + [a for a in available if not is_known(a)]


def _remember_host_key(target: SshTarget, key: Any) -> None:
    """``accept-new``: append the key to the first user known_hosts file, once (mode 0600)."""
    name = target.known_hosts_files[0]
    if name == os.devnull:
        return
    path = Path(name).expanduser()
    with _WRITE_LOCK:
        if key.get_name() in load_known_hosts(target):
            return
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        line = f"{target.known_hosts_name} {key.get_name()} {key.get_base64()}\n"
        handle = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(handle, line.encode())
        finally:
            os.close(handle)
