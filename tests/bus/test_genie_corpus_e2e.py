"""Every pair of ../shared/device-outputs, served by the lab and parsed through the whole service."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from nats.aio.client import Client

from service.cli.request import parse_command
from tests.conftest import CORPUS, SHARED_OUTPUTS, ServiceProcess, wire_device

pytestmark = [pytest.mark.bus, pytest.mark.corpus, pytest.mark.asyncio]


@pytest.mark.skipif(not CORPUS, reason=f"no device outputs at {SHARED_OUTPUTS}")
async def test_every_corpus_pair_parses_to_the_expected_result(
    service: ServiceProcess, client: Client, lab_device: Callable[[str], dict[str, Any]]
) -> None:
    async def one(pair: dict[str, Any]) -> tuple[str, Any, Any]:
        body = {
            "devices": [wire_device(lab_device(pair["name"]))],
            "commands": [parse_command(pair["command"])],
            "output_format": "parsed",
        }
        msg = await client.request("pyats.v1.execute.corpus", json.dumps(body).encode(), timeout=120)
        reply = json.loads(msg.data)
        expected = json.loads((pair["folder"] / "expected.json").read_text())
        command = reply["results"][0]["commands"][0] if "results" in reply else reply
        return f"{pair['os']} {pair['command']} ({pair['folder'].name})", command, expected

    outcomes = await asyncio.gather(*(one(pair) for pair in CORPUS))
    mismatches = [
        f"{label}: {command.get('parse_status')} {command.get('parse_error') or command.get('error')}"
        for label, command, expected in outcomes
        if command.get("parsed") != expected
    ]
    assert not mismatches, "\n".join(mismatches)
    assert len(outcomes) == len(CORPUS) >= 60
