"""The published contract in ``schemas/`` and ``tests/golden/`` checked with real validators.

JSON Schema with ``jsonschema`` (draft 2020-12); subjects against the subject builder; and the
committed files against a fresh generation. The AsyncAPI document against the official AsyncAPI
3.0.0 JSON Schema (a download) is in tests/tooling/test_asyncapi_official_schema.py.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import pytest
import yaml
from nats.micro import request as micro_request
from nats.micro.service import ServiceVerb, control_subject

from service.config import Settings
from service.contract.schema import MESSAGES, schema_documents
from service.contract_docs.asyncapi import FILE_NAME, documents
from service.transport import endpoint, history, results
from service.transport.subjects import Subjects

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "schemas"
EXAMPLES = SCHEMAS / "examples"
GOLDEN = ROOT / "tests" / "golden" / "v1"


PREFIX = "pyats.v1"
REQUEST_ID = "01a215c0-4cd6-7de2-bc00-3dbd7c1371fb"
SERVICE_ID = "Vq3rBKk5Zx7b3JMp0hJ4Bn"


def schema_name(path: Path) -> str:
    """``device-result.auth-failed.json`` -> ``device-result``."""
    return path.name.split(".")[0]


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def schema_validator(name: str) -> jsonschema.Draft202012Validator:
    schema = load_json(SCHEMAS / f"{name}.json")
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def asyncapi() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((SCHEMAS / FILE_NAME).read_text())
    return document


def mutated(document: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    copied = copy.deepcopy(document)
    change(copied)
    return copied


EXAMPLE_FILES = sorted(EXAMPLES.glob("*.json"))
GOLDEN_FILES = sorted(GOLDEN.glob("*.json"))
SCHEMA_FILES = sorted(SCHEMAS.glob("*.json"))


# (a) examples and schemas --------------------------------------------------------------


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.name)
def test_every_schema_is_a_valid_json_schema(path: Path) -> None:
    jsonschema.Draft202012Validator.check_schema(load_json(path))


def test_every_message_schema_has_one_example() -> None:
    assert {p.name for p in EXAMPLE_FILES} == {p.name for p in SCHEMA_FILES}


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_example_validates_against_its_schema(path: Path) -> None:
    schema_validator(schema_name(path)).validate(load_json(path))


@pytest.mark.parametrize("path", [p for p in EXAMPLE_FILES if schema_name(p) in MESSAGES], ids=lambda p: p.name)
def test_example_decodes_with_its_struct(path: Path) -> None:
    msgspec.json.decode(path.read_bytes(), type=MESSAGES[schema_name(path)])


def _request_ids(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "request_id" and isinstance(item, str):
                yield item
            yield from _request_ids(item)
    elif isinstance(value, list):
        for item in value:
            yield from _request_ids(item)


@pytest.mark.parametrize("path", EXAMPLE_FILES + GOLDEN_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_request_ids_in_examples_are_uuidv7(path: Path) -> None:
    for request_id in _request_ids(load_json(path)):
        assert uuid.UUID(request_id).version == 7, request_id


_DELETE = object()


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change at a dotted path (list indexes as numbers)."""

    def change(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = document
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value

    return change


BROKEN_MESSAGES = [
    ("execute-request", _set("devices.0.passwd", "typo")),
    ("execute-request", _set("output_format", "xml")),
    ("job-request", _set("commands", "show version")),
    ("device-result", _set("success", "yes")),
    ("device-result", _set("request_id", _DELETE)),
    ("execute-response", _set("total_devices", "2")),
    ("request-summary", _set("failed_devices", None)),
    ("error", _set("error.code", _DELETE)),
    ("micro-ping-response", _set("type", "io.nats.micro.v1.info_response")),
    ("micro-stats-response", _set("endpoints.0.num_requests", -1)),
    ("micro-info-response", _set("endpoints", _DELETE)),
]


@pytest.mark.parametrize(("name", "change"), BROKEN_MESSAGES, ids=[name for name, _ in BROKEN_MESSAGES])
def test_schema_and_struct_reject_a_broken_example(name: str, change: Callable[[dict[str, Any]], None]) -> None:
    broken = mutated(load_json(EXAMPLES / f"{name}.json"), change)
    with pytest.raises(jsonschema.ValidationError):
        schema_validator(name).validate(broken)
    if name in MESSAGES:
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(json.dumps(broken), type=MESSAGES[name])


# golden v1: the contract only grows ----------------------------------------------------


def test_every_v1_message_has_a_golden_file() -> None:
    assert {f"{name}.json" for name in MESSAGES} <= {p.name for p in GOLDEN_FILES}


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda p: p.name)
def test_golden_v1_message_still_decodes_and_validates(path: Path) -> None:
    name = schema_name(path)
    assert name in MESSAGES, f"{path.name}: name it <schema>.json or <schema>.<variant>.json"
    msgspec.json.decode(path.read_bytes(), type=MESSAGES[name])
    schema_validator(name).validate(load_json(path))


