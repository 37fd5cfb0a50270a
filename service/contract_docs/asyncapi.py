"""The AsyncAPI 3.0 document of the bus (``schemas/asyncapi.yaml``), built from the code.

Subjects come from the subject builder and nats.micro, header names from the
publishers' constants, defaults (prefix, queue group, streams) from ``Settings``, and
payloads are ``$ref``s to the generated JSON Schemas; so the document cannot name a
subject or header the service does not use. ``make schemas`` writes it; a test
regenerates it and fails on drift, and another feeds the messages the service really
sends through it. It is written from the service's side: the service ``receive``s
requests and jobs and ``send``s results.
"""

from __future__ import annotations

import sys
from operator import attrgetter
from pathlib import Path
from typing import Any

import yaml
from nats.micro.service import ServiceVerb, control_subject

from service.config import Settings
from service.contract.schema import write_documents
from service.contract_docs.asyncapi_messages import EXAMPLE_REQUEST_ID, messages
from service.contract_docs.micro_schemas import micro_schema_documents
from service.transport.jobs import CONSUMER
from service.transport.large_outputs import BUCKET
from service.transport.results import MSG_ID
from service.transport.subjects import SUMMARY_TOKEN, Subjects

FILE_NAME = "asyncapi.yaml"
ASYNCAPI_VERSION = "3.0.0"
NATS_BINDING_VERSION = "0.1.0"
CONTRACT_VERSION = "1"

# A parameter goes through the subject builder as a sentinel the sanitiser keeps, then
# becomes an AsyncAPI ``{name}``: the address is what the builder really makes.
_SENTINELS = {"requester": "__requester__", "request_id": "__request_id__", "device": "__device__"}


def _address(subject: str) -> str:
    for name, sentinel in _SENTINELS.items():
        subject = subject.replace(sentinel, "{" + name + "}")
    return subject


def _default(setting: str) -> str:
    """A setting's default by its place in ``Settings``: ``_default("bus.subject_prefix")``."""
    return str(attrgetter(setting)(Settings.defaults()))


def _ref(*path: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(path)}


def _channel(address: str | None, description: str, messages: list[str], **extra: Any) -> dict[str, Any]:
    channel: dict[str, Any] = {"address": address, "description": description}
    channel["messages"] = {name: _ref("components", "messages", name) for name in messages}
    params = [part[1:-1] for part in (address or "").split(".") if part.startswith("{")]
    if params:
        channel["parameters"] = {name: _ref("components", "parameters", name) for name in params}
    return {**channel, **extra}


def _operation(
    action: str, channel: str, messages: list[str], summary: str, reply: tuple[str, list[str]] | None = None
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "action": action,
        "channel": _ref("channels", channel),
        "summary": summary,
        "messages": [_ref("channels", channel, "messages", name) for name in messages],
    }
    if reply is not None:
        reply_channel, reply_messages = reply
        operation["reply"] = {
            "channel": _ref("channels", reply_channel),
            "messages": [_ref("channels", reply_channel, "messages", name) for name in reply_messages],
        }
    return operation


def _micro(service_name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Nine ``$SRV`` channels: each verb for all services, for ours, for one replica."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    scopes = {
        "": (None, None, "every service on the bus"),
        "Kind": (service_name, None, f"every replica of {service_name}"),
        "Instance": (service_name, "{service_id}", "one replica"),
    }
    for verb in ServiceVerb:
        for scope, (name, instance, who) in scopes.items():
            key = f"{verb.value.lower()}{scope}"
            channels[f"srv{verb.value.title()}{scope}"] = _channel(
                control_subject(verb, name=name, id=instance),
                f"nats.micro {verb.value} of {who}. Every replica answers: no queue group.",
                ["microRequest"],
            )
            operations[key] = _operation(
                "receive",
                f"srv{verb.value.title()}{scope}",
                ["microRequest"],
                f"Answer $SRV.{verb.value} ({who}).",
                ("srvReply", [f"micro{verb.value.title()}"]),
            )
    channels["srvReply"] = _channel(None, "The asker's reply inbox.", ["microPing", "microInfo", "microStats"])
    return channels, operations


