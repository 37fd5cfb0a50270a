"""schemas/asyncapi.yaml against the official AsyncAPI 3.0.0 JSON Schema of the npm package
``@asyncapi/specs``: downloaded once (version and sha512 pinned here) and cached in ``.data/``.
Offline and without the cached file, these tests skip and say why.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.unit.test_contract_docs import _DELETE, _set, asyncapi, mutated

pytestmark = pytest.mark.tooling

CACHE = Path(__file__).resolve().parents[2] / ".data"

SPECS_VERSION = "6.11.1"
SPECS_INTEGRITY = "sha512-A3WBLqAKGoJ2+6FWFtpjBlCQ1oFCcs4GxF7zsIGvNqp/klGUHjlA3aAcZ9XMMpLGE8zPeYDz2x9FmO6DSuKraQ=="
SPECS_URL = f"https://registry.npmjs.org/@asyncapi/specs/-/specs-{SPECS_VERSION}.tgz"
SPECS_MEMBER = "package/schemas/3.0.0-without-$id.json"


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def _specs_tarball() -> bytes:
    cached = CACHE / f"asyncapi-specs-{SPECS_VERSION}.tgz"
    if cached.is_file() and _integrity(cached.read_bytes()) == SPECS_INTEGRITY:
        return cached.read_bytes()
    try:
        with urllib.request.urlopen(SPECS_URL, timeout=30) as response:
            data: bytes = response.read()
    except urllib.error.HTTPError as exc:
        if exc.code < 500:  # the registry answered: the pinned tarball is gone or the URL is wrong
            pytest.fail(f"{SPECS_URL}: HTTP {exc.code}")
        pytest.skip(f"the npm registry is unavailable (HTTP {exc.code}), so asyncapi.yaml was not checked")
    except OSError as exc:  # URLError, timeouts and refused connections are all OSError
        pytest.skip(
            f"the npm registry cannot be reached, so asyncapi.yaml was not checked against AsyncAPI 3.0.0: {exc}"
        )
    assert _integrity(data) == SPECS_INTEGRITY, f"{SPECS_URL} does not match the pinned sha512 integrity"
    CACHE.mkdir(exist_ok=True)
    partial = cached.with_suffix(".partial")
    partial.write_bytes(data)
    partial.replace(cached)
    return data


@pytest.fixture(scope="module")
def asyncapi_validator() -> jsonschema.Draft7Validator:
    with tarfile.open(fileobj=io.BytesIO(_specs_tarball()), mode="r:gz") as archive:
        member = archive.extractfile(SPECS_MEMBER)
        assert member is not None, f"{SPECS_MEMBER} is missing from @asyncapi/specs {SPECS_VERSION}"
        schema = json.load(member)
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def test_asyncapi_document_is_valid_asyncapi_3(asyncapi_validator: jsonschema.Draft7Validator) -> None:
    document = asyncapi()
    assert document["asyncapi"] == "3.0.0"
    asyncapi_validator.validate(document)


BROKEN_ASYNCAPI = {
    "asyncapi-2-action": _set("operations.execute.action", "publish"),
    "no-info-version": _set("info.version", _DELETE),
    "unknown-channel-field": _set("channels.execute.queue", "pyats-ro"),
    "queue-too-long": _set("operations.execute.bindings.nats.queue", "q" * 256),
    "unknown-nats-binding-field": _set("operations.execute.bindings.nats.durable", "x"),
    "operation-without-channel": _set("operations.publishResult.channel", _DELETE),
    "reply-address-not-runtime-expression": _set("operations.execute.reply.address", {"location": "_INBOX.>"}),
}


@pytest.mark.parametrize("change", BROKEN_ASYNCAPI.values(), ids=BROKEN_ASYNCAPI.keys())
def test_asyncapi_validator_rejects_a_broken_document(
    asyncapi_validator: jsonschema.Draft7Validator, change: Callable[[dict[str, Any]], None]
) -> None:
    with pytest.raises(jsonschema.ValidationError):
        asyncapi_validator.validate(mutated(asyncapi(), change))
