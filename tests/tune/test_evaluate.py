"""tune eval decodes its greedy answers in left-padded batches: they must be the answers of one prompt at a time."""

from __future__ import annotations

import pytest

pytest.importorskip("peft")


def test_batched_greedy_answers_equal_one_at_a_time() -> None:
    from selfhost.models.resolve import resolve_model
    from selfhost.tune.evaluate import _Transformers
    from selfhost.tune.hf import load_hf

    spec = resolve_model("embedded")
    model, tok = load_hf(spec)
    runner = _Transformers(model, tok, spec, adapter_on=True)  # a plain model: no adapter to switch off
    questions = [
        "Hi",
        "What is the capital of France?",
        "My laptop battery drains overnight even when it is switched off. What should I check first?",
        "Write a JSON object with keys name and age.",
    ]
    requests = [([{"role": "user", "content": q}], n) for q in questions for n in (12,)]
    requests.append(([{"role": "user", "content": "Count to five."}], 6))  # another length: another batch
    batched = runner.generate_many(requests)
    one_at_a_time = [runner.generate_many([r])[0] for r in requests]
    assert batched == one_at_a_time
    assert len({len(tok(_q)["input_ids"]) for _q in questions}) > 1  # the batch really needed padding
    assert all(batched)
