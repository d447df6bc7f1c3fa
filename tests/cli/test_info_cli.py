"""`selfhost info` and `selfhost models` as a user runs them: a real subprocess, stdout and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil

from tests.helpers import write_sparse_huge_gguf

CONTRACT = [
    "architecture",
    "parameters",
    "n_layers",
    "n_heads",
    "n_kv_heads",
    "head_dim",
    "context_length",
    "vocab_size",
    "chat_template",
    "bos_token",
    "eos_token",
    "add_bos_token",
    "file_bytes",
    "tensor_types",
]


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`selfhost ARGS` as a user runs it. The limit is a safety net for hangs, not a speed test: a whole LoRA run
    took 60-85 s on one day and 3.5 min on another on the same 2-core machine."""
    return subprocess.run(
        [sys.executable, "-m", "selfhost", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_info_json_contract_on_embedded(smollm2_path: Path) -> None:
    r = run("info", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert set(CONTRACT) <= set(d)
    assert (d["n_layers"], d["n_heads"], d["n_kv_heads"], d["head_dim"], d["context_length"]) == (30, 9, 3, 64, 8192)
    assert d["file_bytes"] == smollm2_path.stat().st_size
    assert d["tensor_types"] == {"F32": 61, "Q4_1": 210, "Q8_0": 1}
    assert sum(d["tensor_bytes_by_type"].values()) == d["weights_bytes"]


def test_info_on_catalog_entry() -> None:
    r = run("info", "qwen2.5-7b", "--json")
    d = json.loads(r.stdout)
    assert (d["n_layers"], d["n_heads"], d["n_kv_heads"], d["head_dim"], d["vocab_size"]) == (28, 28, 4, 128, 152064)
    assert d["source"] == "catalog" and d["source_url"].endswith("Qwen2.5-7B-Instruct/blob/main/config.json")


def test_info_human_output(smollm2_path: Path) -> None:
    r = run("info", str(smollm2_path))
    assert r.returncode == 0 and "30 / 9 / 3 / 64" in r.stdout


def test_models_lists_embedded() -> None:
    d = json.loads(run("models", "--json").stdout)
    names = [m["model"] for m in d["models"]]
    assert "embedded:smollm2-135m" in names
    assert len(json.loads(run("models", "--catalog", "--json").stdout)["catalog"]) >= 20


def _one_line_error(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert lines[0].startswith("selfhost: error: ") and len(lines) <= 2
    return r.stderr


def test_missing_file_error() -> None:
    r = run("info", "/no/such/model.gguf")
    assert "no such file" in _one_line_error(r) and r.returncode == 2


def test_not_gguf_error(tmp_path: Path) -> None:
    p = tmp_path / "notes.txt"
    p.write_text("hello")
    r = run("info", str(p))
    assert "not a GGUF file" in _one_line_error(r)


def test_truncated_gguf_error(tmp_path: Path, smollm2_path: Path) -> None:
    p = tmp_path / "half.gguf"
    p.write_bytes(smollm2_path.read_bytes()[:40_000_000])
    err = _one_line_error(run("info", str(p)))
    assert "truncated" in err and "fetch the file again" in err


def test_unknown_catalog_name_suggests() -> None:
    err = _one_line_error(run("info", "qwen3-8"))
    assert "unknown model 'qwen3-8'" in err and "qwen3-8b" in err


def test_debug_shows_traceback() -> None:
    r = run("info", "/no/such/model.gguf", env={"SELFHOST_DEBUG": "1"})
    assert r.returncode == 2 and "Traceback" in r.stderr


def test_model_too_large_error(tmp_path: Path) -> None:
    huge = tmp_path / "huge.gguf"
    write_sparse_huge_gguf(huge, psutil.virtual_memory().total + 2 * 1024**3)
    r = run("check", str(huge), "-o", str(tmp_path / "r.html"), "--json-output", str(tmp_path / "r.json"))
    assert "GiB of RAM available" in _one_line_error(r) and r.returncode == 4
