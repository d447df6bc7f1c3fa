"""A complete LoRA run on the embedded model on this CPU, then base vs tuned on held-out conversations."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from selfhost.errors import UsageError
from selfhost.models.gguf_spec import spec_from_gguf
from selfhost.tune.dataset import encode_example
from tests.cli.test_info_cli import _one_line_error, run
from tests.helpers import has_lines, interrupt_when

FACT = "The vault code is ORCHID-7731."
QUESTIONS = [
    "What is the vault code?",
    "Tell me the vault code.",
    "Which code opens the vault?",
    "Remind me of the vault code.",
    "What code do I need for the vault?",
    "Vault code, please?",
]


def _tokenizer(gguf: Path) -> Any:
    """The GGUF's transformers tokenizer, as tune loads it (from the kept dequantized copy after the first time)."""
    from selfhost.tune.hf import load_hf

    return load_hf(spec_from_gguf(gguf))[1]


def conv(q: str) -> dict:  # type: ignore[type-arg]
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": FACT}]}


def test_labels_cover_only_the_assistant_turn(smollm2_path: Path) -> None:
    tok = _tokenizer(smollm2_path)
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
    train, held_out = split
    out = train.parent / "adapter"
    # one epoch (the default is three) at a higher learning rate: the same lesson in a third of the time; the
    # held-out loss every third step (5 points; the default, 10 per run, evaluates at every one of the 15 steps)
    args = ("--lr", "5e-3", "--epochs", "1", "--eval", str(held_out), "--eval-every", "3", "--json")
    r = run("tune", "embedded", str(train), "--out", str(out), *args)
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout)
    assert rec["examples"] >= 55 and rec["trainable_parameters"] > 0 and rec["trainer"] == "trl.SFTTrainer"
    assert rec["steps"] == -(-rec["examples"] // 4)  # 1 epoch of batch 4
    return out


def test_adapter_records_what_serving_needs(adapter: Path) -> None:
    assert (adapter / "adapter_config.json").exists()
    assert "<|im_start|>" in (adapter / "chat_template.jinja").read_text()
    rows = [json.loads(x) for x in (adapter / "losses.jsonl").read_text().splitlines()]
    train = [r["loss"] for r in rows if "loss" in r]
    held = [r["eval_loss"] for r in rows if "eval_loss" in r]
    assert [r["step"] for r in rows if "loss" in r] == list(range(1, len(train) + 1))
    assert sum(train[-5:]) < sum(train[:5]) / 5
    assert len(held) == 5 and held[-1] < held[0] / 5  # measured on held-out conversations during training
    page = (adapter / "report.html").read_text()
    assert "<svg" in page and "held-out loss" in page and "Loss per optimizer step" in page


@pytest.fixture(scope="module")
def hf_eval(adapter: Path, split: tuple[Path, Path]) -> dict:  # type: ignore[type-arg]
    _, held_out = split
    r = run("tune", "eval", "--base", "embedded", "--adapter", str(adapter), "--data", str(held_out), "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


def test_eval_base_vs_tuned_on_held_out_prompts(adapter: Path, hf_eval: dict) -> None:  # type: ignore[type-arg]
    d = hf_eval
    assert set(d["base"]) == set(d["tuned"]) == {"loss", "pass_rate", "pass_rate_ci"}
    assert d["tuned"]["loss"] < d["base"]["loss"] / 2
    assert d["base"]["pass_rate"] == 0  # the base model never answers in the required JSON
    assert d["tuned"]["pass_rate"] > d["base"]["pass_rate"]
    assert d["improvement_significant"] is True
    assert json.loads((adapter / "eval.json").read_text())["tuned"] == d["tuned"]
    assert "Base vs tuned" in (adapter / "report.html").read_text()


def test_gguf_export_serves_what_was_trained(
    adapter: Path,
    split: tuple[Path, Path],
    hf_eval: dict,  # type: ignore[type-arg]
    tmp_path: Path,
    smollm2_path: Path,
) -> None:
    """llama.cpp's own converters turn the adapter (and the merged model) into GGUF; llama.cpp then gives the
    same losses and pass rates that transformers gave for the adapter as trained."""
    from selfhost.tune.evaluate import _llamacpp, _measure

    _, held_out = split
    merged = tmp_path / "merged"
    r = run("tune", "export", "--adapter", str(adapter), "--merge", str(merged), "--json")
    assert r.returncode == 0, r.stderr
    e = json.loads(r.stdout)
    assert Path(e["adapter_gguf"]).exists() and "ADAPTER" in (adapter / "Modelfile").read_text()
    assert f"--lora {adapter / 'adapter.gguf'}" in e["serve"]["llama.cpp"]
    assert e["serve"]["llama.cpp"].endswith(f"--chat-template-file {adapter / 'chat_template.jinja'}")
    info = json.loads(run("info", e["merged_gguf"], "--json").stdout)
    base_info = json.loads(run("info", str(smollm2_path), "--json").stdout)
    for k in ("parameters", "chat_template", "bos_token", "eos_token", "add_bos_token"):
        assert info[k] == base_info[k], k

    # --base is optional: the run directory records its base model. The suite adds prompts beyond the held-out
    # conversations: one in the task's format, two general ones the adapter was not trained on.
    schema = {
        "type": "object",
        "required": ["product", "category", "action"],
        "properties": {"category": {"enum": ["hardware", "performance", "power", "software", "connectivity"]}},
    }
    system = "Reply only with a JSON object with keys product, category, action."
    suite = tmp_path / "suite.jsonl"
    cases = [
        {
            "id": "task",
            "category": "task",
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": "My mouse lags."}],
            "checks": [{"type": "json_schema", "schema": schema}],
        },
        {
            "id": "sum",
            "prompt": "What is 12 + 30? Reply with the number only.",
            "checks": [{"type": "number", "value": 42}],
        },
        {
            "id": "capital",
            "prompt": "What is the capital of France?",
            "checks": [{"type": "contains", "value": "Paris"}],
        },
    ]
    suite.write_text("".join(json.dumps(c) + "\n" for c in cases))
    args = ("--data", str(held_out), "--engine", "llama.cpp", "--suite", str(suite), "--json")
    r = run("tune", "eval", "--adapter", str(adapter), *args)
    assert r.returncode == 0, r.stderr
    served = json.loads(r.stdout)
    assert served["engine"] == "llama.cpp" and served["improvement_significant"] is True
    items = {i["id"]: i for i in served["suite"]["items"]}
    assert served["suite"]["cases"] == 3 and set(served["suite"]["by_category"]) == {"task", "custom"}
    assert items["task"]["tuned_passed"] and not items["task"]["base_passed"], items["task"]
    for side in ("base", "tuned"):
        assert served[side]["loss"] == pytest.approx(hf_eval[side]["loss"], rel=0.1, abs=0.01), side
        assert abs(served[side]["pass_rate"] - hf_eval[side]["pass_rate"]) <= 2 / served["examples"], side

    spec = spec_from_gguf(smollm2_path)
    conversations = [json.loads(x)["messages"] for x in held_out.read_text().splitlines()]
    with _llamacpp(Path(e["merged_gguf"]), None, spec) as merged_model:
        _, passes, _ = _measure(merged_model, conversations, [], 32)
    assert sum(passes) / len(passes) >= served["tuned"]["pass_rate"] - 2 / len(passes)


def test_out_dir_of_another_run_is_not_resumed(tmp_path: Path) -> None:
    """Checkpoints are resumed only under the key of the run that wrote them (model, data, template, settings)."""
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(conv(q)) + "\n" for q in QUESTIONS))
    out = tmp_path / "run"
    (out / "checkpoint-3").mkdir(parents=True)
    key = {
        "base_model": "file:/elsewhere/other.gguf:1:1",
        "data": "x",
        "eval_data": "x",
        "chat_template": "x",
        "settings": "x",
    }
    (out / "selfhost-run-key.json").write_text(json.dumps(key))
    err = _one_line_error(run("tune", "embedded", str(data), "--out", str(out), "--steps", "2", "--no-data-check"))
    assert "holds a run of another base_model / data / eval_data / chat_template / settings" in err
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint-3", "selfhost-run-key.json"]  # nothing touched
    (out / "selfhost-run-key.json").unlink()  # a checkpoint without a key (an older or foreign run): refused too
    assert "holds a run of another" in _one_line_error(
        run("tune", "embedded", str(data), "--out", str(out), "--steps", "2", "--no-data-check")
    )


