"""One device's SSH connection as the service asks for it, typed; both backends take it.

The paramiko backend reads ``SshOptions`` as they are (``target.resolve`` adds the
ssh_config file). The pty backend runs OpenSSH, so ``openssh_command`` writes the same
options as an OpenSSH command line: the only place they become text, and nothing parses
it back.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from service.domain.legacy_ssh import AlgorithmKind, of_kind
from service.domain.ssh import HostKeyPolicy, SshBackend

__all__ = ["HostKeyPolicy", "SshBackend", "SshOptions", "openssh_command"]


@dataclass(frozen=True, slots=True)
class SshOptions:
    """What the service asks of one connection; ``None`` where the ssh_config file (or the default) decides."""

    host: str
    port: int
    username: str
    connect_timeout: int  # whole seconds, at least 1 (OpenSSH's ConnectTimeout)
    host_key_policy: HostKeyPolicy = HostKeyPolicy.ACCEPT_NEW
    known_hosts_file: Path | None = None
    config_file: Path | None = None  # an OpenSSH-style ssh_config
    identity_file: Path | None = None  # a device key, tried before the password
    jump_host: str | None = None  # ProxyJump: ``[user@]host[:port][,...]``
    # paramiko backend only (OpenSSH has no such options): new connections per second
    # through one jump host, and the environment variable holding the jump hosts' password
    jump_rate: float | None = None
    jump_password_env: str | None = None
    legacy_algorithms: tuple[str, ...] = ()  # names of ``service.domain.legacy_ssh``, for this device only

    @property
    def keys_first(self) -> bool:
        """Keys may apply (a named identity, or the file's ``IdentityFile``): they are tried before the password."""
        return self.identity_file is not None or self.config_file is not None

    @property
    def known_hosts_files(self) -> tuple[str, ...] | None:
        """``UserKnownHostsFile``: none to keep under ``no``; ``None``: the file's or OpenSSH's default."""
        if self.host_key_policy is HostKeyPolicy.NO:
            return (os.devnull,)
        return None if self.known_hosts_file is None else (str(self.known_hosts_file),)


def openssh_command(options: SshOptions) -> str:
    """The OpenSSH command line. Holds no secret: Unicon types the password at the prompt."""
    words = ["ssh", *_option_words(options)]
    if options.config_file is not None:
        words += ["-F", str(options.config_file)]
    if options.identity_file is not None:
        words += ["-i", str(options.identity_file)]
    if options.jump_host is not None:
        words += ["-J", options.jump_host]
    # policy has validated hostname and username: no spaces, no leading '-'
    words += ["-p", str(options.port), "-l", options.username, "--", options.host]
    return shlex.join(words)


def _option_words(options: SshOptions) -> list[str]:
    settings = [
        f"StrictHostKeyChecking={options.host_key_policy}",
        f"ConnectTimeout={options.connect_timeout}",
        # keys may apply: named identities first (no agent), then the password Unicon types
        "PreferredAuthentications=publickey,password,keyboard-interactive"
        if options.keys_first
        else "PreferredAuthentications=password,keyboard-interactive",
        "IdentitiesOnly=yes" if options.keys_first else "PubkeyAuthentication=no",
        "NumberOfPasswordPrompts=1",
        # INFO, not ERROR: OpenSSH reports "no matching ... found. Their offer: ..." (no common
        # algorithm) at INFO only; without it a legacy-only device is a bare EOF
        "LogLevel=INFO",
        *_legacy_settings(options.legacy_algorithms),
    ]
    if (known := options.known_hosts_files) is not None:
        settings.append(f"UserKnownHostsFile={' '.join(known)}")
    return [word for setting in settings for word in ("-o", setting)]


def _legacy_settings(legacy: tuple[str, ...]) -> list[str]:
    """``+`` lists: appended to OpenSSH's defaults, so a modern device still negotiates modern algorithms."""
    settings = []
    for option, kind in (("KexAlgorithms", AlgorithmKind.KEX), ("Ciphers", AlgorithmKind.CIPHER)):
        if names := of_kind(legacy, kind):
            settings.append(f"{option}=+{','.join(names)}")
    if names := of_kind(legacy, AlgorithmKind.HOST_KEY):
        # ssh-rsa for the device's host key and for our own RSA key's signature
        settings += [f"HostKeyAlgorithms=+{','.join(names)}", f"PubkeyAcceptedAlgorithms=+{','.join(names)}"]
    return settings
