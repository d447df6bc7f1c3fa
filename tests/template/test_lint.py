"""Lint catches the known template bug classes on real official templates."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfhost.models.gguf_spec import spec_from_gguf
from selfhost.template.lint import control_tokens_in, detect_family, lint_template
from selfhost.template.render import TemplateRenderError, render_chat


def codes(report) -> set[str]:  # type: ignore[no-untyped-def]
    return {f.code for f in report.findings}


def test_double_bos_on_llama3(llama_cpp_templates: dict[str, str]) -> None:
    t = llama_cpp_templates["meta-llama-Llama-3.1-8B-Instruct"]
    r = lint_template(t, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>", add_bos_token=True)
    assert r.family == "llama3" and "double_bos" in codes(r)
    ok = lint_template(t, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>", add_bos_token=False)
    assert "double_bos" not in codes(ok)


def test_gemma_rejects_system_role(llama_cpp_templates: dict[str, str]) -> None:
    r = lint_template(llama_cpp_templates["google-gemma-2-2b-it"], bos_token="<bos>", eos_token="<eos>")
    assert r.family == "gemma" and not r.supports_system_role and "no_system_role" in codes(r)


def test_mistral_moves_system_prompt_to_last_user_turn(llama_cpp_templates: dict[str, str]) -> None:
    r = lint_template(llama_cpp_templates["mistralai-Mistral-Nemo-Instruct-2407"], bos_token="<s>", eos_token="</s>")
    assert r.family.startswith("mistral") and r.system_placement == "last_user_turn"
    assert "system_in_last_user_turn" in codes(r)


def test_missing_generation_prompt() -> None:
    t = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    r = lint_template(t)
    assert r.family == "chatml" and not r.supports_generation_prompt and "no_generation_prompt" in codes(r)


def test_qwen_tool_arguments_as_json_string(llama_cpp_templates: dict[str, str]) -> None:
    r = lint_template(llama_cpp_templates["Qwen-Qwen2.5-7B-Instruct"], eos_token="<|im_end|>")
    assert r.family == "chatml" and r.supports_tools and "tool_arguments_must_be_mapping" in codes(r)


def test_ssti_payload_flagged_and_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = "{{ lipsum.__globals__['os'].popen('touch " + str(marker) + "').read() }}"
    r = lint_template(payload)
    assert "ssti" in codes(r) and any(f.severity == "error" for f in r.findings)
    with pytest.raises(TemplateRenderError):
        render_chat(payload, [{"role": "user", "content": "x"}])
    assert not marker.exists()


def test_embedded_models(smollm2_path: Path, gemma3_path: Path) -> None:
    smol = spec_from_gguf(smollm2_path)
    r = lint_template(
        smol.chat_template or "",
        bos_token=smol.tokenizer.bos_token,
        eos_token=smol.tokenizer.eos_token,
        add_bos_token=smol.tokenizer.add_bos_token,
    )
    assert r.family == "chatml" and r.supports_system_role and r.supports_generation_prompt
    assert not any(f.severity == "error" for f in r.findings)
    # The Gemma 3 270M package is the base model: its GGUF carries no chat template at all.
    assert spec_from_gguf(gemma3_path).chat_template is None


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("openai-gpt-oss-120b", "gpt-oss/harmony"),
        ("CohereForAI-c4ai-command-r-plus-tool_use", "command-r"),
        ("microsoft-Phi-3.5-mini-instruct", "phi3"),
        ("deepseek-ai-DeepSeek-R1-Distill-Llama-8B", "deepseek"),
        ("meta-llama-Llama-3.2-3B-Instruct", "llama3"),
        ("Qwen-Qwen3-0.6B", "chatml"),
        ("llama-cpp-rwkv-world", "unknown"),
    ],
)
def test_family_detection(llama_cpp_templates: dict[str, str], name: str, family: str) -> None:
    assert detect_family(llama_cpp_templates[name]) == family


def test_control_tokens_in_user_content() -> None:
    f = control_tokens_in([{"role": "user", "content": "hi <|im_end|> there"}], ["<|im_end|>", "<|im_start|>"])
    assert [x.code for x in f] == ["control_token_in_content"]
