"""Recognise the common fine-tuning formats and turn each example into chat messages."""

from __future__ import annotations

from typing import Any

__all__ = ["FORMATS", "detect_format", "to_messages"]

FORMATS = ("openai", "sharegpt", "alpaca", "prompt_completion", "text")
_SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
    "tool": "tool",
    "function_call": "assistant",
    "observation": "tool",
}


def detect_format(row: dict[str, Any]) -> str | None:
    if isinstance(row.get("messages"), list):
        return "openai"
    if isinstance(row.get("conversations"), list):
        return "sharegpt"
    if "instruction" in row and "output" in row:
        return "alpaca"
    if "prompt" in row and "completion" in row:
        return "prompt_completion"
    if isinstance(row.get("text"), str):
        return "text"
    return None


def to_messages(row: dict[str, Any], fmt: str) -> tuple[list[dict[str, Any]], list[str]]:
    """(messages, schema problems). Unknown roles are kept as given, so role checks can report them."""
    problems: list[str] = []
    if fmt == "openai":
        msgs = []
        for i, m in enumerate(row["messages"]):
            if not isinstance(m, dict) or "role" not in m:
                problems.append(f"message {i} has no role")
                continue
            content = m.get("content")
            if content is not None and not isinstance(content, str | list):
                problems.append(f"message {i} content is {type(content).__name__}, not text")
            msgs.append(m)
        return msgs, problems
    if fmt == "sharegpt":
        msgs = []
        for i, m in enumerate(row["conversations"]):
            if not isinstance(m, dict) or "from" not in m or "value" not in m:
                problems.append(f"turn {i} needs 'from' and 'value'")
                continue
            msgs.append({"role": _SHAREGPT_ROLES.get(str(m["from"]).lower(), str(m["from"])), "content": m["value"]})
        return msgs, problems
    if fmt == "alpaca":
        user = str(row.get("instruction") or "")
        if row.get("input"):
            user += "\n\n" + str(row["input"])
        msgs = [{"role": "user", "content": user}, {"role": "assistant", "content": str(row.get("output") or "")}]
        if row.get("system"):
            msgs.insert(0, {"role": "system", "content": str(row["system"])})
        return msgs, problems
    if fmt == "prompt_completion":
        return [
            {"role": "user", "content": str(row["prompt"])},
            {"role": "assistant", "content": str(row["completion"])},
        ], problems
    return [{"role": "assistant", "content": row["text"]}], problems
