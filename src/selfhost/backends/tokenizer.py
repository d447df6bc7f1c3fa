"""The one tokenizer selfhost counts with: the model's own, for plain text and for whole chat requests.

Three sources: llama.cpp's tokenizer from a GGUF (vocabulary only, no weights), HF `tokenizers` for a model
directory with tokenizer.json, or a running server's /tokenize (llama-server, llama-cpp-python, vLLM)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

from selfhost.errors import UsageError
from selfhost.models.spec import ModelSpec

__all__ = ["Tokenizer", "token_counter"]


class Tokenizer:
    """llama.cpp's tokenizer from a GGUF (vocabulary only, no weights), or HF `tokenizers` for a model
    directory with tokenizer.json."""

    server_url: str | None = None

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec

    @classmethod
    def of_server(cls, url: str) -> Tokenizer:
        """A server's own /tokenize: exact for what it serves, one HTTP request per call (plain-text counts
        only; chat rendering needs the model's template)."""
        tok = cls.__new__(cls)
        tok.server_url = url
        tok.__dict__["_impl"] = ("server", _server_backend(url))
        return tok

    @classmethod
    def of(cls, model: str | None) -> Tokenizer:
        """MODEL as `selfhost` names it (GGUF, HF directory, `embedded`, ...), or a server URL whose /tokenize
        counts (the model it serves is then only known by name)."""
        if model is not None and model.startswith(("http://", "https://")):
            return cls.of_server(model)
        from selfhost.models.resolve import resolve_model

        return cls(resolve_model(model))

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
        if kind == "server":
            return list(tok.tokenize(text, add_special=add_special, parse_special=parse_special))
        # Like llama.cpp's `special` flag: without it, "<|im_end|>" in the text is plain text, not the control token.
        tok.encode_special_tokens = not parse_special
        return list(tok.encode(text, add_special_tokens=add_special).ids)

    def decode(self, ids: Sequence[int], special: bool = False) -> str:
        """Text of `ids`; with special=True control tokens come out as their text (e.g. <|im_end|>)."""
        kind, tok = self._impl
        if kind == "llama":
            return str(tok.detokenize(list(ids), special=special).decode("utf-8", errors="replace"))
        if kind == "server":
            return str(tok.detokenize(ids))
        return str(tok.decode(list(ids), skip_special_tokens=not special))

    def count(self, text: str) -> int:
        return len(self.encode(text))

    def render(
        self,
        messages: Sequence[dict[str, Any]],
        tools: Sequence[dict[str, Any]] | None = None,
        add_generation_prompt: bool = True,
    ) -> str:
        from selfhost.template.render import render_chat

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


def token_counter(model: str | None) -> Callable[[str], int]:
    """Plain-text token counts (no BOS, control tokens as text) with MODEL's tokenizer: what bench and cost size
    prompts and count outputs with."""
    return Tokenizer.of(model).count


def _server_backend(url: str) -> Any:
    from selfhost.backends.base import create_backend

    return create_backend("openai", url=url)
