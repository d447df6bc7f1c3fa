"""Token counts with the model's own tokenizer, for plain text and for whole chat requests."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from selfhost.errors import UsageError
from selfhost.models.spec import ModelSpec
from selfhost.template.render import render_chat

__all__ = ["Tokenizer"]


class Tokenizer:
    """llama.cpp's tokenizer from a GGUF (vocabulary only, no weights), or HF `tokenizers` for a model
    directory with tokenizer.json."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    @cached_property
    def _impl(self) -> Any:
        if self.spec.path is not None and self.spec.source in ("gguf", "embedded", "ollama"):
            import llama_cpp

            from selfhost.backends.llamacpp import LlamaLogCapture

            LlamaLogCapture.start()
            try:
                return ("llama", llama_cpp.Llama(model_path=str(self.spec.path), vocab_only=True, verbose=False))
            finally:
                LlamaLogCapture.stop()
        if self.spec.path is not None and (self.spec.path / "tokenizer.json").exists():
            try:
                from tokenizers import Tokenizer as HFTokenizer
            except ImportError:
                raise UsageError(
                    "counting tokens for a Hugging Face directory needs the `tokenizers` package",
                    "pip install tokenizers",
                ) from None
            return ("hf", HFTokenizer.from_file(str(self.spec.path / "tokenizer.json")))
        raise UsageError(
            f"{self.spec.name} has no tokenizer here (source: {self.spec.source})",
            "pass a GGUF file, `embedded`, or a model directory with tokenizer.json",
        )

    def encode(self, text: str, add_special: bool = False, parse_special: bool = False) -> list[int]:
        kind, tok = self._impl
        if kind == "llama":
            return list(tok.tokenize(text.encode("utf-8"), add_bos=add_special, special=parse_special))
        # Like llama.cpp's `special` flag: without it, "<|im_end|>" in the text is plain text, not the control token.
        tok.encode_special_tokens = not parse_special
        return list(tok.encode(text, add_special_tokens=add_special).ids)

    def decode(self, ids: Sequence[int], special: bool = False) -> str:
        """Text of `ids`; with special=True control tokens come out as their text (e.g. <|im_end|>)."""
        kind, tok = self._impl
        if kind == "llama":
            return str(tok.detokenize(list(ids), special=special).decode("utf-8", errors="replace"))
        return str(tok.decode(list(ids), skip_special_tokens=not special))

    def count(self, text: str) -> int:
        return len(self.encode(text))

    def render(
        self,
        messages: Sequence[dict[str, Any]],
        tools: Sequence[dict[str, Any]] | None = None,
        add_generation_prompt: bool = True,
    ) -> str:
        if not self.spec.chat_template:
            raise UsageError(f"{self.spec.name} has no chat template", "count plain text instead")
        t = self.spec.tokenizer
        return render_chat(
            self.spec.chat_template,
            messages,
            tools=tools,
            add_generation_prompt=add_generation_prompt,
            bos_token=t.bos_token,
            eos_token=t.eos_token,
        )

    def count_chat(self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None) -> int:
        """Prompt tokens an engine sees for this request: the rendered template, control tokens parsed,
        BOS added only when the tokenizer adds one (llama.cpp's and llama-cpp-python's behaviour)."""
        rendered = self.render(messages, tools)
        return len(self.encode(rendered, add_special=bool(self.spec.tokenizer.add_bos_token), parse_special=True))
