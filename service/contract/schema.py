"""JSON Schema of every message, generated from the Structs (``make schemas``).

A test regenerates them and fails when ``schemas/`` differs, so the published
contract cannot drift from the code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from service.contract.messages import DeviceResult, ErrorReply, ExecuteRequest, ExecuteResponse, RequestSummary

MESSAGES: dict[str, Any] = {
    "execute-request": ExecuteRequest,
    "execute-response": ExecuteResponse,
    "device-result": DeviceResult,
    "request-summary": RequestSummary,
    "error": ErrorReply,
}


def schema_documents() -> dict[str, str]:
    documents = {}
    for name, struct in MESSAGES.items():
        schema = msgspec.json.schema(struct)
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://pyats-ro-bus/schemas/v1/{name}.json"
        documents[f"{name}.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return documents


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0] if args else "schemas")
    folder.mkdir(parents=True, exist_ok=True)
    for file_name, text in schema_documents().items():
        (folder / file_name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
