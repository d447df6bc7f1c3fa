"""Chat templates render in jinja2's sandbox, with transformers' settings and globals."""

from __future__ import annotations

import pytest

from selfhost.models.gguf_spec import spec_from_gguf
from selfhost.template.render import TemplateRaised, TemplateRenderError, render_chat


def test_smollm2_template(smollm2_path) -> None:  # type: ignore[no-untyped-def]
    spec = spec_from_gguf(smollm2_path)
    out = render_chat(
        spec.chat_template or "", [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    )
    assert out == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")


def test_trim_blocks_like_transformers() -> None:
    t = "{% for m in messages %}\n{{ m['content'] }}\n{% endfor %}"
    assert render_chat(t, [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]) == "a\nb\n"


def test_raise_exception_is_a_template_refusal() -> None:
    t = "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    with pytest.raises(TemplateRaised, match="System role not supported") as err:
        render_chat(t, [{"role": "system", "content": "x"}])
    assert err.value.exit_code == 3


@pytest.mark.parametrize(
    "payload",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ messages.append(1) }}",
    ],
)
def test_sandbox_blocks_template_code(payload: str) -> None:
    with pytest.raises(TemplateRenderError):
        render_chat(payload, [{"role": "user", "content": "x"}])
