"""Ask llama.cpp itself what a configuration costs: load the model once, create a context per
configuration, and read the sizes llama.cpp logs. No tokens are generated.

llama-cpp-python's high-level `Llama` cannot set n_seq_max, so this uses its low-level API.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from selfhost.backends.llamacpp import LlamaLogCapture
from selfhost.backends.llamacpp_log import LlamaCppMemoryReport, parse_llama_log
from selfhost.errors import BackendError
from selfhost.fit.kv import LlamaCppKVConfig

__all__ = ["LlamaCppProbe", "GGML_TYPE_IDS"]

# ggml_type ids (ggml/include/ggml.h) for the KV cache types llama.cpp accepts.
GGML_TYPE_IDS = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8, "iq4_nl": 20, "bf16": 30}


class LlamaCppProbe:
    """DRY_RUN: llama.cpp's own memory-fit mode (model params `no_alloc`, as its `--fit` uses): only the file's
    metadata is read, and every buffer is sized by the same allocator without being allocated. No decoding then."""

    def __init__(self, model_path: str | os.PathLike[str], dry_run: bool = False) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self.path = Path(model_path)
        self.dry_run = dry_run
        self._proc = psutil.Process()
        rss0 = self._proc.memory_info().rss
        params = llama_cpp.llama_model_default_params()
        if dry_run:
            params.no_alloc = True
            params.load_mode = llama_cpp.LLAMA_LOAD_MODE_NONE
        sink = LlamaLogCapture.start()
        try:
            self._model = llama_cpp.llama_model_load_from_file(str(self.path).encode(), params)
        finally:
            LlamaLogCapture.stop()
        if not self._model:
            said = [line.strip() for line in "".join(sink).splitlines() if "error" in line or "failed" in line]
            why = f": {said[0][:200]}" if said else ""
            raise BackendError(f"llama.cpp could not load {self.path}{why}", "check the file with `selfhost info`")
        self.model_report = parse_llama_log("".join(sink))
        self.load_rss_bytes = self._proc.memory_info().rss - rss0
        self.last_fill_rss_bytes: int | None = None

    def context_report(
        self, cfg: LlamaCppKVConfig, flash_attn: bool = True, fill: bool = False, n_outputs_max: int | None = None
    ) -> LlamaCppMemoryReport:
        """Create a context and read its buffers. With fill=True, also decode one full micro-batch with every
        logit requested — the case llama.cpp reserves its compute and output buffers for — and record the
        process's RSS growth since the context was created in `last_fill_rss_bytes`. (The KV cache needs no
        filling: llama.cpp clears it when the context is created, which makes every page resident.)"""
        lib = self._lib
        cp = lib.llama_context_default_params()
        cp.n_ctx = cfg.n_ctx
        cp.n_seq_max = cfg.n_parallel
        cp.n_ubatch = cfg.n_ubatch
        cp.n_batch = max(cp.n_batch, cfg.n_ubatch)
        cp.type_k = GGML_TYPE_IDS[cfg.type_k]
        cp.type_v = GGML_TYPE_IDS[cfg.type_v]
        cp.kv_unified = cfg.kv_unified
        cp.swa_full = cfg.swa_full
        cp.flash_attn_type = lib.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attn else lib.LLAMA_FLASH_ATTN_TYPE_DISABLED
        if n_outputs_max is not None:  # llama-server caps the reserve graph's outputs at its slots
            cp.n_outputs_max = n_outputs_max
        if fill and self.dry_run:
            raise ValueError("a dry run allocates nothing, so nothing can be decoded")
        rss0 = self._proc.memory_info().rss
        sink = LlamaLogCapture.start()
        try:
            ctx = lib.llama_init_from_model(self._model, cp)
        finally:
            LlamaLogCapture.stop()
        if not ctx:
            raise BackendError(f"llama.cpp could not create a context for {cfg}: {''.join(sink[-3:]).strip()}")
        try:
            if fill:
                self._fill(ctx, min(cfg.n_ubatch, lib.llama_n_ctx_seq(ctx)), cfg.n_ubatch)
                self.last_fill_rss_bytes = self._proc.memory_info().rss - rss0
        finally:
            lib.llama_free(ctx)
        return parse_llama_log("".join(sink))

    def _fill(self, ctx: object, n_cells: int, n_ubatch: int) -> None:
        lib = self._lib
        batch = lib.llama_batch_init(n_ubatch, 0, 1)
        try:
            token = 100  # any ordinary token id; the content does not change the memory touched
            pos = 0
            while pos < n_cells:
                n = min(n_ubatch, n_cells - pos)
                batch.n_tokens = n
                last = pos + n == n_cells
                for i in range(n):
                    batch.token[i] = token
                    batch.pos[i] = pos + i
                    batch.n_seq_id[i] = 1
                    batch.seq_id[i][0] = 0
                    batch.logits[i] = last
                rc = lib.llama_decode(ctx, batch)
                if rc != 0:
                    raise BackendError(f"llama_decode failed with code {rc} at position {pos}")
                pos += n
        finally:
            lib.llama_batch_free(batch)

    def reports(self, cfgs: Iterable[LlamaCppKVConfig], flash_attn: bool = True) -> Iterator[LlamaCppMemoryReport]:
        for cfg in cfgs:
            yield self.context_report(cfg, flash_attn)

    def close(self) -> None:
        if self._model:
            self._lib.llama_model_free(self._model)
            self._model = None


@contextmanager
def llamacpp_probe(model_path: str | os.PathLike[str], dry_run: bool = False) -> Iterator[LlamaCppProbe]:
    probe = LlamaCppProbe(model_path, dry_run)
    try:
        yield probe
    finally:
        probe.close()
