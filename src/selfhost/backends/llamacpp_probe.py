"""Ask llama.cpp itself what a configuration costs: load the model once, create a context per
configuration, and read the sizes llama.cpp logs. No tokens are generated.

llama-cpp-python's high-level `Llama` cannot set n_seq_max, so this uses its low-level API.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from selfhost.backends.llamacpp import _LogCapture
from selfhost.backends.llamacpp_log import LlamaCppMemoryReport, parse_llama_log
from selfhost.errors import BackendError
from selfhost.fit.kv import LlamaCppKVConfig

__all__ = ["LlamaCppProbe", "GGML_TYPE_IDS"]

# ggml_type ids (ggml/include/ggml.h) for the KV cache types llama.cpp accepts.
GGML_TYPE_IDS = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8, "iq4_nl": 20, "bf16": 30}


class LlamaCppProbe:
    def __init__(self, model_path: str | os.PathLike[str]) -> None:
        import llama_cpp

        self._lib = llama_cpp
        self.path = Path(model_path)
        sink = _LogCapture.start()
        try:
            self._model = llama_cpp.llama_model_load_from_file(str(self.path).encode(),
                                                               llama_cpp.llama_model_default_params())
        finally:
            _LogCapture.stop()
        if not self._model:
            raise BackendError(f"llama.cpp could not load {self.path}", "check the file with `selfhost info`")
        self.model_report = parse_llama_log("".join(sink))

    def context_report(self, cfg: LlamaCppKVConfig, flash_attn: bool = True) -> LlamaCppMemoryReport:
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
        sink = _LogCapture.start()
        try:
            ctx = lib.llama_init_from_model(self._model, cp)
        finally:
            _LogCapture.stop()
        if not ctx:
            raise BackendError(f"llama.cpp could not create a context for {cfg}: {''.join(sink[-3:]).strip()}")
        lib.llama_free(ctx)
        return parse_llama_log("".join(sink))

    def reports(self, cfgs: Iterable[LlamaCppKVConfig], flash_attn: bool = True) -> Iterator[LlamaCppMemoryReport]:
        for cfg in cfgs:
            yield self.context_report(cfg, flash_attn)

    def close(self) -> None:
        if self._model:
            self._lib.llama_model_free(self._model)
            self._model = None


@contextmanager
def llamacpp_probe(model_path: str | os.PathLike[str]) -> Iterator[LlamaCppProbe]:
    probe = LlamaCppProbe(model_path)
    try:
        yield probe
    finally:
        probe.close()
