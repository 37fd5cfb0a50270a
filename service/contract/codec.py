"""Decode once at the edge; encode every outgoing message the same way."""

from __future__ import annotations

from typing import Any

import msgspec

from service.contract.messages import ExecuteRequest, JobRequest
from service.errors import ErrorCode, RequestError

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
    what and where (no values echoed)."""
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
        message = str(exc)
        path = message.rpartition(" - at `")[2].rstrip("`") if " - at `" in message else "$"
        raise RequestError(ErrorCode.INVALID_REQUEST, message, {"path": path}) from None
    except msgspec.DecodeError as exc:
        raise RequestError(ErrorCode.INVALID_JSON, f"request is not valid JSON: {exc}") from None
