"""OpenSSH-style ssh_config files, read with ``paramiko.SSHConfig``: what applies to one host.

For users coming from an SSH-config set-up: the pty backend's OpenSSH reads the file
natively (``-F PATH``); the paramiko backend reads it here (``target.resolve``).
Keywords honoured by the paramiko backend: ``Host`` patterns (and ``Match`` as paramiko
implements it), ``HostName``, ``User``, ``Port``, ``IdentityFile``, ``ProxyJump``,
``UserKnownHostsFile``, ``StrictHostKeyChecking`` and ``ConnectTimeout``. First value
wins, as in OpenSSH; ``Include`` is not supported.

Three keywords of our own (paramiko backend only; OpenSSH needs ``IgnoreUnknown Pyats*``
at the top of the file to accept them):

* ``PyatsPasswordEnv VAR``: a jump host's password is in the environment variable VAR
  (never in the file, never on a command line);
* ``PyatsIdentityPassphraseEnv VAR``: the passphrase of this host's ``IdentityFile`` keys;
* ``PyatsJumpRate N``: at most N new connections per second through this jump host.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import paramiko

from service.device.ssh.options import HostKeyPolicy

__all__ = ["SshConfigError", "SshHostConfig", "load", "resolve"]

_CACHE: dict[str, tuple[tuple[int, int], paramiko.SSHConfig]] = {}
_CACHE_LOCK = threading.Lock()


class SshConfigError(ValueError):
    """The file cannot be read, or a value in it is not valid."""


@dataclass(frozen=True, slots=True)
class SshHostConfig:
    """The ssh_config values for one host name; ``None`` / empty where the file says nothing."""

    alias: str
    hostname: str
    port: int | None = None
    user: str | None = None
    identity_files: tuple[str, ...] = ()
    proxy_jump: str | None = None
    user_known_hosts_files: tuple[str, ...] = ()
    strict_host_key_checking: HostKeyPolicy | None = None
    connect_timeout: float | None = None
    password_env: str | None = None
    passphrase_env: str | None = None
    jump_rate: float | None = None


def load(path: Path | str) -> paramiko.SSHConfig:
    """The parsed file, cached until its size or mtime changes."""
    name = str(Path(path).expanduser())
    try:
        stat = Path(name).stat()
    except OSError as exc:
        raise SshConfigError(f"Can't open user config file {name}: {exc.strerror}") from exc
    stamp = (stat.st_mtime_ns, stat.st_size)
    with _CACHE_LOCK:
        cached = _CACHE.get(name)
        if cached is not None and cached[0] == stamp:
            return cached[1]
    try:
        config = paramiko.SSHConfig.from_path(name)
    except (OSError, UnicodeDecodeError, paramiko.ConfigParseError) as exc:
        raise SshConfigError(f"{name}: cannot be read as an ssh_config file ({type(exc).__name__})") from exc
    with _CACHE_LOCK:
        _CACHE[name] = (stamp, config)
    return config


def _number(found: dict[str, object], key: str, kind: type[int] | type[float], where: str) -> float | None:
    raw = found.get(key)
    if raw is None:
        return None
    try:
        return kind(str(raw))
    except ValueError as exc:
        raise SshConfigError(f"{where}: {key} {raw!r} is not a number") from exc


def resolve(host: str, path: Path | str | None) -> SshHostConfig:
    """What the file says for ``host`` (the name as typed: an alias or an address)."""
    if path is None:
        return SshHostConfig(alias=host, hostname=host)
    where = str(path)
    try:
        found = dict(load(path).lookup(host))
    except paramiko.SSHException as exc:  # e.g. "Match exec" without the invoke package
        raise SshConfigError(f"{where}: {exc}") from exc
    port = _number(found, "port", int, where)
    jump = found.get("proxyjump")
    strict = found.get("stricthostkeychecking")
    identities = found.get("identityfile") or []
    known = found.get("userknownhostsfile")
    rate = _number(found, "pyatsjumprate", float, where)
    timeout = _number(found, "connecttimeout", float, where)
    return SshHostConfig(
        alias=host,
        hostname=str(found.get("hostname") or host),
        port=None if port is None else int(port),
        user=str(found["user"]) if found.get("user") else None,
        identity_files=tuple(str(item) for item in identities) if isinstance(identities, list) else (str(identities),),
        proxy_jump=None if jump is None or str(jump).lower() == "none" else str(jump),
        user_known_hosts_files=tuple(str(known).split()) if known else (),
        strict_host_key_checking=HostKeyPolicy.parse(str(strict)) if strict else None,
        connect_timeout=timeout,
        password_env=str(found["pyatspasswordenv"]) if found.get("pyatspasswordenv") else None,
        passphrase_env=str(found["pyatsidentitypassphraseenv"]) if found.get("pyatsidentitypassphraseenv") else None,
        jump_rate=rate,
    )
