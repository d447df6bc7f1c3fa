"""Training data as the trainer sees it: conversations read from any format `selfhost data` reads, rendered with
the model's own chat template, tokenized, with labels only on assistant turns."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from selfhost.data.codes import PREFLIGHT_CODES, UNREADABLE_CODES
from selfhost.errors import UsageError
from selfhost.models.spec import ModelSpec
from selfhost.tune.config import TuneConfig

__all__ = [
    "require_template",
    "with_run_template",
    "encode_example",
    "tokenized_dataset",
    "load_labeled",
    "load_conversations",
    "preflight",
]


def require_template(spec: ModelSpec) -> None:
    if not spec.chat_template:
        raise UsageError(
            f"{spec.name} has no chat template to train with (a base model?)",
            "pass --chat-template FILE, e.g. the instruct model's template; it is saved with the adapter",
        )


def with_run_template(spec: ModelSpec, run_dir: Path) -> ModelSpec:
    """The spec with the chat template the run in run_dir was trained with (serving parity for eval and export)."""
    saved = run_dir / "chat_template.jinja"
    text = saved.read_text(encoding="utf-8") if saved.exists() else ""
    return replace(spec, chat_template=text) if text.strip() else spec


def encode_example(
    tok: Any, spec: ModelSpec, messages: list[dict[str, Any]], max_seq_len: int | None
) -> tuple[list[int], list[int]]:
    """(input ids, labels): labels are the token ids inside assistant turns (their end-of-turn included) and
    -100 elsewhere, found from character spans of the template's render (selfhost.data.mask's rule)."""
    from selfhost.template.render import render_chat

    template = spec.chat_template or getattr(tok, "chat_template", None)
    if not template:
        raise UsageError(f"{spec.name} has no chat template to train with")
    t = spec.tokenizer

    def render(msgs: list[dict[str, Any]], gen: bool) -> str:
        return render_chat(template, msgs, add_generation_prompt=gen, bos_token=t.bos_token, eos_token=t.eos_token)

    full = render(messages, False)
    spans = []
    for i, m in enumerate(messages):
        if m.get("role") == "assistant":
            spans.append((len(render(messages[:i], True)) if i else 0, len(render(messages[: i + 1], False))))
    enc = tok(full, add_special_tokens=bool(t.add_bos_token), return_offsets_mapping=True)
    ids, labels = [], []
    for token_id, (s, _) in zip(enc["input_ids"], enc["offset_mapping"], strict=True):
        ids.append(int(token_id))
        labels.append(int(token_id) if any(a <= s < b for a, b in spans) else -100)
    return (ids[:max_seq_len], labels[:max_seq_len]) if max_seq_len else (ids, labels)


def tokenized_dataset(
    tok: Any,
    spec: ModelSpec,
    examples: list[list[dict[str, Any]]],
    cfg: TuneConfig,
    sources: list[str] | None = None,
) -> tuple[Any, list[str]]:
    """The tokenized dataset, and where each conversation longer than max_seq_len came from.

    Fine-tuning frameworks cut long samples silently; a cut answer loses its end-of-turn token, so the model
    learns not to stop. Here that is an error unless cfg.on_long says to drop or truncate them."""
    from datasets import Dataset

    rows, long = [], []
    for i, msgs in enumerate(examples):
        ids, labels = encode_example(tok, spec, msgs, None)
        if len(ids) > cfg.max_seq_len:
            long.append((sources[i] if sources else f"conversation {i + 1}", len(ids)))
            if cfg.on_long == "drop":
                continue
            ids, labels = ids[: cfg.max_seq_len], labels[: cfg.max_seq_len]
        if any(label != -100 for label in labels):
            rows.append({"input_ids": ids, "labels": labels})
    if long and cfg.on_long == "error":
        where, n = max(long, key=lambda x: x[1])
        raise UsageError(
            f"{len(long)} of {len(examples)} conversations are longer than --max-seq-len {cfg.max_seq_len} tokens "
            f"after the chat template (first: {long[0][0]}; longest: {where}, {n} tokens)",
            f"raise --max-seq-len (to {n} fits all), or pass --on-long drop (skip them) or --on-long truncate "
            "(cut them; a cut answer loses its end-of-turn token)",
        )
    return Dataset.from_list(rows), [w for w, _ in long]


def load_labeled(path: Path) -> tuple[list[list[dict[str, Any]]], list[str]]:
    """The conversations of a dataset file in any format `selfhost data` reads, each with its "file:line"; a
    malformed line stops here (training on a silently shortened dataset is worse)."""
    from selfhost.data.check import Finding, load_examples

    findings: list[Finding] = []
    examples, _, _ = load_examples(path, findings)
    bad = [f for f in findings if f.code in UNREADABLE_CODES]
    if bad:
        raise UsageError(f"{path}:{bad[0].line}: {bad[0].message}", "run `selfhost data check` and fix the data")
    return [e.messages for e in examples], [f"{path}:{e.line}" for e in examples]


def load_conversations(path: Path) -> list[list[dict[str, Any]]]:
    return load_labeled(path)[0]


def preflight(data: Path, eval_file: Path | None = None) -> dict[str, int]:
    """`selfhost data check` on the training file (and leakage against the held-out one), reduced to the counts
    of PREFLIGHT_CODES. Lengths are left to the trainer, which counts them with the same template and tokenizer."""
    from selfhost.data.check import check_dataset

    counts = check_dataset(data, None, eval_file).counts
    return {code: counts[code] for code in PREFLIGHT_CODES if counts.get(code)}
