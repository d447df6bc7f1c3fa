"""Suites: prompts with checks, from JSONL (one case per line) — validated, bad lines reported by number —
and a built-in default suite."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfhost.errors import UsageError
from selfhost.evals.checks import validate_check
from selfhost.files import BadInputError, parse_json, read_text

__all__ = ["Case", "load_suite", "default_suite"]


@dataclass(frozen=True)
class Case:
    id: str
    messages: list[dict[str, Any]]
    checks: list[dict[str, Any]]
    max_tokens: int = 96
    category: str = "custom"


def _jsonl_items(path: Path, errors: list[str]) -> list[tuple[str, Any]]:
    items = []
    for lineno, line in enumerate(read_text(path).split("\n"), 1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            items.append((f"{path}:{lineno}", parse_json(line, f"{path}:{lineno}")))
        except BadInputError as exc:
            errors.append(str(exc))
    return items


def _yaml_items(path: Path) -> list[tuple[str, Any]]:
    """A YAML list of cases (or a mapping with `cases:`), each named by the line it starts on."""
    import yaml

    text = read_text(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise UsageError(f"{where}: not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    if isinstance(data, dict) and isinstance(root, yaml.MappingNode):
        data = data.get("cases")
        root = next((v for k, v in root.value if k.value == "cases"), None)
    if not isinstance(data, list) or not isinstance(root, yaml.SequenceNode):
        raise UsageError(f"{path}: a YAML suite is a list of cases (or `cases:` with one)")
    return [(f"{path}:{node.start_mark.line + 1}", obj) for node, obj in zip(root.value, data, strict=True)]


def load_suite(path: Path) -> list[Case]:
    """JSONL, one case per line, or YAML, a list of cases: {"id", "prompt" | "messages", "checks": [{"type": ...},
    ...], "max_tokens"?, "category"?}. Every bad case is reported with its line."""
    cases: list[Case] = []
    errors: list[str] = []
    seen: set[str] = set()
    items = _yaml_items(path) if path.suffix.lower() in (".yaml", ".yml") else _jsonl_items(path, errors)
    for where, obj in items:
        if not isinstance(obj, dict):
            errors.append(f"{where}: a case must be an object")
            continue
        cid = str(obj.get("id") or f"line{where.rsplit(':', 1)[1]}")
        msgs = obj.get("messages") or ([{"role": "user", "content": obj["prompt"]}] if obj.get("prompt") else None)
        if not msgs:
            errors.append(f"{where}: no 'prompt' or 'messages'")
            continue
        checks = obj.get("checks")
        if not isinstance(checks, list) or not checks:
            errors.append(f"{where}: 'checks' must be a non-empty list")
            continue
        bad = [e for e in (validate_check(c) for c in checks) if e]
        if bad:
            errors.append(f"{where}: {bad[0]}")
            continue
        if cid in seen:
            errors.append(f"{where}: duplicate id {cid!r}")
            continue
        max_tokens = obj.get("max_tokens", 96)
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or not 1 <= max_tokens <= 100_000:
            errors.append(f"{where}: 'max_tokens' must be an integer in 1..100,000")
            continue
        if not isinstance(msgs, list) or not all(isinstance(m, dict) for m in msgs):
            errors.append(f"{where}: 'messages' must be a list of objects")
            continue
        seen.add(cid)
        cases.append(Case(cid, msgs, checks, max_tokens, str(obj.get("category", "custom"))))
    if errors:
        more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
        raise UsageError("; ".join(errors[:5]) + more, "fix those cases")
    if not cases:
        raise UsageError(f"{path} holds no cases")
    return cases


def default_suite() -> list[Case]:
    """64 cases: structured JSON (20), extraction (12), instruction following (12), arithmetic (12),
    summarisation (8)."""
    cases: list[Case] = []

    def add(cid: str, category: str, prompt: str, checks: list[dict[str, Any]], max_tokens: int = 96) -> None:
        cases.append(Case(cid, [{"role": "user", "content": prompt}], checks, max_tokens, category))

    people = [
        ("Alice", 30, "Paris"),
        ("Bob", 45, "Lima"),
        ("Chen", 27, "Osaka"),
        ("Dana", 38, "Oslo"),
        ("Emeka", 52, "Lagos"),
        ("Farah", 33, "Cairo"),
        ("Goran", 41, "Zagreb"),
        ("Hana", 29, "Seoul"),
        ("Ivan", 60, "Kyiv"),
        ("Jonas", 24, "Riga"),
        ("Kemal", 36, "Izmir"),
        ("Lena", 47, "Graz"),
    ]
    person_schema = {
        "type": "object",
        "required": ["name", "age"],
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    }
    for i, (name, age, city) in enumerate(people):
        add(
            f"json-{i}",
            "json",
            f'Return only a JSON object with keys "name" and "age" for {name}, aged {age}.',
            [{"type": "json"}, {"type": "json_schema", "schema": person_schema}, {"type": "agreement"}],
            48,
        )
        add(
            f"extract-{i}",
            "extraction",
            f"{name} is {age} years old and lives in {city}. In which city does "
            f"{name} live? Answer with the city only.",
            [{"type": "contains", "value": city}, {"type": "agreement"}],
            16,
        )
    list_schema = {"type": "array", "minItems": 3, "maxItems": 3, "items": {"type": "string"}}
    for i, things in enumerate(["colors", "fruits", "animals", "countries", "planets", "metals", "rivers", "tools"]):
        add(
            f"json-list-{i}",
            "json",
            f"Return only a JSON array of exactly three {things}, as strings.",
            [{"type": "json_schema", "schema": list_schema}, {"type": "agreement"}],
            48,
        )
    pairs = [
        (17, 25),
        (8, 9),
        (120, 35),
        (63, 7),
        (14, 14),
        (99, 1),
        (250, 250),
        (31, 12),
        (7, 6),
        (45, 55),
        (12, 12),
        (81, 19),
    ]
    for i, (a, b) in enumerate(pairs):
        op, val = ("+", a + b) if i % 2 == 0 else ("*", a * b) if a * b < 1000 else ("-", a - b)
        add(
            f"math-{i}",
            "arithmetic",
            f"What is {a} {op} {b}? Answer with the number only.",
            [{"type": "number", "value": val}, {"type": "agreement"}],
            16,
        )
    topics = [
        "the ocean",
        "a city at night",
        "coffee",
        "mountains",
        "a library",
        "rain",
        "the moon",
        "trains",
        "gardens",
        "winter",
        "music",
        "bread",
    ]
    for i, topic in enumerate(topics):
        kind = i % 4
        if kind == 0:
            add(
                f"instr-{i}",
                "instructions",
                f"Write one sentence about {topic} in all lowercase letters.",
                [{"type": "lowercase"}, {"type": "sentence_count", "min": 1, "max": 2}],
                48,
            )
        elif kind == 1:
            add(
                f"instr-{i}",
                "instructions",
                f"List exactly three words about {topic} as a bulleted list using '-'.",
                [{"type": "bullet_count", "min": 3, "max": 3}],
                48,
            )
        elif kind == 2:
            add(
                f"instr-{i}",
                "instructions",
                f"Describe {topic} in at most ten words and without any commas.",
                [{"type": "word_count", "min": 1, "max": 10}, {"type": "no_commas"}],
                32,
            )
        else:
            add(
                f"instr-{i}",
                "instructions",
                f"Start your answer with the word 'Yes'. Is {topic} pleasant?",
                [{"type": "starts_with", "value": "yes"}],
                32,
            )
    texts = [
        ("The meeting moved from Monday to Thursday because the room was booked.", "thursday"),
        ("Sales rose 20 percent after the new store opened downtown.", "sales"),
        ("The bridge will close for repairs during the whole of August.", "august"),
        ("Our cat hid under the bed during the thunderstorm last night.", "cat"),
        ("The river flooded the lower fields after three days of rain.", "river"),
        ("A new library opened with free classes for children.", "library"),
        ("The train to Boston was delayed by two hours because of snow.", "boston"),
        ("Volunteers planted four hundred trees in the park on Saturday.", "trees"),
    ]
    for i, (text, key) in enumerate(texts):
        add(
            f"summary-{i}",
            "summarisation",
            f"Summarize in one short sentence: {text}",
            [{"type": "contains", "value": key}, {"type": "sentence_count", "min": 1, "max": 2}],
            48,
        )
    return cases