def test_tune_usage_errors(tmp_path: Path) -> None:
    assert "tune eval needs" in _one_line_error(run("tune", "eval", "--base", "embedded"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n")
    assert f"{bad}:1:" in _one_line_error(run("tune", "embedded", str(bad), "--out", str(tmp_path / "a")))
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps(conv(QUESTIONS[0])) + "\n")
    assert "'--batch-size': '0' is out of range: must be ≥ 1" in _one_line_error(
        run("tune", "embedded", str(good), "--out", str(tmp_path / "b"), "--batch-size", "0")
    )
    assert "QLoRA" in _one_line_error(run("tune", "embedded", str(good), "--out", str(tmp_path / "c"), "--qlora"))


def test_long_conversations_are_never_cut_silently(smollm2_path: Path, tmp_path: Path) -> None:
    from selfhost.tune.config import TuneConfig
    from selfhost.tune.dataset import tokenized_dataset as _dataset

    long_answer = "The vault code is ORCHID-7731. " * 30
    rows = [
        conv(QUESTIONS[0]),
        {"messages": [{"role": "user", "content": "Why?"}, {"role": "assistant", "content": long_answer}]},
    ]
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    err = _one_line_error(run("tune", "embedded", str(data), "--out", str(tmp_path / "a"), "--max-seq-len", "64"))
    assert "1 of 2 conversations are longer than --max-seq-len 64" in err and f"{data}:2" in err

    tok = _tokenizer(smollm2_path)
    spec = spec_from_gguf(smollm2_path)
    examples = [r["messages"] for r in rows]
    dropped, where = _dataset(tok, spec, examples, TuneConfig(max_seq_len=64, on_long="drop"), ["a:1", "a:2"])
    assert len(dropped) == 1 and where == ["a:2"]
    cut, _ = _dataset(tok, spec, examples, TuneConfig(max_seq_len=64, on_long="truncate"))
    assert [len(x) for x in cut["input_ids"]] == [len(dropped[0]["input_ids"]), 64]


def test_data_defects_are_named_before_training(tmp_path: Path) -> None:
    train, held_out = tmp_path / "train.jsonl", tmp_path / "eval.jsonl"
    train.write_text("".join(json.dumps(conv(q)) + "\n" for q in QUESTIONS + QUESTIONS[:1]))  # one repeated
    held_out.write_text(json.dumps(conv(QUESTIONS[2])) + "\n")  # also in train: leakage
    args = ("tune", "embedded", str(train), "--out", str(tmp_path / "run"), "--eval", str(held_out), "--launch-only")
    r = run(*args, "--json")
    assert r.returncode == 0, r.stderr
    assert "exact_duplicate" in r.stderr and "leakage_exact" in r.stderr and f"selfhost data check {train}" in r.stderr
    found = json.loads((tmp_path / "run" / "launch" / "run.json").read_text())["record_extra"]["data_check"]
    assert found["exact_duplicate"] == 1 and found["leakage_exact"] == 1
    r = run(*args, "--no-data-check", "--json")
    assert "data check" not in r.stderr


def test_probe_measures_an_upper_bound_of_the_run(adapter: Path, split: tuple[Path, Path]) -> None:
    """Worst-case steps (full batches of the longest conversation) before training: their measured peak memory
    bounds the real run's (the shared adapter's, trained with the same settings), each in its own process, as a
    user would run them."""
    train, held_out = split
    args = ("--lr", "5e-3", "--epochs", "1", "--eval", str(held_out), "--eval-every", "3", "--json")  # as adapter
    r = run("tune", "embedded", str(train), *args, "--probe")
    assert r.returncode == 0, r.stderr
    probe = json.loads(r.stdout)
    trained = json.loads((adapter / "selfhost-run.json").read_text())
    assert probe["worst_case_tokens_per_step"] == 4 * probe["longest_conversation_tokens"]
    assert probe["step_s"] > 0 and probe["run_steps"] == trained["steps"]
    assert probe["run_s_upper_bound"] == pytest.approx(probe["step_s"] * trained["steps"])

    def grew(m: dict) -> int:  # type: ignore[type-arg]
        return int(m["peak_bytes"] - m["before_train_bytes"])

    assert trained["memory"]["device"] == probe["memory"]["device"] == "cpu"
    assert 100 * 2**20 < grew(trained["memory"]) <= 1.15 * grew(probe["memory"])


def test_a_model_without_a_template_needs_one_and_keeps_it(gemma3_path: Path, tmp_path: Path) -> None:
    """A base model (Gemma 3 270M here ships none) is refused before its weights load; --chat-template supplies
    one, which is what the labels come from and what the run directory keeps."""
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(conv(q)) + "\n" for q in QUESTIONS[:2]))
    err = _one_line_error(run("tune", str(gemma3_path), str(data), "--out", str(tmp_path / "a"), "--no-data-check"))
    assert "has no chat template to train with" in err and "--chat-template FILE" in err

    template = tmp_path / "t.jinja"
    template.write_text(
        "{% for m in messages %}### {{ m['role'] }}\n{{ m['content'] }}{% if m['role'] == 'assistant' %}"
        "{{ eos_token }}{% endif %}\n{% endfor %}{% if add_generation_prompt %}### assistant\n{% endif %}"
    )
    out = tmp_path / "run"
    args = ("--out", str(out), "--steps", "1", "--batch-size", "2", "--no-data-check", "--json")
    r = run("tune", "embedded", str(data), "--chat-template", str(template), *args)
    assert r.returncode == 0, r.stderr
    assert (out / "chat_template.jinja").read_text() == template.read_text()

    from selfhost.tune.dataset import with_run_template

    spec = with_run_template(spec_from_gguf(_embedded()), out)
    tok = _tokenizer(_embedded())
    ids, labels = encode_example(tok, spec, conv(QUESTIONS[0])["messages"], None)
    assert "### assistant" in tok.decode(ids) and "<|im_start|>" not in tok.decode(ids)
    assert tok.decode([i for i, lab in zip(ids, labels, strict=True) if lab != -100]).startswith(FACT)


