"""Teacher-forced distribution metrics of a variant against the reference, over the same tokens:
KL(P_ref ‖ P_variant) per position, top-1 agreement, and Δp of the actual next token (variant − reference),
reported with mean, median, p99 and max (cf. llama-perplexity --kl-divergence; logits here stay float32,
so an identical model gives KL 0 exactly rather than llama-perplexity's uint16 floor)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from selfhost.errors import UsageError
from selfhost.evals.logits import log_softmax

__all__ = ["default_text", "logprobs", "compare_distributions", "standard_error", "summarize"]


def default_text() -> str:
    """The opening of the US Declaration of Independence (public domain)."""
    return resources.files("selfhost.quant").joinpath("data/declaration.txt").read_text(encoding="utf-8")


def logprobs(
    model_path: Path,
    text: str,
    max_tokens: int | None = 512,
    threads: int | None = None,
    chunk_ctx: int | None = None,
) -> tuple[list[int], Any]:
    """(the next tokens scored, float32 log-probabilities of the whole vocabulary before each of them), over the
    text's first max_tokens tokens (None: all of them).

    Default: one pass, every position scored. With `chunk_ctx`, llama-perplexity's procedure
    (tools/perplexity/perplexity.cpp, `--kl-divergence -c chunk_ctx`): the tokens are cut into whole chunks of
    chunk_ctx, each evaluated from an empty cache with its first token replaced by BOS when the vocabulary adds
    one, and only positions from chunk_ctx/2 on are scored — so results compare with its output."""
    import llama_cpp

    from selfhost.backends.llamacpp import LlamaLogCapture, default_threads
    from selfhost.backends.tokenizer import Tokenizer
    from selfhost.models.gguf_spec import spec_from_gguf

    tokens = Tokenizer(spec_from_gguf(model_path)).encode(text, add_special=True)  # it captures llama.cpp's log
    tokens = tokens[:max_tokens] if max_tokens is not None else tokens
    if chunk_ctx is None:
        spans = [(0, len(tokens), 0)]
    else:
        spans = [(i * chunk_ctx, (i + 1) * chunk_ctx, chunk_ctx // 2) for i in range(len(tokens) // chunk_ctx)]
        if not spans:
            raise UsageError(
                f"the KL-divergence text has {len(tokens)} tokens, fewer than one chunk of --kld-ctx {chunk_ctx}",
                "pass a longer --text, a smaller --kld-ctx, or a larger --kld-tokens",
            )
    width = max(end - start for start, end, _ in spans)
    LlamaLogCapture.start()
    try:
        llm = llama_cpp.Llama(
            model_path=str(model_path),
            n_ctx=width + 16,
            n_batch=512,
            logits_all=True,
            n_threads=threads or default_threads(),
            verbose=False,
        )
    finally:
        LlamaLogCapture.stop()
    bos = llm.token_bos() if llama_cpp.llama_vocab_get_add_bos(llama_cpp.llama_model_get_vocab(llm.model)) else None
    rows = []
    targets: list[int] = []
    try:
        for start, end, first in spans:
            chunk = tokens[start:end]
            if chunk_ctx is not None and bos is not None:
                chunk = [bos, *chunk[1:]]  # as llama-perplexity does for every chunk; the target stays the text's
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


def standard_error(x: Any) -> float:
    """llama-perplexity's uncertainty of a mean: sqrt((mean(x²) − mean(x)²) / (n − 1)), 0 for 10 values or fewer.
    It treats positions as independent; neighbouring positions of one text are not, so it is a lower bound."""
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    var = float((x**2).mean() - x.mean() ** 2) if n else 0.0
    return float(np.sqrt(var / (n - 1))) if var > 0 and n > 10 else 0.0


def summarize(d: dict[str, Any]) -> dict[str, Any]:
    kl, dp = d["kld"], d["delta_p"]
    return {
        "positions": int(kl.size),
        "kld_mean": float(kl.mean()),
        "kld_mean_se": standard_error(kl),
        "kld_median": float(np.median(kl)),
        "kld_p99": float(np.percentile(kl, 99)),
        "kld_max": float(kl.max()),
        "top1_agreement": float(d["top1"].mean()),
        "top1_agreement_se": standard_error(d["top1"]),
        "delta_p_mean": float(dp.mean()),
        "delta_p_mean_se": standard_error(dp),
        "delta_p_p01": float(np.percentile(dp, 1)),
        "delta_p_rms": float(np.sqrt((dp**2).mean())),
    }
