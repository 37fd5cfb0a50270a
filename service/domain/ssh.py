"""The fixed choices of an SSH connection, named once for the settings and the device layer."""

from __future__ import annotations

from enum import StrEnum


class SshBackend(StrEnum):
    """How Unicon's session speaks SSH: an OpenSSH child on a pty, or paramiko in process."""

    PTY = "pty"
    PARAMIKO = "paramiko"


class HostKeyPolicy(StrEnum):
    """``StrictHostKeyChecking``, as OpenSSH spells it; the service's words ``strict`` and
    ``off`` are taken for ``yes`` and ``no``."""

    YES = "yes"  # only keys already in known_hosts
    ACCEPT_NEW = "accept-new"  # learn an unknown key, refuse a changed one
    NO = "no"  # accept any key (labs)
    ASK = "ask"  # OpenSSH's default; nobody can answer here, so it refuses an unknown key as ``yes`` does

    @classmethod
    def _missing_(cls, value: object) -> HostKeyPolicy | None:
        if not isinstance(value, str):
            return None
        word = value.strip().lower()
        synonym = {"strict": "yes", "true": "yes", "off": "no", "false": "no"}.get(word, word)
        return cls(synonym) if synonym != value else None

    @classmethod
    def parse(cls, value: str) -> HostKeyPolicy:
        """OpenSSH's spellings, its synonyms folded (``true``, ``false``, ``off``); unknown words are ``ask``."""
        try:
            return cls(value)
        except ValueError:
            return cls.ASK