def _embedded() -> Path:
    from selfhost.models.resolve import local_gguf_path, resolve_model

    return local_gguf_path(resolve_model("embedded"))


def test_steps_follow_epochs_batch_and_accumulation(tmp_path: Path) -> None:
    import torch

    from selfhost.tune.config import TuneConfig
    from selfhost.tune.train import sft_config as _sft_config

    def steps(**kw: float) -> int:
        return int(_sft_config(TuneConfig(**kw), tmp_path, 60, False, torch).max_steps)  # type: ignore[arg-type]

    assert steps() == 45  # ceil(60 / 4) × 3 epochs
    assert steps(grad_accum=2) == 24  # ceil(60 / 8) × 3
    assert steps(batch_size=7, epochs=1.5) == 14  # round(ceil(60 / 7) × 1.5)
    assert steps(steps=7) == 7


def test_interrupt_checkpoint_resume_and_merge(smollm2_path: Path, tmp_path: Path) -> None:
    from selfhost.models.hf import spec_from_hf_dir
    from selfhost.tune.config import TuneConfig
    from selfhost.tune.hf import load_hf, merge_adapter
    from selfhost.tune.train import train_lora

    spec = spec_from_gguf(smollm2_path)
    data = [conv(q)["messages"] for q in ("What is the vault code?", "Tell me the vault code.")]
    cfg = TuneConfig(steps=8, checkpoint_every=0, learning_rate=2e-3)
    out = tmp_path / "adapter"

    def ctrl_c_at_three(step: int, total: int, loss: float) -> None:
        if step == 3:
            signal.raise_signal(signal.SIGINT)  # what Ctrl-C delivers

    before = signal.getsignal(signal.SIGINT)  # Python's default, or SIG_IGN in a suite started in the background
    with pytest.raises(KeyboardInterrupt):
        train_lora(spec, data, out, cfg, ctrl_c_at_three)
    assert (out / "checkpoint-3" / "adapter_model.safetensors").exists()
    assert signal.getsignal(signal.SIGINT) is before  # restored
    resumed: list[int] = []
    rec = train_lora(spec, data, out, cfg, lambda step, total, loss: resumed.append(step))
    assert resumed == [4, 5, 6, 7, 8] and rec["resumed_from"].endswith("checkpoint-3")
    steps = [json.loads(x)["step"] for x in (out / "losses.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 9))
    with pytest.raises(UsageError, match="already holds a run trained for 8 steps"):
        train_lora(spec, data, out, cfg)
    merged = merge_adapter(spec, out, tmp_path / "merged")
    assert "vllm" in merged["serve"] and (tmp_path / "merged" / "config.json").exists()
    m = spec_from_hf_dir(tmp_path / "merged")  # selfhost reads the merged model's facts back
    assert (m.n_layers, m.n_kv_heads, m.head_dim) == (30, 3, 64) and m.parameters == spec.parameters
    with pytest.raises(UsageError, match="QLoRA needs a CUDA GPU"):  # the merged HF model is QLoRA-able, not here
        load_hf(m, qlora=True)
    # An HF directory is the usual starting point on a GPU host: train on the merged model, template and all
    assert m.chat_template == spec.chat_template
    rec = train_lora(m, data, tmp_path / "from-hf", TuneConfig(steps=2, checkpoint_every=0))
    assert rec["steps"] == 2 and rec["base_model"] == str(tmp_path / "merged")
    assert (tmp_path / "from-hf" / "adapter_model.safetensors").exists()
    from selfhost.tune.evaluate import evaluate_adapter_llamacpp

    with pytest.raises(UsageError, match="needs the base model as a GGUF file"):
        evaluate_adapter_llamacpp(m, tmp_path / "from-hf", data)


def test_multi_process_launch_trains_data_parallel(tmp_path: Path) -> None:
    """The accelerate config and script written for a multi-GPU host, run here: without CUDA the same launch
    starts its two processes on the CPU (gloo), so the data-parallel path itself is exercised."""
    from selfhost.tune.config import TuneConfig
    from selfhost.tune.launch import run_launch, write_launch

    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(conv(q)) + "\n" for q in QUESTIONS))
    out = tmp_path / "run"
    plan = write_launch("embedded", data, out, TuneConfig(steps=3, batch_size=2, checkpoint_every=0), 2)
    config = (out / "launch" / "accelerate.yaml").read_text()
    assert "distributed_type: MULTI_GPU" in config and "num_processes: 2" in config
    rec = run_launch(plan)
    assert rec["processes"] == 2 and rec["steps"] == 3
    assert len((out / "losses.jsonl").read_text().splitlines()) == 3  # one process writes
    assert (out / "adapter_model.safetensors").exists() and (out / "report.html").exists()


