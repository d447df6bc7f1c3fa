"""The model's own tokenizer (llama.cpp, vocabulary only: no weights loaded) for counting tokens."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

__all__ = ["gguf_token_counter"]


def gguf_token_counter(path: Path) -> Callable[[str], int]:
    import llama_cpp

    from selfhost.backends.llamacpp import LlamaLogCapture

    LlamaLogCapture.start()
    try:
        vocab = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    finally:
        LlamaLogCapture.stop()

    def count(text: str) -> int:
        return len(vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    return count
