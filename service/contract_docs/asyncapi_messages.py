"""The messages of the AsyncAPI document: header schemas from the publishers' constants.

Each message names its payload's JSON Schema file in ``schemas/`` (an empty body has
none) and its headers, with the names the code really sets; ``asyncapi.py`` places them
on channels and operations.
"""

from __future__ import annotations

from typing import Any

from service.contract.errors import ErrorCode, status_for
from service.transport.endpoint import (
    ERROR_CODE_HEADER,
    ERROR_HEADER,
    MESSAGE_KIND_HEADER,
    REQUEST_ID_HEADER,
    REQUEST_INFO_HEADER,
)
from service.transport.history import SEQUENCE, STORED_AT, SUBJECT, TRUNCATED
from service.transport.results import DEVICE, MSG_ID, REQUEST_ID, REQUESTER, STATUS
from service.transport.subjects import SUMMARY_TOKEN

EXAMPLE_REQUEST_ID = "01a215c0-4cd6-7de2-bc00-3dbd7c1371fb"
# the current result's request id in schemas/examples/change-event.json
EXAMPLE_CHANGE_REQUEST_ID = "01a22b5b-cb40-7b1d-8e3f-5a7b2c3d4e5f"


def _payload(schema_name: str) -> dict[str, str]:
    return {"$ref": f"./{schema_name}.json"}


def _header(description: str, example: str, **schema: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **schema, "examples": [example]}