# (c) every $ref resolves ---------------------------------------------------------------


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def unresolved_refs(document: dict[str, Any]) -> list[str]:
    """Each ``$ref`` that names no file in ``schemas/`` or no node in its document."""
    broken = []
    for ref in _refs(document):
        target, _, pointer = ref.partition("#")
        if target:
            path = (SCHEMAS / target).resolve()
            if SCHEMAS not in path.parents or not path.is_file():
                broken.append(ref)
                continue
            node: Any = load_json(path)
        else:
            node = document
        for token in [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]:
            if not isinstance(node, dict) or token not in node:
                broken.append(ref)
                break
            node = node[token]
    return broken


def test_every_ref_in_asyncapi_resolves() -> None:
    document = asyncapi()
    assert unresolved_refs(document) == []
    payloads = {ref for ref in _refs(document) if not ref.startswith("#")}
    assert payloads == {f"./{p.name}" for p in SCHEMA_FILES}, "every schema is the payload of a documented message"


@pytest.mark.parametrize(
    "ref", ["./no-such-message.json", "#/components/messages/noSuchMessage", "./device-result.json#/$defs/Nope"]
)
def test_a_dangling_ref_is_found(ref: str) -> None:
    document = mutated(asyncapi(), _set("components.messages.deviceResult.payload", {"$ref": ref}))
    assert unresolved_refs(document) == [ref]


def test_operations_use_only_their_channels_messages() -> None:
    """AsyncAPI requires this, but its JSON Schema cannot check it."""
    document = asyncapi()
    for name, operation in document["operations"].items():
        for part in [operation, operation.get("reply")]:
            if part is None:
                continue
            channel = part["channel"]["$ref"]
            for message in part["messages"]:
                assert message["$ref"].startswith(f"{channel}/messages/"), name


# (d) subjects and headers are the code's -----------------------------------------------


def fill(address: str, **values: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda match: values[match.group(1)], address)


def matches(subject: str, pattern: str) -> bool:
    """NATS subject matching: ``*`` is one token, ``>`` one or more at the end."""
    tokens, wanted = subject.split("."), pattern.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > index
        if index >= len(tokens) or token not in ("*", tokens[index]):
            return False
    return len(tokens) == len(wanted)


def _expected_subjects(subjects: Subjects, device: tuple[str, int]) -> dict[str, str]:
    service_name = Settings.defaults().bus.service_name
    expected = {
        "execute": subjects.execute("alice"),
        "jobs": subjects.jobs("alice"),  # the job worker's wildcard is checked in test_bus_conformance
        "results": subjects.result("alice", REQUEST_ID, *device),
        "summary": subjects.summary("alice", REQUEST_ID),
        "outputs": subjects.outputs("alice"),
        "history": subjects.history("alice"),
        "schedules": subjects.schedules("alice"),
        "changes": subjects.changes("alice", *device),
    }
    for verb in ServiceVerb:
        key = f"srv{verb.value.title()}"
        expected[key] = control_subject(verb)
        expected[f"{key}Kind"] = control_subject(verb, name=service_name)
        expected[f"{key}Instance"] = control_subject(verb, name=service_name, id=SERVICE_ID)
    return expected


