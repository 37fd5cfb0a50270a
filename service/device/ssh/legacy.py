"""Legacy SSH algorithms for the paramiko backend, per transport and only when named.

paramiko 5 no longer ships SHA-1 key exchange nor ``ssh-rsa`` (SHA-1) host key
signatures, and it still offers CBC ciphers by default. Here a transport gets exactly
the legacy names its device was given (``service.domain.legacy_ssh``), at the end of its
preference lists (as OpenSSH's ``+`` appends them), and every CBC cipher not named is
disabled, so both backends accept the same algorithms. Nothing is changed class-wide:
another device's transport in the same process keeps the defaults.

The SHA-1 key exchanges reuse paramiko's SHA-256 engines with the hash swapped, and the
Oakley group 2 prime of RFC 2409 section 6.2 for ``diffie-hellman-group1-sha1``.
"""

from __future__ import annotations

from hashlib import sha1
from typing import Any, ClassVar

import paramiko
from cryptography.hazmat.primitives import hashes
from paramiko.kex_gex import KexGexSHA256
from paramiko.kex_group14 import KexGroup14SHA256

from service.device.error_text import incompatible_peer_kind
from service.device.ssh.errors import AlgorithmMismatch
from service.domain.legacy_ssh import CBC_CIPHERS, AlgorithmKind, of_kind

__all__ = ["OAKLEY_GROUP2_PRIME", "algorithm_mismatch", "apply_legacy_algorithms", "disabled_algorithms"]

# RFC 2409 6.2: 2^1024 - 2^960 - 1 + 2^64 * { [2^894 pi] + 129093 }
OAKLEY_GROUP2_PRIME = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF",
    16,
)


class _KexGroup14SHA1(KexGroup14SHA256):  # type: ignore[misc]  # paramiko is untyped
    name = "diffie-hellman-group14-sha1"
    hash_algo = sha1


class _KexGroup1SHA1(_KexGroup14SHA1):
    P = OAKLEY_GROUP2_PRIME
    name = "diffie-hellman-group1-sha1"


class _KexGexSHA1(KexGexSHA256):  # type: ignore[misc]  # paramiko is untyped
    name = "diffie-hellman-group-exchange-sha1"
    hash_algo = sha1


class _RSAKeySHA1(paramiko.RSAKey):  # type: ignore[misc]  # paramiko is untyped
    """An RSA host key that also verifies ``ssh-rsa`` (SHA-1) signatures."""

    HASHES: ClassVar[dict[str, Any]] = {**paramiko.RSAKey.HASHES, "ssh-rsa": hashes.SHA1}


_KEX_ENGINES: dict[str, Any] = {
    "diffie-hellman-group14-sha1": _KexGroup14SHA1,
    "diffie-hellman-group1-sha1": _KexGroup1SHA1,
    "diffie-hellman-group-exchange-sha1": _KexGexSHA1,
}
_HOST_KEYS: dict[str, Any] = {"ssh-rsa": _RSAKeySHA1}


def disabled_algorithms(legacy: tuple[str, ...]) -> dict[str, list[str]]:
    """For ``Transport(disabled_algorithms=...)``: the CBC ciphers that were not named."""
    return {"ciphers": [name for name in CBC_CIPHERS if name not in legacy]}


def apply_legacy_algorithms(transport: Any, legacy: tuple[str, ...]) -> None:
    """Add the named legacy kex and host key algorithms to this transport only, least preferred."""
    if kex := of_kind(legacy, AlgorithmKind.KEX):
        transport._kex_info = {**transport._kex_info, **{name: _KEX_ENGINES[name] for name in kex}}
        transport._preferred_kex = (*transport._preferred_kex, *kex)
    if host_keys := of_kind(legacy, AlgorithmKind.HOST_KEY):
        transport._key_info = {**transport._key_info, **{name: _HOST_KEYS[name] for name in host_keys}}
        transport._preferred_keys = (*transport._preferred_keys, *host_keys)


# the kind of algorithm (OpenSSH's word) -> where the device's offer is in its KEXINIT
_OFFER_KEYS = {
    "key exchange method": ("kex_algo_list",),
    "host key type": ("server_key_algo_list",),
    "cipher": ("server_encrypt_algo_list", "client_encrypt_algo_list"),
    "MAC": ("server_mac_algo_list", "client_mac_algo_list"),
}


def algorithm_mismatch(exc: BaseException, offer: dict[str, list[str]] | None) -> AlgorithmMismatch | None:
    """ "No common algorithm" with the device's offer of that kind; None for other failures."""
    if not isinstance(exc, paramiko.IncompatiblePeer):
        return None
    kind = incompatible_peer_kind(str(exc))  # paramiko names the kind in its message only
    if kind is None:
        return None
    names = next((offer[key] for key in _OFFER_KEYS[kind] if offer and offer.get(key)), [])
    return AlgorithmMismatch(kind, tuple(names))