def _headers(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    """Headers as an object schema; others may be present (NATS and JetStream add their own)."""
    schema: dict[str, Any] = {"type": "object", "properties": {**required, **(optional or {})}}
    if required:
        schema["required"] = list(required)
    return schema


def _kind(kind: str) -> dict[str, Any]:
    return {
        MESSAGE_KIND_HEADER: {
            "type": "string",
            "const": kind,
            "description": "What this message is: response, result, summary, output, record, end or error.",
        }
    }


def _reply_request_id() -> dict[str, Any]:
    return {REQUEST_ID_HEADER: _header("The request's id (UUIDv7 when the service made it).", EXAMPLE_REQUEST_ID)}


def _request_info() -> dict[str, Any]:
    return {
        REQUEST_INFO_HEADER: _header(
            "Set by nats-server when the request crossed accounts; with PYATS_TRUST_REQUEST_INFO=true its "
            "user@account is then the requester (ignored otherwise: within one account a client can forge it).",
            '{"acc":"NETOPS","user":"alice","rtt":1}',
        )
    }


def _message(
    name: str, title: str, summary: str, headers: dict[str, Any] | None, payload: str | None
) -> dict[str, Any]:
    """``payload`` names a schema file; None is an empty body."""
    message: dict[str, Any] = {"name": name, "title": title, "summary": summary}
    if headers is not None:
        message["headers"] = headers
    if payload is None:
        message["description"] = "The body is empty."
    else:
        message["payload"] = _payload(payload)
    return message


def messages() -> dict[str, Any]:
    """Every message on the bus, by the id that channels and operations refer to."""
    error_codes = sorted({str(status_for(code)) for code in ErrorCode})
    error_headers = {
        ERROR_HEADER: _header(
            "The error message (at most 512 characters).",
            "requester 'alice' is over its execute rate (10 requests per 60s); retry after 6.00s",
        ),
        ERROR_CODE_HEADER: _header("HTTP-like status of the error code.", "429", enum=error_codes),
    }
    stored = {
        REQUEST_ID: _header("The request's id.", EXAMPLE_REQUEST_ID),
        REQUESTER: _header("Who asked (the requester token, or user@account).", "alice"),
    }
    device = {
        DEVICE: _header("The device's real hostname (the subject has the sanitised token).", "edge-rtr-01"),
        STATUS: _header("ok, or the device's error code (failed when it has none).", "ok"),
        MSG_ID: _header(
            "<request_id>.<device>: JetStream keeps one result per device.", f"{EXAMPLE_REQUEST_ID}.edge-rtr-01"
        ),
    }
    summary = {
        STATUS: _header(
            "ok when every device succeeded, failed when none did, else partial.",
            "ok",
            enum=["ok", "partial", "failed"],
        ),
        MSG_ID: _header(f"<request_id>.{SUMMARY_TOKEN}", f"{EXAMPLE_REQUEST_ID}.{SUMMARY_TOKEN}"),
    }
    return {
        "executeRequest": _message(
            "ExecuteRequest",
            "Execute request",
            "Devices and show commands to run now; the body's request_id wins over the header.",
            _headers({}, {REQUEST_ID_HEADER: _header("Optional request id.", EXAMPLE_REQUEST_ID), **_request_info()}),
            "execute-request",
        ),
        "executeResponse": _message(
            "ExecuteResponse",
            "Aggregate reply",
            "Every device's result, in request order, with the counts.",
            _headers({**_kind("response"), **_reply_request_id()}),
            "execute-response",
        ),
        "streamedResult": _message(
            "StreamedDeviceResult",
            "Streamed device result",
            'With "stream": true, one reply per device as soon as it is done.',
            _headers({**_kind("result"), **_reply_request_id()}),
            "device-result",
        ),
        "streamedSummary": _message(
            "StreamedRequestSummary",
            "Streamed summary",
            "After the last streamed device result: the counts and duration.",
            _headers({**_kind("summary"), **_reply_request_id()}),
            "request-summary",
        ),
        "streamEnd": _message(
            "StreamEnd",
            "End of stream",
            "The last streamed reply (the ADR-47 end marker): an empty body.",
            _headers(_kind("end")),
            None,
        ),
        "errorReply": _message(
            "ErrorReply",
            "Error reply",
            "The request was refused; nats.micro's error headers plus a JSON error body.",
            _headers({**_kind("error"), **error_headers}, _reply_request_id()),
            "error",
        ),
        "jobRequest": _message(
            "JobRequest",
            "Job",
            "A durable request: inventory devices only (no passwords at rest), plus an optional notify subject.",
            _headers(
                {},
                {
                    MSG_ID: _header("Optional: JetStream drops a job published twice.", "nightly-2024-03-26"),
                    **_request_info(),
                },
            ),
            "job-request",
        ),
        "deviceResult": _message(
            "DeviceResult",
            "Device result",
            "One device's outcome, kept in JetStream for replay.",
            _headers({**stored, **device}),
            "device-result",
        ),
        "requestSummary": _message(
            "RequestSummary",
            "Request summary",
            "Published after the request's last device result.",
            _headers({**stored, **summary}),
            "request-summary",
        ),
        "jobSummary": _message(
            "JobSummary",
            "Job done",
            "Sent to the job's notify subject when all its results are published.",
            _headers(_kind("summary")),
            "request-summary",
        ),
        "jobError": _message(
            "JobError",
            "Job refused",
            "Sent to the job's notify subject when the job is refused.",
            _headers(_kind("error")),
            "error",
        ),
        "outputRequest": _message(
            "OutputRequest",
            "Large output request",
            "A command's output_ref, sent back to the service to get that output; only the requester "
            "whose result holds it gets it.",
            _headers({}, _request_info()),
            "output-request",
        ),
        "outputChunk": {
            "name": "OutputChunk",
            "title": "Large output chunk",
            "summary": "The next bytes of the output (UTF-8), at most half the server's max_payload; "
            "the chunks in order, then the end marker, make the text whose size and sha256 the reference gives.",
            "contentType": "application/octet-stream",
            "headers": _headers(_kind("output")),
            "payload": {"type": "string", "format": "binary"},
        },
        "historyRequest": _message(
            "HistoryRequest",
            "History request",
            "Replay of the requester's own stored results (the requester is the subject's last token).",
            _headers({}, _request_info()),
            "history-request",
        ),
        "historyRecord": _message(
            "HistoryRecord",
            "Stored result",
            "One stored device result (narrowed to the asked command), with where and when it was stored.",
            _headers(
                {
                    **_kind("record"),
                    STORED_AT: _header("When JetStream stored it (ISO 8601, UTC).", "2026-11-30T10:00:00.123+00:00"),
                    SEQUENCE: _header("Its sequence number in the results stream.", "4711"),
                    SUBJECT: _header(
                        "The subject it was stored on.", f"pyats.v1.results.alice.{EXAMPLE_REQUEST_ID}.edge-rtr-01"
                    ),
                    REQUESTER: _header("Who asked for it.", "alice"),
                }
            ),
            "device-result",
        ),
        "historyEnd": _message(
            "HistoryEnd",
            "End of the replay",
            "Empty; with Pyats-Truncated when more results matched than the request's limit.",
            _headers(_kind("end"), {TRUNCATED: _header("The limit that cut the replay short.", "10000")}),
            None,
        ),
        "scheduleRequest": _message(
            "ScheduleRequest",
            "Schedule request",
            "Add, list, show, pause, resume or remove one of the requester's own schedules (the requester "
            "is the subject's last token; a definition's requester field is set by the service).",
            _headers({}, _request_info()),
            "schedule-request",
        ),
        "scheduleReply": _message(
            "ScheduleReply",
            "Schedules",
            "The schedules the request concerned (all of the requester's for list), each with its KV revision "
            "and its last and next tick.",
            None,
            "schedule-reply",
        ),
        "changeEvent": _message(
            "ChangeEvent",
            "Change event",
            "A device's (parsed or normalised) result for a command differs from the requester's previous one: "
            "what was added, removed and changed, and which two results were compared.",
            _headers(
                {
                    MSG_ID: _header(
                        "Names the change (the compared results, device and command): a change published twice, "
                        "by a retry or a second replica, is stored once.",
                        f"{EXAMPLE_CHANGE_REQUEST_ID}.core-rtr-01.show_ip_bgp_summary",
                    )
                }
            ),
            "change-event",
        ),
        "microRequest": _message(
            "MicroRequest", "Discovery request", "Who is there, what do you serve, how busy are you.", None, None
        ),
        "microPing": _message(
            "MicroPingResponse", "Ping reply", "A replica's name, id and version.", None, "micro-ping-response"
        ),
        "microInfo": _message(
            "MicroInfoResponse",
            "Info reply",
            "A replica's endpoints and queue group.",
            _headers({}),
            "micro-info-response",
        ),
        "microStats": _message(
            "MicroStatsResponse",
            "Stats reply",
            "A replica's counts per endpoint.",
            _headers({}),
            "micro-stats-response",
        ),
    }
