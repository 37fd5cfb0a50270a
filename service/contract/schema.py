"""JSON Schema of every message, generated from the Structs (``make schemas``).

A test regenerates them and fails when ``schemas/`` differs, so the published
contract cannot drift from the code. File names are part of the contract: add new
ones, never rename.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from service.contract.messages import (
    ChangeEvent,
    DeviceResult,
    ErrorReply,
    ExecuteRequest,
    ExecuteResponse,
    HistoryRequest,
    JobRequest,
    OutputRef,
    RequestSummary,
    ScheduleReply,
    ScheduleRequest,
)

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID_BASE = "https://pyats-ro-bus/schemas/v1/"

MESSAGES: dict[str, Any] = {
    "execute-request": ExecuteRequest,
    "execute-response": ExecuteResponse,
    "device-result": DeviceResult,
    "request-summary": RequestSummary,
    "error": ErrorReply,
    "job-request": JobRequest,
    "output-request": OutputRef,
    "history-request": HistoryRequest,
    "schedule-request": ScheduleRequest,
    "schedule-reply": ScheduleReply,
    "change-event": ChangeEvent,
}


def render_schema(name: str, schema: dict[str, Any]) -> str:
    """One schema file's text: dialect and ``$id`` set, keys sorted, so output is stable."""
    document = {**schema, "$schema": JSON_SCHEMA_DIALECT, "$id": f"{SCHEMA_ID_BASE}{name}.json"}
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def schema_documents() -> dict[str, str]:
    return {f"{name}.json": render_schema(name, msgspec.json.schema(struct)) for name, struct in MESSAGES.items()}


def write_documents(documents: dict[str, str], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for file_name, text in documents.items():
        (folder / file_name).write_text(text)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    write_documents(schema_documents(), Path(args[0] if args else "schemas"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
