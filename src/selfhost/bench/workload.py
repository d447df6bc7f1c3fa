"""What to send: synthetic prompts of a controlled token length, or the user's JSONL prompts."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfhost.errors import UsageError
from selfhost.files import iter_jsonl

__all__ = ["Prompt", "synthetic_prompts", "jsonl_prompts", "multi_turn_prompts", "trace_prompts"]

# Common English words: each is one token in most BPE vocabularies, which keeps lengths predictable
# even without the model's tokenizer.
# Bounds on what one line of a prompts file or trace may ask for.
MAX_TOKENS = 10_000_000
MAX_TRACE_MS = 1e13  # ~317 years of milliseconds: past any real clock
MAX_TRACE_SPAN_S = 7 * 86400.0
MAX_INPUT_TOKENS = 1 << 20  # the largest context windows served today
MAX_TRACE_INPUT_TOKENS = 50_000_000  # prompts are built in memory (~6 bytes a token)

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
    for lineno, obj in iter_jsonl(path):
        content = obj.get("messages") or obj.get("prompt") if isinstance(obj, dict) else None
        if not content or not isinstance(content, str | list):
            raise UsageError(
                f"{path}:{lineno}: no 'prompt' (text) or 'messages' (list) field",
                'each line must be {"prompt": "..."} or {"messages": [...]}',
            )
        max_tokens = obj.get("max_tokens", default_max_tokens)
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or not 1 <= max_tokens <= MAX_TOKENS:
            raise UsageError(f"{path}:{lineno}: 'max_tokens' must be an integer in 1..{MAX_TOKENS:,}")
        out.append(Prompt(content, max_tokens))
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


def _block(hash_id: int, tokens: int, salt: int = 0) -> str:
    """The text of one prefix block: the same hash id (and salt) always gives the same words."""
    rng = random.Random(f"{salt}:{hash_id}" if salt else hash_id)
    return " ".join([f"b{hash_id}"] + [rng.choice(_WORDS) for _ in range(tokens - 1)])


def trace_prompts(
    path: Path, block_size: int = 512, speedup: float = 1.0, salt: int = 0
) -> tuple[list[Prompt], list[float]]:
    """A recorded trace: (prompts, arrival offsets in seconds from the first arrival), sorted by arrival.

    One JSON object per line in the Mooncake trace format (FAST '25; also read by AIPerf and Dynamo):
    "timestamp" in milliseconds, "input_length" and "output_length" in tokens, and "hash_ids", one per
    `block_size` tokens of prompt, equal ids meaning equal content, so shared prefixes stay shared and a prefix
    cache sees what it saw in production. A line may carry "prompt", "input_text" or "messages" instead of
    lengths, and "max_tokens" instead of "output_length". A nonzero SALT gives the prompts built from lengths other
    words with the same sharing, so a replay does not hit the prefix cache an earlier replay of the trace filled."""
    if speedup <= 0:
        raise UsageError(f"--trace-speedup must be positive, not {speedup}")
    rows: list[tuple[float, int, Prompt]] = []
    total_input = 0
    for lineno, obj in iter_jsonl(path):
        where = f"{path}:{lineno}"
        ts = obj.get("timestamp") if isinstance(obj, dict) else None
        if not isinstance(ts, int | float) or isinstance(ts, bool) or not 0 <= ts <= MAX_TRACE_MS:
            raise UsageError(f"{where}: no 'timestamp' (milliseconds, 0..{MAX_TRACE_MS:.0e})", "Mooncake trace format")
        max_tokens = obj.get("output_length", obj.get("max_tokens"))
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or not 1 <= max_tokens <= MAX_TOKENS:
            raise UsageError(f"{where}: 'output_length' must be an integer in 1..{MAX_TOKENS:,}")
        content = obj.get("messages") or obj.get("prompt") or obj.get("input_text")
        if content:
            if not isinstance(content, str | list):
                raise UsageError(f"{where}: 'prompt' must be text and 'messages' a list")
            rows.append((float(ts), lineno, Prompt(content, max_tokens)))
            continue
        n = obj.get("input_length")
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_INPUT_TOKENS:
            raise UsageError(f"{where}: needs 'input_length' (tokens, 1..{MAX_INPUT_TOKENS:,}) or a 'prompt'")
        total_input += n
        if total_input > MAX_TRACE_INPUT_TOKENS:
            raise UsageError(f"{where}: the trace asks for more than {MAX_TRACE_INPUT_TOKENS:,} prompt tokens in all")
        hash_ids = obj.get("hash_ids") or []
        if not isinstance(hash_ids, list) or not all(isinstance(h, int) and not isinstance(h, bool) for h in hash_ids):
            raise UsageError(f"{where}: 'hash_ids' must be a list of integers")
        blocks = [_block(h, block_size, salt) for h in hash_ids[: n // max(block_size, 1) + 1]]
        words = " ".join(blocks).split()[:n]
        if len(words) < n:  # the part past the shared blocks: this request's own words
            rng = random.Random(f"{salt}:{lineno}" if salt else lineno)
            words += [f"r{lineno}"] + [rng.choice(_WORDS) for _ in range(n - len(words) - 1)]
        rows.append((float(ts), lineno, Prompt(" ".join(words), max_tokens, None)))
    if not rows:
        raise UsageError(f"{path} holds no requests")
    rows.sort(key=lambda r: (r[0], r[1]))
    first = rows[0][0]
    span_s = (rows[-1][0] - first) / 1000.0 / speedup
    if span_s > MAX_TRACE_SPAN_S:
        raise UsageError(
            f"{path}: the trace spans {span_s / 86400:,.1f} days at --trace-speedup {speedup:g}",
            f"replays are limited to {MAX_TRACE_SPAN_S / 86400:g} days: check the timestamps (milliseconds) or "
            "raise --trace-speedup",
        )
    return [p for _, _, p in rows], [(t - first) / 1000.0 / speedup for t, _, _ in rows]
