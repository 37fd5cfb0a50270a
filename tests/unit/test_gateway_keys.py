"""The HTTP gateway's pure parts: API keys, the error mapping, the streamed frames."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.contract.errors import ErrorCode, status_for
from service.contract.messages import ErrorDetail, ErrorReply
from service.gateway.app import NDJSON, SSE, error_answer, frame, retry_after
from service.gateway.keys import KeysError, KeyStore, hash_key, new_key, presented_key

pytestmark = pytest.mark.unit


def test_a_new_key_maps_to_its_requester_and_only_its_hash_is_kept() -> None:
    key, line = new_key("alice")
    entry = json.loads(line)
    store = KeyStore.parse(line)
    assert store.requester_for(key) == "alice"
    assert key not in line
    assert next(iter(entry.values()))["sha256"] == hash_key(key)
    assert store.requester_for(key + "x") is None
    assert store.requester_for("") is None
    assert store.requester_for(None) is None
    assert key not in repr(store._keys)


def test_keys_from_yaml_file_and_variable_together(tmp_path: Path) -> None:
    a, b = new_key("alice")[0], new_key("bob")[0]
    path = tmp_path / "keys.yaml"
    path.write_text(f"laptop:\n  sha256: {hash_key(a)}\n  requester: alice\n")
    store = KeyStore.load(path, json.dumps({"ci": {"sha256": hash_key(b), "requester": "bob"}}))
    assert (store.requester_for(a), store.requester_for(b), len(store)) == ("alice", "bob", 2)
    assert store.requesters == {"alice", "bob"}


@pytest.mark.parametrize(
    "text",
    [
        "[1, 2]",
        '{"k": "plain"}',
        '{"k": {"sha256": "pyro_the-key-itself", "requester": "alice"}}',
        '{"k": {"sha256": "' + "a" * 64 + '", "requester": "alice.bob"}}',
        '{"k": {"sha256": "' + "a" * 64 + '", "requester": "alice", "admin": true}}',
        "{not: [yaml",
    ],
)
def test_malformed_keys_are_refused_without_echoing_a_key(text: str) -> None:
    with pytest.raises(KeysError) as refused:
        KeyStore.parse(text)
    assert "pyro_the-key-itself" not in str(refused.value)


def test_the_key_comes_from_bearer_or_x_api_key() -> None:
    assert presented_key("Bearer abc", None) == "abc"
    assert presented_key("bearer  abc ", "other") == "abc"
    assert presented_key("Basic eDp5", "xyz") == "xyz"
    assert presented_key(None, None) is None
    assert presented_key("Bearer ", " ") is None


@pytest.mark.parametrize("code", list(ErrorCode))
def test_each_service_error_keeps_its_status_and_body(code: ErrorCode) -> None:
    reply = ErrorReply(error=ErrorDetail(code=code.value, message="m", details={"retry_after": 2.2}), request_id="r1")
    answer = error_answer(reply)
    assert answer.status_code == status_for(code)
    assert json.loads(answer.body)["error"]["code"] == code.value
    if answer.status_code == 429:
        assert answer.headers["retry-after"] == "3"


def test_retry_after_falls_back_to_the_period_then_a_minute() -> None:
    assert retry_after({"retry_after": 0.2}) == 1
    assert retry_after({"retry_after": None, "period": 60.0}) == 60
    assert retry_after({}) == 60


def test_frames() -> None:
    assert frame("result", {"a": 1}, SSE) == b'event: result\ndata: {"a": 1}\n\n'
    assert json.loads(frame("end", {}, NDJSON)) == {"event": "end", "data": {}}
