"""API keys of the HTTP gateway: each key maps to one requester; only sha256 hashes are stored.

The keys file (JSON or YAML) or the environment variable holds::

    {"ops-laptop": {"sha256": "<hex of sha256(key)>", "requester": "alice"}}

A presented key is hashed and compared with every stored hash in constant time
(``hmac.compare_digest``); the key itself is never kept, logged or echoed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
KEY_PREFIX = "pyro_"


class KeysError(Exception):
    """The keys file or variable is malformed; the message names the entry, never a key."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    sha256: str = ""
    requester: str = ""

    def __repr__(self) -> str:
        return f"ApiKey({self.key_id!r}, requester={self.requester!r})"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _entry(key_id: str, value: Any) -> ApiKey:
    if not isinstance(value, dict):
        raise KeysError(f"key {key_id!r}: expected an object with sha256 and requester")
    digest, requester = str(value.get("sha256", "")).lower(), str(value.get("requester", ""))
    if not _HEX64.match(digest):
        raise KeysError(f"key {key_id!r}: sha256 must be 64 hex digits (the hash of the key, not the key)")
    if not _TOKEN.match(requester):
        raise KeysError(f"key {key_id!r}: requester must be 1-64 letters, digits, '_' or '-'")
    unknown = set(value) - {"sha256", "requester"}
    if unknown:
        raise KeysError(f"key {key_id!r}: unknown fields {sorted(unknown)}")
    return ApiKey(str(key_id), digest, requester)


class KeyStore:
    """The gateway's keys; ``requester_for`` answers who a presented key speaks for."""

    def __init__(self, keys: list[ApiKey]) -> None:
        self._keys = list(keys)

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def requesters(self) -> set[str]:
        return {k.requester for k in self._keys}

    @classmethod
    def parse(cls, text: str) -> KeyStore:
        """JSON or YAML (JSON is YAML) text of ``{key_id: {sha256, requester}}``."""
        try:
            data = yaml.safe_load(text) if text.strip() else {}
        except yaml.YAMLError:
            raise KeysError("the keys are neither JSON nor YAML") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise KeysError("the keys must be an object: key id -> {sha256, requester}")
        return cls([_entry(str(k), v) for k, v in data.items()])

    @classmethod
    def load(cls, path: Path | None, env_text: str | None) -> KeyStore:
        """Keys of the file and of the variable's text together."""
        keys: list[ApiKey] = []
        if path is not None:
            try:
                keys += cls.parse(path.read_text(encoding="utf-8"))._keys
            except OSError as exc:
                raise KeysError(f"cannot read the keys file {path}: {exc.strerror}") from None
        if env_text:
            keys += cls.parse(env_text)._keys
        return cls(keys)

    def requester_for(self, presented: str | None) -> str | None:
        """The requester of the key, None for no key or a key not known. Every stored hash is
        compared (constant time each), so the time does not say which entry nearly matched."""
        if not presented:
            return None
        digest = hash_key(presented)
        found = None
        for key in self._keys:
            if hmac.compare_digest(digest, key.sha256):
                found = key.requester
        return found


def presented_key(authorization: str | None, x_api_key: str | None) -> str | None:
    """The key from ``Authorization: Bearer <key>`` or ``X-API-Key``."""
    if authorization:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    if x_api_key and x_api_key.strip():
        return x_api_key.strip()
    return None


def new_key(requester: str, key_id: str | None = None) -> tuple[str, str]:
    """A fresh key and the keys-file line (JSON) that maps it to ``requester``."""
    if not _TOKEN.match(requester):
        raise KeysError("requester must be 1-64 letters, digits, '_' or '-'")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    name = key_id or f"{requester}-{secrets.token_hex(4)}"
    line = json.dumps({name: {"sha256": hash_key(key), "requester": requester}})
    return key, line
