"""The signing vectors both SDKs check: tests/sdk/signing_vectors.json, also read by the
TypeScript SDK's tests (sdk/typescript/test/signing.test.ts), so the two sign alike."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ballast.signing import sign

VECTORS_FILE = Path(__file__).with_name("signing_vectors.json")
VECTORS: list[dict[str, Any]] = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))["vectors"]
DOCS = Path(__file__).parents[2] / "docs" / "api.md"


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_the_python_sdk_signs_each_vector(vector: dict[str, Any]) -> None:
    signature = sign(
        vector["secret"], vector["timestamp"], vector["method"], vector["path"], vector["body"]
    )
    assert signature == vector["signature"]


def test_the_docs_worked_example_is_among_the_vectors() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    examples = [v for v in VECTORS if v["name"].startswith("docs:")]
    assert len(examples) == 3
    for vector in examples:
        assert f"`{vector['signature']}`" in docs, vector["name"]
        assert f"`{vector['path']}`" in docs
        assert vector["timestamp"] in docs