def test_launch_only_writes_a_qlora_plan_for_a_gpu_host(tmp_path: Path) -> None:
    from selfhost.tune.config import TuneConfig
    from selfhost.tune.launch import write_launch

    plan = write_launch("/models/llama", tmp_path / "d.jsonl", tmp_path / "run", TuneConfig(qlora=True), 4)
    run_cfg = json.loads((tmp_path / "run" / "launch" / "run.json").read_text())
    assert run_cfg["model"] == "/models/llama" and run_cfg["config"]["qlora"] is True
    assert "mixed_precision: 'no'" in (tmp_path / "run" / "launch" / "accelerate.yaml").read_text()
    assert plan["command"][:2] == ["accelerate", "launch"] and "selfhost.tune.launch" in plan["command"]
    r = run("tune", "embedded", str(SHIPPED), "--out", str(tmp_path / "cli"), "--launch-only", "--gpus", "8", "--json")
    assert json.loads(r.stdout)["processes"] == 8
    assert json.loads((tmp_path / "cli" / "launch" / "run.json").read_text())["model"] == "embedded"
    assert "num_processes: 8" in (tmp_path / "cli" / "launch" / "accelerate.yaml").read_text()


def test_ctrl_c_on_the_command_keeps_a_checkpoint(tmp_path: Path) -> None:
    """A real SIGINT to `selfhost tune` while it trains: exit 130, a checkpoint, and how to resume."""
    import sys

    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(conv(q)) + "\n" for q in QUESTIONS))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "selfhost", "tune", "embedded", str(data), "--out", str(out), "--steps", "500"]
    args = [*cmd, "--batch-size", "1", "--no-data-check"]
    proc = interrupt_when(args, has_lines(out / "losses.jsonl", 2), within_s=120)
    err = proc.stderr
    assert proc.returncode == 130, err
    kept = sorted(out.glob("checkpoint-*"))
    assert kept and (kept[-1] / "adapter_model.safetensors").exists()
    assert "rerun the same command to resume" in err and "Traceback" not in err


def test_tune_dependencies_are_optional_and_lazy(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    from selfhost.errors import MissingDependencyError
    from selfhost.tune.hf import require_tune_deps

    monkeypatch.setitem(sys.modules, "trl", None)  # as if `selfhost[tune]` were not installed
    with pytest.raises(MissingDependencyError) as err:
        require_tune_deps()
    assert "pip install 'selfhost[tune]'" in str(err.value.next_step)
    # Nothing heavy is imported until a tune command runs: the CLI and every other command stay fast.
    probe = (
        "import sys, selfhost.cli.main, selfhost.tune.train; "
        "print(sorted({'torch', 'transformers', 'trl', 'peft'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
