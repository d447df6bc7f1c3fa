"""A resumed quant run reuses only what the same model, files, suite and settings produced."""

from __future__ import annotations

import json
from pathlib import Path

from selfhost.quant.variants import quantize
from tests.cli.test_info_cli import run

SUITE = [
    {
        "id": "capital",
        "prompt": "What is the capital of France? One word.",
        # a regex check settles only with the whole answer: the outputs compared below are whole (evals/settle.py)
        "checks": [{"type": "contains", "value": "Paris"}, {"type": "regex", "pattern": "."}],
        "max_tokens": 12,
    },
    {
        "id": "sum",
        "prompt": "What is 2 + 3? Answer with the number only.",
        "checks": [{"type": "number", "value": 5}, {"type": "regex", "pattern": "."}],
        "max_tokens": 8,
    },
]


def _quant(model: str, out: Path, suite: Path, text: Path) -> dict:
    r = run(
        "quant", model, "--variants", "F16", "--suite", str(suite), "--text", str(text), "--out", str(out), "--json"
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]


def test_second_model_into_the_same_out_redoes_every_item(tmp_path: Path, smollm2_path: Path) -> None:
    # Model B: another model file with the same file name as model A (so its variant files get the same names):
    # the embedded model re-quantized to Q2_K, which answers differently.
    model_b = tmp_path / "b" / smollm2_path.name
    quantize(smollm2_path, model_b, "Q2_K")
    suite = tmp_path / "suite.jsonl"
    suite.write_text("".join(json.dumps(c) + "\n" for c in SUITE))
    text = tmp_path / "text.txt"
    text.write_text("The quick brown fox jumps over the lazy dog. " * 8)
    shared = tmp_path / "shared"

    _quant(str(smollm2_path), shared, suite, text)
    first = _records(shared)
    assert len(first) == 2

    _quant(str(model_b), shared, suite, text)
    after = _records(shared)
    assert len(after) == 4, "the second model must generate its own answers, not reuse the first model's"
    assert {r["key"] for r in after[2:]}.isdisjoint({r["key"] for r in first})

    # The second model's answers in the shared folder are exactly what it gives in a folder of its own.
    alone = tmp_path / "alone"
    _quant(str(model_b), alone, suite, text)
    assert [r["output"] for r in after[2:]] == [r["output"] for r in _records(alone)]
    assert [r["output"] for r in after[2:]] != [r["output"] for r in first], "model B should answer differently"

    # A rerun of the same model with the same suite and settings reuses everything.
    _quant(str(model_b), shared, suite, text)
    assert len(_records(shared)) == 4

    # Changing a case (its checks) makes that one item stale, and only it is redone.
    changed = [SUITE[0], {**SUITE[1], "checks": [{"type": "number", "value": 6}]}]
    suite.write_text("".join(json.dumps(c) + "\n" for c in changed))
    _quant(str(model_b), shared, suite, text)
    assert len(_records(shared)) == 5
