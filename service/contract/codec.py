"""Decode once at the edge; encode every outgoing message the same way."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from service.contract.errors import ErrorCode, RequestError
from service.contract.messages import CommandSpec, DeviceSpec, ExecuteRequest, JobRequest

_request_decoder = msgspec.json.Decoder(ExecuteRequest)
_job_decoder = msgspec.json.Decoder(JobRequest)


def _encode_fallback(value: Any) -> Any:
    # Genie returns plain containers, but a stray set or custom scalar must not fail a reply.
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


_encoder = msgspec.json.Encoder(enc_hook=_encode_fallback)


def encode(message: Any) -> bytes:
    return _encoder.encode(message)


def decode_request(data: bytes, max_bytes: int, job: bool = False) -> ExecuteRequest:
    """Bytes to a typed request (a ``JobRequest`` when ``job``), or ``RequestError`` saying
    what and where (no values echoed): ``details.path`` is the first problem's JSON path,
    ``details.problems`` lists every problem found, and ``details.request_id`` carries the
    body's request id when it has a usable one."""
    if len(data) > max_bytes:
        raise RequestError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"request is {len(data)} bytes; the limit is {max_bytes}",
            {"size": len(data), "limit": max_bytes},
        )
    if not data.strip():
        raise RequestError(ErrorCode.INVALID_JSON, "request body is empty; send a JSON object")
    try:
        return _job_decoder.decode(data) if job else _request_decoder.decode(data)
    except msgspec.ValidationError as exc:
        first = _located(exc, "$")
        raw = msgspec.json.decode(data)  # valid JSON: only its shape was wrong
        problems = _problems(raw, JobRequest if job else ExecuteRequest) or [first]
        if first not in problems:
            problems.insert(0, first)
        details: dict[str, Any] = {"path": problems[0]["path"], "problems": problems}
        request_id = raw.get("request_id") if isinstance(raw, dict) else None
        if isinstance(request_id, str) and _REQUEST_ID.match(request_id):
            details["request_id"] = request_id
        message = "; ".join(f"{p['path']}: {p['message']}" for p in problems)
        raise RequestError(ErrorCode.INVALID_REQUEST, message, details) from None
    except msgspec.DecodeError as exc:
        raise RequestError(ErrorCode.INVALID_JSON, f"request is not valid JSON: {exc}") from None


_REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_AT = re.compile(r"^(?P<message>.*?)(?: - at `(?P<path>[^`]*)`)?$", re.S)
_NAMED_FIELD = re.compile(r"(?:unknown|missing required) field `(?P<field>[^`]+)`")


def _located(exc: msgspec.ValidationError, base: str) -> dict[str, str]:
    """msgspec's message and path, with the path pointing at the field itself: an unknown or
    missing field is reported at its object (``$.devices[0]``); ``$.devices[0].pasword`` is
    where the reader has to look."""
    found = _AT.match(str(exc))
    message = found.group("message") if found else str(exc)
    path = (found.group("path") if found else None) or "$"
    named = _NAMED_FIELD.search(message)
    if named:
        path = f"{path}.{named.group('field')}"
    return {"path": base + path[1:], "message": message}


_PARTS: dict[str, type[msgspec.Struct]] = {"devices": DeviceSpec, "commands": CommandSpec}


def _problems(raw: Any, struct: type[msgspec.Struct]) -> list[dict[str, str]]:
    """Every problem of the request's shape, found part by part (msgspec stops at the first)."""
    if not isinstance(raw, dict):
        return [{"path": "$", "message": "Expected `object`"}]
    fields = {field.encode_name: field for field in msgspec.structs.fields(struct)}
    problems = [
        {"path": f"$.{key}", "message": f"Object contains unknown field `{key}`"} for key in raw if key not in fields
    ]
    for name, field in fields.items():
        if name not in raw:
            if field.required:
                problems.append({"path": f"$.{name}", "message": f"Object missing required field `{name}`"})
        elif name in _PARTS and isinstance(raw[name], list):
            problems.extend(_list_problems(name, raw[name]))
        else:
            problems.extend(_field_problems(name, raw[name], struct))
    return problems


def _list_problems(name: str, items: list[Any]) -> list[dict[str, str]]:
    """``devices`` or ``commands``: not empty, and each item checked on its own."""
    problems = [] if items else [{"path": f"$.{name}", "message": f"`{name}` is empty; give at least one"}]
    for index, item in enumerate(items):
        try:
            msgspec.convert(item, _PARTS[name])
        except msgspec.ValidationError as exc:
            problems.append(_located(exc, f"$.{name}[{index}]"))
    return problems


def _field_problems(name: str, value: Any, struct: type[msgspec.Struct]) -> list[dict[str, str]]:
    """One top-level field, checked alone inside an otherwise empty request."""
    try:
        msgspec.convert({"devices": [], "commands": [], name: value}, struct)
    except msgspec.ValidationError as exc:
        return [_located(exc, "$")]
    return []
