"""Where the paramiko backend connects: the typed options, completed by the ssh_config file.

``resolve`` does what OpenSSH does with its command line and ``-F`` file: the options
given win, the file fills the gaps, then the defaults. A jump host (``ProxyJump``, a
comma-separated chain) is resolved the same way from its own Host block, and takes the
session's host-key policy, known_hosts, timeout and jump settings where that block says
nothing (OpenSSH would read only the block). A jump host's own Host block wins over the
session's ``StrictHostKeyChecking`` / ``UserKnownHostsFile``, which OpenSSH would not
apply to a jump host at all. Legacy algorithms are the device's only, never its jump
hosts' (OpenSSH does not pass ``-o`` to a ProxyJump either).
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from service.device.ssh import config as ssh_config
from service.device.ssh.errors import SshOptionsError
from service.device.ssh.options import HostKeyPolicy, SshOptions
from service.domain.legacy_ssh import LEGACY_ALGORITHMS

__all__ = ["DEFAULT_JUMP_RATE", "DEFAULT_KNOWN_HOSTS", "SshTarget", "resolve"]

DEFAULT_JUMP_RATE = 10.0  # new connections per second through one jump host; 0 = no limit
DEFAULT_KNOWN_HOSTS = ("~/.ssh/known_hosts",)
_MAX_JUMPS = 8
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class SshTarget:
    """One host to connect to, every setting decided."""

    host: str
    port: int
    username: str
    host_key_policy: HostKeyPolicy = HostKeyPolicy.ASK
    known_hosts_files: tuple[str, ...] = DEFAULT_KNOWN_HOSTS
    connect_timeout: float | None = None
    identity_files: tuple[str, ...] = ()
    pubkey_authentication: bool = True
    passphrase_env: str | None = None  # the identities' passphrase is in this environment variable
    password_env: str | None = None  # jump hosts only: their password is in this environment variable
    jump_rate: float = DEFAULT_JUMP_RATE  # jump hosts only: new connections per second through this host
    jumps: tuple[SshTarget, ...] = ()  # the ProxyJump chain, first hop first (each hop's own ``jumps`` empty)
    legacy_algorithms: tuple[str, ...] = ()  # legacy SSH algorithms this host may use (never inherited by jumps)

    @property
    def known_hosts_name(self) -> str:
        """The host as known_hosts names it: ``host``, or ``[host]:port`` off port 22."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


@dataclass(frozen=True, slots=True)
class _Asked:
    """What is asked for one host; ``None`` where the ssh_config file (then a fallback) decides."""

    port: int | None = None
    user: str = ""
    jump: str | None = None  # a ProxyJump spec (OpenSSH's "none": none)
    through_previous_hop: bool = False  # a later hop of a chain: no ProxyJump of its own, whatever the file says
    host_key_policy: HostKeyPolicy | None = None
    known_hosts_files: tuple[str, ...] | None = None
    connect_timeout: float | None = None
    identity_files: tuple[str, ...] = ()
    pubkey_authentication: bool = True
    jump_rate: float | None = None
    jump_password_env: str | None = None
    legacy_algorithms: tuple[str, ...] = ()


def resolve(options: SshOptions) -> SshTarget:
    """The device of ``options`` and its jump chain, as OpenSSH would resolve them."""
    asked = _Asked(
        port=options.port,
        user=options.username,
        jump=options.jump_host,
        host_key_policy=options.host_key_policy,
        known_hosts_files=options.known_hosts_files,
        connect_timeout=options.connect_timeout,
        identity_files=() if options.identity_file is None else (str(options.identity_file),),
        pubkey_authentication=options.keys_first,
        jump_rate=options.jump_rate,
        jump_password_env=options.jump_password_env,
        legacy_algorithms=_legacy_algorithms(options.legacy_algorithms),
    )
    # what a jump host takes from the session where its own Host block says nothing
    fallback = _Asked(
        host_key_policy=asked.host_key_policy,
        known_hosts_files=asked.known_hosts_files,
        connect_timeout=asked.connect_timeout,
        jump_rate=asked.jump_rate,
        jump_password_env=asked.jump_password_env,
    )
    return _resolve(_unbracket(options.host), asked, fallback, options.config_file, 0)