@pytest.mark.parametrize(("hostname", "port", "token"), [("10.0.0.1", 22, "10_0_0_1"), ("r1", 2222, "r1-p2222")])
def test_every_subject_is_what_the_subject_builder_makes(hostname: str, port: int, token: str) -> None:
    subjects = Subjects(PREFIX)
    channels = {name: c["address"] for name, c in asyncapi()["channels"].items() if c["address"] is not None}
    filled = {
        name: fill(address, requester="alice", request_id=REQUEST_ID, device=token, service_id=SERVICE_ID)
        for name, address in channels.items()
    }
    assert filled == _expected_subjects(subjects, (hostname, port))
    assert matches(filled["execute"], subjects.execute_wildcard)
    assert matches(filled["results"], subjects.results_wildcard)
    assert matches(filled["summary"], subjects.results_wildcard)
    assert matches(filled["results"], subjects.results_filter("alice", REQUEST_ID))
    assert matches(filled["outputs"], subjects.outputs_wildcard)
    assert matches(filled["schedules"], subjects.schedules_wildcard)
    assert matches(filled["changes"], subjects.changes("alice"))
    assert not any(matches(subject, subjects.ticks_wildcard) for subject in filled.values()), "ticks are internal"
    for name in ["execute", "jobs", "outputs", "schedules"]:
        assert subjects.requester_of(filled[name]) == "alice"


def test_subject_matching_helper_can_fail() -> None:
    assert matches("pyats.v1.execute.alice", "pyats.v1.execute.>")
    assert not matches("pyats.v1.execute", "pyats.v1.execute.>")
    assert not matches("pyats.v1.results.a.b.c", "pyats.v1.results.*.*")


def test_queue_group_is_the_services() -> None:
    document = asyncapi()
    queue_group = Settings.defaults().bus.queue_group
    assert document["operations"]["execute"]["bindings"]["nats"]["queue"] == queue_group
    assert document["channels"]["execute"]["x-nats-queue-group"] == queue_group
    assert Settings.defaults().bus.subject_prefix == PREFIX


def test_headers_are_the_codes_header_names() -> None:
    assert (endpoint.ERROR_HEADER, endpoint.ERROR_CODE_HEADER) == (
        micro_request.ERROR_HEADER,
        micro_request.ERROR_CODE_HEADER,
    )
    code_names = {
        results.REQUEST_ID,
        results.REQUESTER,
        results.DEVICE,
        results.STATUS,
        results.MSG_ID,
        endpoint.REQUEST_ID_HEADER,
        endpoint.REQUEST_INFO_HEADER,
        endpoint.MESSAGE_KIND_HEADER,
        endpoint.ERROR_HEADER,
        endpoint.ERROR_CODE_HEADER,
        history.STORED_AT,
        history.SEQUENCE,
        history.SUBJECT,
        history.TRUNCATED,
    }
    documented = {
        header
        for message in asyncapi()["components"]["messages"].values()
        for header in message.get("headers", {}).get("properties", {})
    }
    assert documented == code_names


# (e) drift -----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "text"), sorted(documents().items()))
def test_committed_document_matches_a_fresh_generation(name: str, text: str) -> None:
    path = SCHEMAS / name
    assert path.is_file(), f"schemas/{name} is missing: run make schemas"
    assert path.read_text() == text, f"schemas/{name} drifted from service/: run make schemas"


def test_schemas_folder_holds_only_generated_files() -> None:
    generated = {*schema_documents(), *documents()}
    assert {p.name for p in SCHEMAS.iterdir() if p.is_file()} == generated
