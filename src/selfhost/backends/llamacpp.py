"""llama.cpp in-process through llama-cpp-python: the engine behind the embedded model."""

from __future__ import annotations

import ctypes
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from selfhost.backends.base import GenerationParams, Message, StreamEvent, register_backend
from selfhost.backends.llamacpp_log import LlamaCppMemoryReport, parse_llama_log
from selfhost.errors import BackendError, ModelTooLargeError, debug_enabled
from selfhost.models.gguf_spec import spec_from_gguf
from selfhost.models.spec import ModelSpec
from selfhost.template.render import render_chat

__all__ = ["LlamaCppBackend", "LlamaLogCapture", "LoadReport", "check_fits_in_ram"]


class LlamaLogCapture:
    """Routes llama.cpp's log callback into a buffer while a model loads (one process-wide hook)."""

    _lock = threading.Lock()
    _installed = False
    _sink: list[str] | None = None
    _callback: object = None

    @classmethod
    def install(cls) -> None:
        import llama_cpp

        if cls._installed:
            return

        @llama_cpp.llama_log_callback
        def _cb(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            s = text.decode("utf-8", errors="replace")
            if cls._sink is not None:
                cls._sink.append(s)
            elif debug_enabled():
                os.write(2, text)

        cls._callback = _cb  # keep a reference: ctypes callbacks die with their Python object
        llama_cpp.llama_log_set(_cb, ctypes.c_void_p(0))
        cls._installed = True

    @classmethod
    def start(cls) -> list[str]:
        cls.install()
        cls._lock.acquire()
        cls._sink = []
        return cls._sink

    @classmethod
    def stop(cls) -> None:
        cls._sink = None
        cls._lock.release()


@dataclass(frozen=True)
class LoadReport:
    load_s: float
    rss_before_bytes: int
    rss_after_bytes: int
    memory: LlamaCppMemoryReport
    log: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "load_s": self.load_s,
            "rss_before_bytes": self.rss_before_bytes,
            "rss_after_bytes": self.rss_after_bytes,
            "rss_delta_bytes": self.rss_after_bytes - self.rss_before_bytes,
            "llama_cpp_reported": self.memory.to_dict(),
        }


def check_fits_in_ram(path: Path, file_bytes: int, available_bytes: int | None = None) -> None:
    """Refuse to load weights that cannot be resident: mmap would thrash or the kernel would kill us."""
    avail = psutil.virtual_memory().available if available_bytes is None else available_bytes
    if file_bytes > avail:
        gib = 1024**3
        raise ModelTooLargeError(
            f"{path.name} needs {file_bytes / gib:.1f} GiB for its weights alone; "
            f"this machine has {avail / gib:.1f} GiB of RAM available",
            "use a smaller quantization or model; `selfhost fit` (when available) plans GPU offload",
        )


def default_threads() -> int:
    """llama.cpp threads when none are asked for: the physical cores (llama-cpp-python's own default is half the
    logical CPUs, one thread on a 2-core machine)."""
    return max(1, psutil.cpu_count(logical=False) or 1)


