"""JSON Schema of the nats.micro replies on ``$SRV.PING``, ``$SRV.INFO`` and ``$SRV.STATS``.

These messages belong to nats.micro (ADR-32), not to our contract, but a client that
discovers replicas reads them like any other message on the bus, so ``schemas/``
describes them as nats-py sends them. A test feeds the real nats-py replies of our
service through these schemas, so they cannot drift from the library.
"""

from __future__ import annotations

from typing import Any

from nats.micro.service import INFO_RESPONSE_TYPE, PING_RESPONSE_TYPE, STATS_RESPONSE_TYPE

from service.contract.schema import render_schema

_STRING = {"type": "string"}
_METADATA = {
    "type": "object",
    "additionalProperties": {"type": "string"},
    "description": "Free-form metadata; this service sets subject_prefix.",
}


def _identity(kind: str, title: str, description: str) -> dict[str, Any]:
    """Fields every micro reply has; additional fields are allowed, as later ADR-32 revisions add some."""
    return {
        "title": title,
        "description": description,
        "type": "object",
        "properties": {
            "type": {"const": kind, "description": "The schema type of the reply."},
            "name": {**_STRING, "description": "Service name, shared by every replica."},
            "id": {**_STRING, "description": "Unique id of this replica (a NUID)."},
            "version": {**_STRING, "description": "Service version (semantic versioning)."},
            "metadata": _METADATA,
        },
        "required": ["type", "name", "id", "version", "metadata"],
    }


def _with(base: dict[str, Any], properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        **base,
        "properties": {**base["properties"], **properties},
        "required": [*base["required"], *required],
    }


_ENDPOINT_INFO = {
    "type": "object",
    "properties": {
        "name": _STRING,
        "subject": {**_STRING, "description": "The subject the endpoint listens on (a wildcard here)."},
        "queue_group": {**_STRING, "description": "The queue group shared by every replica."},
        "metadata": {"anyOf": [_METADATA, {"type": "null"}]},
    },
    "required": ["name", "subject", "queue_group"],
}

_REQUEST_STATS = {
    "type": "object",
    "description": "This service's own counts: nats.micro only sees the hand-off to a task, not the work.",
    "properties": {
        "requests": {"type": "integer", "minimum": 0},
        "errors": {"type": "integer", "minimum": 0},
        "in_flight": {"type": "integer", "minimum": 0},
        "average_latency_s": {"type": "number", "minimum": 0},
    },
    "required": ["requests", "errors", "in_flight", "average_latency_s"],
}

_ENDPOINT_STATS = {
    "type": "object",
    "properties": {
        "name": _STRING,
        "subject": _STRING,
        "queue_group": _STRING,
        "num_requests": {"type": "integer", "minimum": 0},
        "num_errors": {"type": "integer", "minimum": 0},
        "last_error": {**_STRING, "description": "Empty when there was no error."},
        "processing_time": {"type": "integer", "minimum": 0, "description": "Nanoseconds, all requests together."},
        "average_processing_time": {"type": "integer", "minimum": 0, "description": "Nanoseconds per request."},
        "data": {"anyOf": [_REQUEST_STATS, {"type": "null"}]},
    },
    "required": [
        "name",
        "subject",
        "queue_group",
        "num_requests",
        "num_errors",
        "last_error",
        "processing_time",
        "average_processing_time",
    ],
}


def micro_schemas() -> dict[str, dict[str, Any]]:
    """Schema name to schema, for the three ``$SRV`` replies."""
    ping = _identity(PING_RESPONSE_TYPE, "MicroPingResponse", "The reply to $SRV.PING: who is there.")
    info = _with(
        _identity(INFO_RESPONSE_TYPE, "MicroInfoResponse", "The reply to $SRV.INFO: what a replica serves."),
        {
            "description": {"anyOf": [_STRING, {"type": "null"}]},
            "endpoints": {"type": "array", "items": _ENDPOINT_INFO},
        },
        ["endpoints"],
    )
    stats = _with(
        _identity(STATS_RESPONSE_TYPE, "MicroStatsResponse", "The reply to $SRV.STATS: counts per endpoint."),
        {
            "started": {**_STRING, "format": "date-time", "description": "When the replica started (UTC)."},
            "endpoints": {"type": "array", "items": _ENDPOINT_STATS},
        },
        ["started", "endpoints"],
    )
    return {"micro-ping-response": ping, "micro-info-response": info, "micro-stats-response": stats}


def micro_schema_documents() -> dict[str, str]:
    return {f"{name}.json": render_schema(name, schema) for name, schema in micro_schemas().items()}