def asyncapi_document() -> dict[str, Any]:
    prefix = _default("bus.subject_prefix")
    queue_group = _default("bus.queue_group")
    subjects = Subjects(prefix)
    r, i, d = _SENTINELS["requester"], _SENTINELS["request_id"], _SENTINELS["device"]
    micro_channels, micro_operations = _micro(_default("bus.service_name"))
    channels = {
        "execute": _channel(
            _address(subjects.execute(r)),
            f"Interactive requests, load-balanced over the replicas by the queue group {queue_group}.",
            ["executeRequest"],
            **{"x-nats-queue-group": queue_group},
        ),
        "executeReply": _channel(
            None,
            "The requester's reply inbox: one aggregate reply, or with stream=true one reply per device, "
            "a summary and an empty end marker; or an error.",
            ["executeResponse", "streamedResult", "streamedSummary", "streamEnd", "errorReply"],
        ),
        "outputs": _channel(
            _address(subjects.outputs(r)),
            f"Large outputs, fetched through the service (queue group {queue_group}): requesters need no "
            f"JetStream permissions, and get only outputs of their own results.",
            ["outputRequest"],
            **{"x-nats-queue-group": queue_group},
        ),
        "outputsReply": _channel(
            None,
            "The requester's reply inbox: the output's chunks, then an empty end marker; or an error "
            "(output_not_found).",
            ["outputChunk", "streamEnd", "errorReply"],
        ),
        "history": _channel(
            _address(subjects.history(r)),
            f"Replay of the requester's own stored results, through the service (queue group {queue_group}): "
            "requesters hold no JetStream permissions, so no one reads or deletes another's consumers.",
            ["historyRequest"],
            **{"x-nats-queue-group": queue_group},
        ),
        "historyReply": _channel(
            None,
            "The requester's reply inbox: one message per stored result, oldest first, then an end marker; "
            "or an error.",
            ["historyRecord", "historyEnd", "errorReply"],
        ),
        "jobs": _channel(
            _address(subjects.jobs(r)),
            "Fire-and-forget jobs, kept in a JetStream work queue until a replica has published every result.",
            ["jobRequest"],
            **{
                "x-nats-jetstream": {
                    "stream": _default("jobs.stream"),
                    "retention": "workqueue",
                    "durable_consumer": CONSUMER,
                }
            },
        ),
        "jobNotify": _channel(
            None,
            f"The subject named by the job's notify field: under {subjects.notify(r)}.> or the requester's own "
            "reply inbox (any other subject refuses the job with reply_forbidden).",
            ["jobSummary", "jobError"],
        ),
        "results": _channel(
            _address(subjects.result(r, i, d, 22)),
            "One message per device result, kept for replay; device is the sanitised hostname, "
            f"plus -p<port> when the port is not 22. The token {SUMMARY_TOKEN} is never a device: see summary.",
            ["deviceResult"],
            **{"x-nats-jetstream": {"stream": _default("results.stream"), "deduplication": MSG_ID}},
        ),
        "summary": _channel(
            _address(subjects.summary(r, i)),
            "The request's summary, in the same stream as its results.",
            ["requestSummary"],
            **{"x-nats-jetstream": {"stream": _default("results.stream"), "deduplication": MSG_ID}},
        ),
        "schedules": _channel(
            _address(subjects.schedules(r)),
            f"Managing the requester's own schedules (add, list, show, pause, resume, rm), through the service "
            f"(queue group {queue_group}): the service checks each definition and stores it in the KV bucket "
            f"{_default('schedules.bucket')} with the requester taken from this subject; requesters hold no KV "
            "permissions. Each tick is enqueued once across the replicas on an internal subject (not part of "
            "this contract) and run like a job.",
            ["scheduleRequest"],
            **{"x-nats-queue-group": queue_group},
        ),
        "schedulesReply": _channel(
            None,
            "The requester's reply inbox: the schedules concerned with their state; or an error "
            "(invalid_schedule, schedule_not_found, schedule_exists, ...).",
            ["scheduleReply", "errorReply"],
        ),
        "changes": _channel(
            _address(subjects.changes(r, d, 22)),
            "One message when a (device, command) result of the requester differs from the previous one, once "
            "volatile fields (uptimes, counters, ages, timestamps) are ignored; device as in results. Kept for "
            "replay; subscribe to the requester's own changes (" + _address(subjects.changes(r)) + ").",
            ["changeEvent"],
            **{"x-nats-jetstream": {"stream": _default("changes.stream"), "deduplication": MSG_ID}},
        ),
        **micro_channels,
    }
    reply_messages = ["executeResponse", "streamedResult", "streamedSummary", "streamEnd", "errorReply"]
    operations = {
        "execute": {
            **_operation(
                "receive",
                "execute",
                ["executeRequest"],
                "Run show commands and reply.",
                ("executeReply", reply_messages),
            ),
            "bindings": {"nats": {"queue": queue_group, "bindingVersion": NATS_BINDING_VERSION}},
        },
        "fetchOutput": {
            **_operation(
                "receive",
                "outputs",
                ["outputRequest"],
                "Stream one of the requester's large outputs back.",
                ("outputsReply", ["outputChunk", "streamEnd", "errorReply"]),
            ),
            "bindings": {"nats": {"queue": queue_group, "bindingVersion": NATS_BINDING_VERSION}},
        },
        "replayHistory": {
            **_operation(
                "receive",
                "history",
                ["historyRequest"],
                "Stream the requester's own stored results back.",
                ("historyReply", ["historyRecord", "historyEnd", "errorReply"]),
            ),
            "bindings": {"nats": {"queue": queue_group, "bindingVersion": NATS_BINDING_VERSION}},
        },
        "runJob": _operation("receive", "jobs", ["jobRequest"], "Run a job from the shared durable consumer."),
        "notifyJob": _operation("send", "jobNotify", ["jobSummary", "jobError"], "Tell the job's notify subject."),
        "publishResult": _operation("send", "results", ["deviceResult"], "Publish each device result when done."),
        "publishSummary": _operation("send", "summary", ["requestSummary"], "Publish the request's summary."),
        "manageSchedules": {
            **_operation(
                "receive",
                "schedules",
                ["scheduleRequest"],
                "Add, list, show, pause, resume or remove the requester's own schedules.",
                ("schedulesReply", ["scheduleReply", "errorReply"]),
            ),
            "bindings": {"nats": {"queue": queue_group, "bindingVersion": NATS_BINDING_VERSION}},
        },
        "publishChange": _operation(
            "send", "changes", ["changeEvent"], "Publish a change event when a result differs from the previous one."
        ),
        **micro_operations,
    }
    parameters = {
        "requester": {
            "description": "Who is asking: the last subject token, which the shipped nats-server config "
            "lets each user publish only as itself. Replies go only under the requester's own inbox "
            "(_INBOX.<requester>.> with NATS auth, PYATS_REPLY_INBOX); a request whose reply subject lies "
            "elsewhere is dropped unanswered (reply_forbidden).",
            "examples": ["alice"],
        },
        "request_id": {
            "description": "The request's id, sanitised (UUIDv7 when the service made it).",
            "examples": [EXAMPLE_REQUEST_ID],
            "location": "$message.payload#/request_id",
        },
        "device": {
            "description": "The hostname with characters other than letters, digits, _ and - turned into _, "
            "plus -p<port> when the port is not 22.",
            "examples": ["edge-rtr-01", "10_0_0_1", "r1-p2222"],
        },
        "service_id": {"description": "A replica's nats.micro id.", "examples": ["Vq3rBKk5Zx7b3JMp0hJ4Bn"]},
    }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "pyats-ro-bus",
            "version": CONTRACT_VERSION,
            "description": (
                "Read-only Cisco show commands over NATS. Subjects are shown with the default prefix "
                f"{prefix} (PYATS_SUBJECT_PREFIX). Payloads are JSON; requests reject unknown fields. "
                f"Outputs too large for a message are in the JetStream Object Store bucket {BUCKET}, "
                "named by a command's output_ref. Within v1 the contract only grows."
            ),
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {"host": "localhost:4222", "protocol": "nats", "description": "The nats-server of make run."}
        },
        "channels": channels,
        "operations": operations,
        "components": {"parameters": parameters, "messages": messages()},
    }


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]
    """Writes repeated values out in full: anchors and aliases would only confuse a reader."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def asyncapi_yaml() -> str:
    body = yaml.dump(asyncapi_document(), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return f"# Generated from service/ by `make schemas`; do not edit.\n{body}"


def documents() -> dict[str, str]:
    """Every file this module owns in ``schemas/``."""
    return {**micro_schema_documents(), FILE_NAME: asyncapi_yaml()}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    write_documents(documents(), Path(args[0] if args else "schemas"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
