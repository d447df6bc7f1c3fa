"""What to send: synthetic prompts of a controlled token length, or the user's JSONL prompts."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfhost.errors import UsageError

__all__ = ["Prompt", "synthetic_prompts", "jsonl_prompts", "multi_turn_prompts", "trace_prompts"]

# Common English words: each is one token in most BPE vocabularies, which keeps lengths predictable
# even without the model's tokenizer.
_WORDS = (
    "the time people way year day thing man world life hand part child eye woman place work week case "
    "point number group problem fact water room mother area money story month right study book job word "
    "business issue side kind head house service friend father power hour game line end member law car "
    "city name team minute idea body information back parent face others level office door health person "
    "art war history party result change morning reason research girl guy moment air teacher force"
).split()


@dataclass(frozen=True)
class Prompt:
    content: str | list[dict[str, Any]]  # text or chat messages
    max_tokens: int
    input_tokens: int | None = None  # as counted by the tokenizer, when one was given


def synthetic_prompts(
    n: int,
    input_tokens: int,
    output_tokens: int,
    seed: int = 0,
    count_tokens: Callable[[str], int] | None = None,
    shared_prefix_tokens: int = 0,
) -> list[Prompt]:
    """n distinct prompts of `input_tokens` tokens (exact with `count_tokens`, else ~1 token per word).
    With shared_prefix_tokens, every prompt starts with the same prefix (prefix-cache workloads)."""
    rng = random.Random(seed)
    prefix = " ".join(rng.choice(_WORDS) for _ in range(shared_prefix_tokens))
    out = []
    for i in range(n):
        words = [f"{i}"] + [rng.choice(_WORDS) for _ in range(max(0, input_tokens - shared_prefix_tokens - 1))]
        text = (prefix + " " if prefix else "") + " ".join(words)
        counted = None
        if count_tokens is not None:
            counted = count_tokens(text)
            while counted > input_tokens and len(words) > 1:  # trim to the exact budget
                words.pop()
                text = (prefix + " " if prefix else "") + " ".join(words)
                counted = count_tokens(text)
        out.append(Prompt(text, output_tokens, counted))
    return out


def jsonl_prompts(path: Path, default_max_tokens: int) -> list[Prompt]:
    """One JSON object per line: {"prompt": "..."} or {"messages": [...]}, optional "max_tokens"."""
    out = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UsageError(
                    f"{path}:{lineno}: not valid JSON ({exc.msg})",
                    'each line must be {"prompt": "..."} or {"messages": [...]}',
                ) from None
            content = obj.get("messages") or obj.get("prompt") if isinstance(obj, dict) else None
            if not content:
                raise UsageError(
                    f"{path}:{lineno}: no 'prompt' or 'messages' field",
                    'each line must be {"prompt": "..."} or {"messages": [...]}',
                )
            out.append(Prompt(content, int(obj.get("max_tokens", default_max_tokens))))
    if not out:
        raise UsageError(f"{path} holds no prompts")
    return out


def multi_turn_prompts(n: int, turns: int, input_tokens: int, output_tokens: int, seed: int = 0) -> list[Prompt]:
    """Conversations of `turns` requests each: request k carries the k−1 earlier exchanges (synthetic user
    turns of `input_tokens` words and assistant turns of `output_tokens` words) plus a new user turn, so the
    context grows turn by turn as in a chat, and prefix caches get the reuse they would get in one."""
    if turns < 1:
        raise UsageError(f"--multi-turn needs at least 1 turn, got {turns}")
    rng = random.Random(seed)
    out: list[Prompt] = []
    conv = 0
    while len(out) < n:
        history: list[dict[str, Any]] = []
        for turn in range(turns):
            user = f"conversation {conv} turn {turn}: " + " ".join(rng.choice(_WORDS) for _ in range(input_tokens))
            out.append(Prompt([*history, {"role": "user", "content": user}], output_tokens))
            reply = " ".join(rng.choice(_WORDS) for _ in range(output_tokens))
            history = [*history, {"role": "user", "content": user}, {"role": "assistant", "content": reply}]
            if len(out) >= n:
                break
        conv += 1
    return out


def _block(hash_id: int, tokens: int) -> str:
    """The text of one prefix block: the same hash id always gives the same words."""
    rng = random.Random(hash_id)
    return " ".join([f"b{hash_id}"] + [rng.choice(_WORDS) for _ in range(tokens - 1)])


def trace_prompts(path: Path, block_size: int = 512, speedup: float = 1.0) -> tuple[list[Prompt], list[float]]:
    """A recorded trace: (prompts, arrival offsets in seconds from the first arrival), sorted by arrival.

    One JSON object per line in the Mooncake trace format (FAST '25; also read by AIPerf and Dynamo):
    "timestamp" in milliseconds, "input_length" and "output_length" in tokens, and "hash_ids", one per
    `block_size` tokens of prompt, equal ids meaning equal content, so shared prefixes stay shared and a prefix
    cache sees what it saw in production. A line may carry "prompt", "input_text" or "messages" instead of
    lengths, and "max_tokens" instead of "output_length"."""
    if speedup <= 0:
        raise UsageError(f"--trace-speedup must be positive, not {speedup}")
    rows: list[tuple[float, int, Prompt]] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UsageError(f"{where}: not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict) or not isinstance(obj.get("timestamp"), int | float) or obj["timestamp"] < 0:
                raise UsageError(f"{where}: no 'timestamp' (milliseconds, ≥ 0)", "Mooncake trace format")
            max_tokens = obj.get("output_length", obj.get("max_tokens"))
            if not isinstance(max_tokens, int) or max_tokens < 1:
                raise UsageError(f"{where}: 'output_length' must be a positive integer")
            content = obj.get("messages") or obj.get("prompt") or obj.get("input_text")
            if content:
                rows.append((float(obj["timestamp"]), lineno, Prompt(content, max_tokens)))
                continue
            n = obj.get("input_length")
            if not isinstance(n, int) or n < 1:
                raise UsageError(f"{where}: needs 'input_length' (tokens) or a 'prompt'")
            blocks = [_block(int(h), block_size) for h in obj.get("hash_ids") or []]
            words = " ".join(blocks).split()[:n]
            if len(words) < n:  # the part past the shared blocks: this request's own words
                rng = random.Random(lineno)
                words += [f"r{lineno}"] + [rng.choice(_WORDS) for _ in range(n - len(words) - 1)]
            rows.append((float(obj["timestamp"]), lineno, Prompt(" ".join(words), max_tokens, None)))
    if not rows:
        raise UsageError(f"{path} holds no requests")
    rows.sort(key=lambda r: (r[0], r[1]))
    first = rows[0][0]
    return [p for _, _, p in rows], [(t - first) / 1000.0 / speedup for t, _, _ in rows]