def _resolve(alias: str, asked: _Asked, fallback: _Asked, config: Path | None, depth: int) -> SshTarget:
    try:
        found = ssh_config.resolve(alias, config)
    except ssh_config.SshConfigError as exc:
        raise SshOptionsError(str(exc)) from exc
    known = asked.known_hosts_files if asked.known_hosts_files is not None else found.user_known_hosts_files
    if not known and fallback.known_hosts_files is not None:
        known = fallback.known_hosts_files
    rate = _first(asked.jump_rate, found.jump_rate, fallback.jump_rate)
    jump_spec = None if asked.through_previous_hop else asked.jump or found.proxy_jump
    jumps = _jump_chain(jump_spec, fallback, config, depth) if jump_spec and jump_spec.lower() != "none" else ()
    return SshTarget(
        host=_unbracket(found.hostname),
        port=asked.port if asked.port is not None else (found.port or 22),
        username=asked.user or found.user or getpass.getuser(),
        host_key_policy=(
            _first(asked.host_key_policy, found.strict_host_key_checking, fallback.host_key_policy) or HostKeyPolicy.ASK
        ),
        known_hosts_files=known or DEFAULT_KNOWN_HOSTS,
        connect_timeout=_first(asked.connect_timeout, found.connect_timeout, fallback.connect_timeout),
        identity_files=(*asked.identity_files, *found.identity_files),
        pubkey_authentication=asked.pubkey_authentication,
        passphrase_env=found.passphrase_env,
        password_env=asked.jump_password_env or found.password_env or fallback.jump_password_env,
        jump_rate=DEFAULT_JUMP_RATE if rate is None else rate,
        jumps=jumps,
        legacy_algorithms=asked.legacy_algorithms,
    )


def _jump_chain(spec: str, fallback: _Asked, config: Path | None, depth: int) -> tuple[SshTarget, ...]:
    """``a,b`` -> (a, b): b is reached through a. Only the first hop's own ProxyJump applies, as in OpenSSH."""
    hops = [item for item in spec.split(",") if item.strip()]
    if depth + len(hops) > _MAX_JUMPS:
        raise SshOptionsError(f"ProxyJump chain longer than {_MAX_JUMPS} hops (a loop in the ssh_config?)")
    chain: list[SshTarget] = []
    for position, text in enumerate(hops):
        user, alias, port = _split_host(text)
        asked = _Asked(port=port, user=user, through_previous_hop=position > 0)
        hop = _resolve(alias, asked, fallback, config, depth + len(hops))
        chain.extend(hop.jumps)
        chain.append(replace(hop, jumps=()))
    return tuple(chain)


def _split_host(text: str) -> tuple[str, str, int | None]:
    """``[ssh://][user@]host[:port]`` (``[v6]:port`` too) -> (user, host, port)."""
    text = text.strip().removeprefix("ssh://")
    user, _, rest = text.rpartition("@")
    port: int | None = None
    try:
        if rest.startswith("["):
            host, _, tail = rest[1:].partition("]")
            if tail.startswith(":"):
                port = int(tail[1:])
        elif rest.count(":") == 1:
            host, _, number = rest.partition(":")
            port = int(number)
        else:
            host = rest
    except ValueError as exc:
        raise SshOptionsError(f"invalid jump host {text!r}: the port is not a number") from exc
    if not host:
        raise SshOptionsError(f"invalid jump host {text!r}")
    return user, host, port


def _legacy_algorithms(names: tuple[str, ...]) -> tuple[str, ...]:
    for name in names:
        if name not in LEGACY_ALGORITHMS:
            raise SshOptionsError(f"{name[:60]!r} is not a legacy algorithm this backend can add")
    return tuple(dict.fromkeys(names))


def _first(*values: _T | None) -> _T | None:
    return next((value for value in values if value is not None), None)


def _unbracket(host: str) -> str:
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host
