"""A complete LoRA run on the embedded model on this CPU, then base vs tuned on held-out conversations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfhost.models.gguf_spec import spec_from_gguf
from selfhost.tune.train import encode_example
from tests.cli.test_info_cli import _one_line_error, run

FACT = "The vault code is ORCHID-7731."
QUESTIONS = [
    "What is the vault code?",
    "Tell me the vault code.",
    "Which code opens the vault?",
    "Remind me of the vault code.",
    "What code do I need for the vault?",
    "Vault code, please?",
]


def conv(q: str) -> dict:  # type: ignore[type-arg]
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": FACT}]}


def test_labels_cover_only_the_assistant_turn(smollm2_path: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(smollm2_path.parent), gguf_file=smollm2_path.name)
    spec = spec_from_gguf(smollm2_path)
    ids, labels = encode_example(tok, spec, conv("What is the vault code?")["messages"], 512)
    trained = tok.decode([i for i, lab in zip(ids, labels, strict=True) if lab != -100])
    assert FACT in trained and "vault code?" not in trained and "<|im_end|>" in trained  # EOT is trained


SHIPPED = Path(__file__).resolve().parents[2] / "src" / "selfhost" / "tune" / "data" / "support_json.jsonl"


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The curated task the project ships (support answers in one fixed JSON shape), split without leakage."""
    d = tmp_path_factory.mktemp("tune")
    r = run(
        "data",
        "split",
        str(SHIPPED),
        "--train",
        str(d / "train.jsonl"),
        "--eval",
        str(d / "eval.jsonl"),
        "--eval-fraction",
        "0.17",
        "--json",
    )
    assert json.loads(r.stdout)["eval"] >= 10
    return d / "train.jsonl", d / "eval.jsonl"


@pytest.fixture(scope="module")
def adapter(split: tuple[Path, Path]) -> Path:
    train, _ = split
    out = train.parent / "adapter"
    r = run("tune", "embedded", str(train), "--out", str(out), "--steps", "150", "--lr", "2e-3", "--json")
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["examples"] >= 55 and rec["trainable_parameters"] > 0
    return out


def test_adapter_records_what_serving_needs(adapter: Path) -> None:
    assert (adapter / "adapter_config.json").exists()
    assert "<|im_start|>" in (adapter / "chat_template.jinja").read_text()
    losses = [json.loads(x)["loss"] for x in (adapter / "losses.jsonl").read_text().splitlines()]
    assert len(losses) == 150 and sum(losses[-10:]) < sum(losses[:10]) / 5


def test_eval_base_vs_tuned_on_held_out_prompts(adapter: Path, split: tuple[Path, Path]) -> None:
    _, held_out = split
    r = run("tune", "eval", "--base", "embedded", "--adapter", str(adapter), "--data", str(held_out), "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert set(d["base"]) == set(d["tuned"]) == {"loss", "pass_rate", "pass_rate_ci"}
    assert d["tuned"]["loss"] < d["base"]["loss"] / 2
    assert d["base"]["pass_rate"] == 0  # the base model never answers in the required JSON
    assert d["tuned"]["pass_rate"] > d["base"]["pass_rate"]
    assert d["improvement_significant"] is True


def test_tune_usage_errors(tmp_path: Path) -> None:
    assert "tune eval needs" in _one_line_error(run("tune", "eval", "--base", "embedded"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n")
    assert f"{bad}:1:" in _one_line_error(run("tune", "embedded", str(bad), "--out", str(tmp_path / "a")))


def test_interrupt_checkpoint_resume_and_merge(smollm2_path: Path, tmp_path: Path) -> None:
    from selfhost.models.hf import spec_from_hf_dir
    from selfhost.tune.train import TuneConfig, merge_adapter, train_lora

    spec = spec_from_gguf(smollm2_path)
    data = [conv(q)["messages"] for q in ("What is the vault code?", "Tell me the vault code.")]
    cfg = TuneConfig(steps=8, checkpoint_every=0, learning_rate=2e-3)
    out = tmp_path / "adapter"

    def stop_at_three(step: int, total: int, loss: float) -> None:
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_lora(spec, data, out, cfg, stop_at_three)
    assert (out / "checkpoint" / "trainer_state.pt").exists()
    resumed: list[int] = []
    train_lora(spec, data, out, cfg, lambda step, total, loss: resumed.append(step))
    assert resumed == [4, 5, 6, 7, 8]  # continued after the three finished steps
    steps = [json.loads(x)["step"] for x in (out / "losses.jsonl").read_text().splitlines()]
    assert steps == list(range(8))
    merged = merge_adapter(spec, out, tmp_path / "merged")
    assert "vllm" in merged["serve"] and (tmp_path / "merged" / "config.json").exists()
    m = spec_from_hf_dir(tmp_path / "merged")  # selfhost reads the merged model's facts back
    assert (m.n_layers, m.n_kv_heads, m.head_dim) == (30, 3, 64) and m.parameters == spec.parameters