@register_backend("llama.cpp")
class LlamaCppBackend:
    kind = "llama.cpp"
    capabilities = frozenset({"chat", "completion", "tokenize"})

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_batch: int = 512,
        n_parallel: int = 1,
        spec: ModelSpec | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        path = Path(model_path)
        self.spec = spec or spec_from_gguf(path)  # validates the file before llama.cpp sees it
        check_fits_in_ram(path, self.spec.file_bytes or path.stat().st_size)
        import llama_cpp

        self.model = self.spec.name
        self.path = path
        self.n_ctx = n_ctx
        proc = psutil.Process()
        rss_before = proc.memory_info().rss
        sink = LlamaLogCapture.start()
        t0 = time.perf_counter()
        try:
            self._llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_batch=n_batch,
                n_threads=n_threads or default_threads(),
                n_seq_max=n_parallel,
                verbose=False,
                **(extra or {}),
            )
        except (ValueError, RuntimeError) as exc:
            tail = "".join(sink[-8:]).strip().splitlines()[-3:]
            raise BackendError(
                f"llama.cpp could not load {path.name}: {exc}; llama.cpp said: {' | '.join(tail)}",
                "check that the file is a complete GGUF model supported by this llama.cpp build",
            ) from None
        finally:
            load_s = time.perf_counter() - t0
            LlamaLogCapture.stop()
        log = "".join(sink)
        self.load_report = LoadReport(load_s, rss_before, proc.memory_info().rss, parse_llama_log(log), log)

    # -- tokens ---------------------------------------------------------------------------------
    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = False) -> list[int]:
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=add_special, special=parse_special))

    def detokenize(self, ids: Sequence[int]) -> str:
        return self._llm.detokenize(list(ids)).decode("utf-8", errors="replace")

    def _is_eog(self, token: int) -> bool:
        import llama_cpp

        return bool(llama_cpp.llama_vocab_is_eog(self._llm._model.vocab, token))

    # -- generation -----------------------------------------------------------------------------
    def render_chat(self, messages: Sequence[Message]) -> str:
        template = self.spec.chat_template
        if not template:
            raise BackendError(f"{self.model} has no chat template", "use a completion prompt instead")
        tok = self.spec.tokenizer
        return render_chat(
            template, messages, add_generation_prompt=True, bos_token=tok.bos_token, eos_token=tok.eos_token
        )

    def stream_chat(self, messages: Sequence[Message], params: GenerationParams) -> Iterator[StreamEvent]:
        prompt = self.render_chat(messages)
        # The rendered template already holds any BOS it wants; parse its control tokens as tokens.
        add_bos = bool(self.spec.tokenizer.add_bos_token)
        return self._stream(self._llm.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True), params)

    def stream_complete(self, prompt: str, params: GenerationParams) -> Iterator[StreamEvent]:
        return self._stream(self._llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=False), params)

    def _stream(self, prompt_ids: list[int], params: GenerationParams) -> Iterator[StreamEvent]:
        if len(prompt_ids) + params.max_tokens > self.n_ctx:
            raise BackendError(
                f"prompt ({len(prompt_ids)} tokens) + max_tokens ({params.max_tokens}) exceeds n_ctx {self.n_ctx}",
                "shorten the prompt, lower max_tokens or load with a larger context",
            )
        if not params.cache_prompt:
            self._llm.reset()
        self._llm.set_seed(params.seed)
        gen = self._llm.generate(
            prompt_ids,
            temp=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k,
            min_p=0.0,
            repeat_penalty=1.0,
            reset=params.cache_prompt,
        )
        generated: list[int] = []
        emitted = 0  # characters of the decoded text already sent
        finish = "length"
        text = ""
        try:
            for token in gen:
                t = time.perf_counter()
                if self._is_eog(token):
                    finish = "stop"
                    break
                generated.append(token)
                # Decode the whole suffix so multi-byte characters split across tokens come out whole.
                text = self._llm.detokenize(generated).decode("utf-8", errors="ignore")
                delta = text[emitted:]
                emitted = len(text)
                stop_at = _find_stop(text, params.stop)
                if stop_at is not None:
                    delta = delta[: max(0, len(delta) - (len(text) - stop_at))]
                    yield StreamEvent("content", t, delta, 1)
                    finish = "stop"
                    break
                yield StreamEvent("content", t, delta, 1)
                if len(generated) >= params.max_tokens:
                    break
        finally:
            gen.close()
        yield StreamEvent(
            "done",
            time.perf_counter(),
            data={
                "finish_reason": finish,
                "prompt_tokens": len(prompt_ids),
                "completion_tokens": len(generated),
            },
        )

    def set_threads(self, n_threads: int) -> None:
        """Threads for generation and prompt processing from the next call on (llama_set_n_threads), so that
        engines running side by side can share the cores. llama.cpp's CPU results do not depend on it."""
        import llama_cpp

        llama_cpp.llama_set_n_threads(self._llm.ctx, n_threads, n_threads)

    def close(self) -> None:
        llm = getattr(self, "_llm", None)
        if llm is not None:
            llm.close()
            self._llm = None  # type: ignore[assignment]

    def __enter__(self) -> LlamaCppBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _find_stop(text: str, stops: tuple[str, ...]) -> int | None:
    hits = [i for s in stops if s and (i := text.find(s)) >= 0]
    return min(hits) if hits else None
