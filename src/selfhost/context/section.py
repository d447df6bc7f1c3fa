"""Context in the check report: a budget, packing, and the server's real window probed at five sizes."""

from __future__ import annotations

from selfhost.models.spec import ModelSpec
from selfhost.report.plots import bar_chart
from selfhost.report.section import Section

__all__ = ["context_section"]


def context_section(spec: ModelSpec, server_url: str, server_n_ctx: int) -> Section:
    """Token budget of a sample RAG request, packing it into a small window, and the server's real window."""
    from selfhost.backends.tokenizer import Tokenizer
    from selfhost.context.budget import Request, budget
    from selfhost.context.pack import pack
    from selfhost.context.probe import probe_context

    tok = Tokenizer(spec)
    chunk = " ".join(f"Passage sentence {i}: the service keeps its data in region {i % 3}." for i in range(30))
    req = Request(
        question="Which region holds the data?",
        system="Answer only from the context.",
        chunks=[chunk, chunk.replace("region", "zone"), chunk.replace("data", "backups")],
        history=[{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi! Ask away."}],
    )
    b = budget(tok, req, n_ctx=4096, reserved_output=512)
    packed = pack(tok, req, n_ctx=1024, reserved_output=256)
    probe = probe_context(server_url, tok, upper=server_n_ctx * 2)
    probe.pop("attempts", None)
    rows = [(f"sample RAG request: {k}", f"{v:,} tokens") for k, v in b["parts"].items()]
    rows += [
        ("sample request total", f"{b['total_tokens']:,} of {b['n_ctx']:,} ({'fits' if b['fits'] else 'no'})"),
        (
            "packed into 1,024 − 256",
            f"{packed.prompt_tokens} prompt tokens; dropped "
            f"{packed.dropped_history} history messages, chunks {packed.dropped_chunks}, "
            f"trimmed chunk {packed.trimmed_chunk}",
        ),
        (
            "server's effective window",
            f"{probe['effective_context']:,} tokens (started with n_ctx {server_n_ctx}); past it: {probe['behaviour']}",
        ),
    ]
    plot = bar_chart(
        list(b["parts"]) + ["reserved answer"],
        [*b["parts"].values(), b["reserved_output"]],
        title="Where the sample request's tokens go (model's own tokenizer)",
        unit="tokens",
    )
    notes = [
        "Counts use the model's tokenizer on the rendered chat template (they equal llama.cpp's prompt token "
        "count); the probe bisects with prompts of known size against the running server."
    ]
    return Section(
        "context",
        "Context budget (real tokenizer)",
        {"budget": b, "packed": packed.to_dict(), "probe": probe},
        rows,
        [plot],
        notes,
    )
