from pathlib import Path

import pytest

from service.contract.schema import schema_documents

pytestmark = pytest.mark.unit

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


@pytest.mark.parametrize(("name", "text"), sorted(schema_documents().items()))
def test_published_schema_matches_the_code(name: str, text: str) -> None:
    path = SCHEMAS / name
    assert path.is_file(), f"schemas/{name} is missing: run make schemas"
    assert path.read_text() == text, f"schemas/{name} drifted from service/contract: run make schemas"
