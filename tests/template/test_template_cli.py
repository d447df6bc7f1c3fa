"""`selfhost template` through the real command, and `verify` against real llama-cpp-python servers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from selfhost.backends.server import LlamaCppServer
from selfhost.models.gguf_spec import spec_from_gguf
from selfhost.template.verify import verify_server
from tests.cli.test_info_cli import _one_line_error, run
from tests.helpers import mock_server_process

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]


def test_render_raw_contract(tmp_path: Path) -> None:
    m = tmp_path / "m.json"
    m.write_text(json.dumps(MESSAGES))
    r = run("template", "render", "--messages", str(m), "--add-generation-prompt", "--raw")
    assert r.returncode == 0, r.stderr
    assert r.stdout == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )


def test_render_template_file_vars_and_refusal(tmp_path: Path) -> None:
    m = tmp_path / "m.json"
    m.write_text(json.dumps(MESSAGES))
    t = tmp_path / "t.jinja"
    t.write_text("{{ bos_token }}{% if think %}T{% endif %}{% for x in messages %}[{{ x.content }}]{% endfor %}")
    r = run(
        "template",
        "render",
        "--messages",
        str(m),
        "--template",
        str(t),
        "--bos-token",
        "<s>",
        "--var",
        "think=true",
        "--raw",
    )
    assert r.stdout == "<s>T[Be brief.][Hi]"
    refuse = tmp_path / "r.jinja"
    refuse.write_text("{% if messages[0].role == 'system' %}{{ raise_exception('no system role') }}{% endif %}")
    r = run("template", "render", "--messages", str(m), "--template", str(refuse), "--raw")
    assert r.returncode == 3 and "no system role" in r.stderr and r.stdout == ""


def test_lint_json_contract() -> None:
    d = json.loads(run("template", "lint", "--json").stdout)
    assert d["family"] == "chatml" and d["supports_system_role"] is True
    assert all(set(f) == {"code", "severity", "message"} for f in d["findings"])


def test_lint_model_without_template(gemma3_path: Path) -> None:
    assert "has no chat template" in _one_line_error(run("template", "lint", str(gemma3_path)))


def test_diff_two_templates(tmp_path: Path) -> None:
    t = tmp_path / "other.jinja"
    t.write_text(
        "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    d = json.loads(run("template", "diff", "embedded", str(t), "--json").stdout)
    by = {c["conversation"]: c for c in d["conversations"]}
    # SmolLM2's template adds a default system prompt when there is none: only those conversations differ.
    assert by["system_user"]["same"] and not by["user"]["same"] and "SmolLM" in by["user"]["diff"]
    assert not d["identical"]


@pytest.fixture(scope="module")
def server(smollm2_path: Path) -> Iterator[LlamaCppServer]:
    with LlamaCppServer(smollm2_path, n_ctx=2048) as s:
        yield s


def test_verify_agrees_with_a_correct_server(server: LlamaCppServer) -> None:
    r = run("template", "verify", server.url, "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["agree"] and d["chat"]["prompt_tokens"] == d["raw_completion"]["prompt_tokens"] > 20


def test_verify_catches_a_server_with_the_wrong_template(smollm2_path: Path) -> None:
    with LlamaCppServer(smollm2_path, n_ctx=2048, chat_format="llama-2") as wrong:
        d = verify_server(wrong.url, spec_from_gguf(smollm2_path))
    assert not d["prompt_tokens_agree"] and d["prompt_token_difference"] != 0
    assert not d["agree"]


def test_verify_ollama_wire(tmp_path: Path) -> None:
    """The mock stands for Ollama (not runnable here): it applies no template, so what this proves is the wire
    path — /api/chat vs /api/generate raw=true and prompt_eval_count read from both — and that a server whose
    chat path evaluates a different prompt than selfhost's render is reported as differing."""
    with mock_server_process("--ttft", "0", "--itl", "0") as url:
        d = json.loads(run("template", "verify", url, "--api", "ollama", "--served-name", "mock-llm", "--json").stdout)
    assert d["api"] == "ollama" and isinstance(d["chat"]["prompt_tokens"], int)
    assert isinstance(d["raw_completion"]["prompt_tokens"], int) and not d["prompt_tokens_agree"]
