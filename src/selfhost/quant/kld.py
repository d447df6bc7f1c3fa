"""Teacher-forced distribution metrics of a variant against the reference, over the same tokens:
KL(P_ref ‖ P_variant) per position, top-1 agreement, and Δp of the actual next token (variant − reference),
reported with mean, median, p99 and max (cf. llama-perplexity --kl-divergence; logits here stay float32,
so an identical model gives KL 0 exactly rather than llama-perplexity's uint16 floor)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from selfhost.evals.logits import log_softmax

__all__ = ["default_text", "logprobs", "compare_distributions", "summarize"]


def default_text() -> str:
    """The opening of the US Declaration of Independence (public domain)."""
    return resources.files("selfhost.quant").joinpath("data/declaration.txt").read_text(encoding="utf-8")


def logprobs(
    model_path: Path, text: str, max_tokens: int = 512, threads: int | None = None, chunk_ctx: int | None = None
) -> tuple[list[int], Any]:
    """(the next tokens scored, float32 log-probabilities of the whole vocabulary before each of them).

    Default: one pass over the text, every position scored. With `chunk_ctx`, llama-perplexity's procedure
    (tools/perplexity/perplexity.cpp): the text is cut into chunks of chunk_ctx tokens, each evaluated from an
    empty cache, and only positions from chunk_ctx/2 on are scored — so results compare with its
    --kl-divergence output."""
    import llama_cpp

    from selfhost.backends.llamacpp import LlamaLogCapture
    from selfhost.backends.tokenizer import Tokenizer
    from selfhost.models.gguf_spec import spec_from_gguf

    tokens = Tokenizer(spec_from_gguf(model_path)).encode(text, add_special=True)  # it captures llama.cpp's log
    LlamaLogCapture.start()
    try:
        if chunk_ctx is None:
            tokens = tokens[:max_tokens]
            spans = [(0, len(tokens), 0)]
        else:
            spans = [(i * chunk_ctx, (i + 1) * chunk_ctx, chunk_ctx // 2) for i in range(len(tokens) // chunk_ctx)]
            if not spans:
                raise ValueError(f"the text has {len(tokens)} tokens, fewer than one chunk of {chunk_ctx}")
        width = max(end - start for start, end, _ in spans)
        llm = llama_cpp.Llama(
            model_path=str(model_path), n_ctx=width + 16, n_batch=512, logits_all=True, n_threads=threads, verbose=False
        )
    finally:
        LlamaLogCapture.stop()
    rows = []
    targets: list[int] = []
    try:
        for start, end, first in spans:
            chunk = tokens[start:end]
            llm.reset()
            llm.eval(chunk)
            rows.append(np.array(llm.scores[first : len(chunk) - 1], dtype=np.float64))
            targets.extend(chunk[first + 1 :])
    finally:
        llm.close()
    return targets, log_softmax(np.concatenate(rows)).astype(np.float32)


def compare_distributions(ref_next: list[int], ref: Any, var_next: list[int], var: Any) -> dict[str, Any]:
    """Per scored position: KL(P_ref ‖ P_var), Δp of the actual next token, top-1 agreement."""
    if ref_next != var_next:
        raise ValueError("reference and variant tokenized the text differently; they are not the same model family")
    p = np.exp(ref.astype(np.float64))
    kl = (p * (ref.astype(np.float64) - var.astype(np.float64))).sum(axis=1)
    kl = np.maximum(kl, 0.0)  # rounding can leave −1e-12
    nxt = np.asarray(ref_next)
    rows = np.arange(len(nxt))
    dp = np.exp(var[rows, nxt].astype(np.float64)) - p[rows, nxt]
    top1 = ref.argmax(axis=1) == var.argmax(axis=1)
    return {"kld": kl, "delta_p": dp, "top1": top1}


def summarize(d: dict[str, Any]) -> dict[str, Any]:
    kl, dp = d["kld"], d["delta_p"]
    return {
        "positions": int(kl.size),
        "kld_mean": float(kl.mean()),
        "kld_median": float(np.median(kl)),
        "kld_p99": float(np.percentile(kl, 99)),
        "kld_max": float(kl.max()),
        "top1_agreement": float(d["top1"].mean()),
        "delta_p_mean": float(dp.mean()),
        "delta_p_p01": float(np.percentile(dp, 1)),
        "delta_p_rms": float(np.sqrt((dp**2).mean())),
    }
