"""Legacy SSH algorithms a device may need, named one by one by the operator.

Older IOS images offer only SHA-1 key exchange, ``ssh-rsa`` (SHA-1) host key signatures
and CBC ciphers. Current OpenSSH and paramiko refuse them; the service enables exactly
the names given here, for the devices that need them, and nothing else. The setting
(``PYATS_SSH_LEGACY_ALGORITHMS``) and the inventory (``ssh_legacy_algorithms``) both go
through ``parse_legacy_algorithms``, so an unknown name is refused the same way twice.
"""

from __future__ import annotations

from enum import StrEnum


class AlgorithmKind(StrEnum):
    KEX = "kex"
    HOST_KEY = "host_key"
    CIPHER = "cipher"


LEGACY_ALGORITHMS: dict[str, AlgorithmKind] = {
    "diffie-hellman-group14-sha1": AlgorithmKind.KEX,
    "diffie-hellman-group1-sha1": AlgorithmKind.KEX,
    "diffie-hellman-group-exchange-sha1": AlgorithmKind.KEX,
    "ssh-rsa": AlgorithmKind.HOST_KEY,
    "aes128-cbc": AlgorithmKind.CIPHER,
    "aes192-cbc": AlgorithmKind.CIPHER,
    "aes256-cbc": AlgorithmKind.CIPHER,
    "3des-cbc": AlgorithmKind.CIPHER,
}

CBC_CIPHERS: tuple[str, ...] = tuple(name for name, kind in LEGACY_ALGORITHMS.items() if kind is AlgorithmKind.CIPHER)


def parse_legacy_algorithms(value: object) -> tuple[str, ...]:
    """A comma-separated string or a list of names -> the names, in order, without repeats.

    Raises ``ValueError`` naming the unknown entries and the known ones (names are not secret).
    """
    if value is None:
        return ()
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list | tuple):
        if not all(isinstance(item, str) for item in value):
            raise ValueError("must be a list of algorithm names")
        items = list(value)
    else:
        raise ValueError("must be a comma-separated string or a list of algorithm names")
    names = [item.strip().lower() for item in items if item.strip()]
    unknown = [name for name in names if name not in LEGACY_ALGORITHMS]
    if unknown:
        shown = ", ".join(repr(name[:60]) for name in unknown[:5])
        raise ValueError(f"unknown legacy SSH algorithm(s) {shown}; known: {', '.join(LEGACY_ALGORITHMS)}")
    return tuple(dict.fromkeys(names))


def of_kind(names: tuple[str, ...], kind: AlgorithmKind) -> tuple[str, ...]:
    return tuple(name for name in names if LEGACY_ALGORITHMS[name] is kind)
