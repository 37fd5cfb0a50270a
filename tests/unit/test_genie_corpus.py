"""Real device outputs from the shared corpus parse to Genie's expected results, via the bus JSON.

The corpus lives outside the repository (Apache-2.0 upstream test data) and is never copied
in; without it these tests skip.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import msgspec
import pytest

from service.device.genie_parser import GenieOutputParser
from service.domain.models import DeviceOS, ParseStatus

pytestmark = [pytest.mark.unit, pytest.mark.corpus]


def _corpus_dir() -> Path:
    configured = os.environ.get("PYATS_DEVICE_OUTPUTS_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2].parent / "shared" / "device-outputs"


def _pairs() -> list[Any]:
    root = _corpus_dir()
    index = root / "index.json"
    if not index.is_file():
        reason = f"device-output corpus not found at {root} (set PYATS_DEVICE_OUTPUTS_DIR)"
        return [pytest.param(None, id="corpus-absent", marks=pytest.mark.skip(reason=reason))]
    pairs = json.loads(index.read_text(encoding="utf-8"))["pairs"]
    return [pytest.param(root / pair["path"], id=pair["path"]) for pair in pairs]


@pytest.fixture(scope="module")
def parser() -> GenieOutputParser:
    return GenieOutputParser()


@pytest.mark.parametrize("pair_dir", _pairs())
def test_output_parses_to_the_expected_json(parser: GenieOutputParser, pair_dir: Path) -> None:
    meta = json.loads((pair_dir / "meta.json").read_text(encoding="utf-8"))
    output = (pair_dir / "output.txt").read_text(encoding="utf-8")
    expected = json.loads((pair_dir / "expected.json").read_text(encoding="utf-8"))

    outcome = parser.parse(DeviceOS(meta["os"]), meta["command"], output)

    assert outcome.status is ParseStatus.OK, outcome.message
    assert json.loads(msgspec.json.encode(outcome.parsed)) == expected
