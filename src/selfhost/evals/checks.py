"""Checks a suite applies to an output: JSON validity and schema, regex, contains, exact, numbers, and
verifiable instructions in the IFEval style."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from selfhost.evals.suite import Case

__all__ = ["CHECKS", "run_check", "validate_check", "evaluate_case"]


def _json_start(text: str) -> tuple[str, int | None]:
    """(where to look, the index of the first JSON opener there): a ``` fence that opens before any bracket is
    looked inside (models often wrap JSON in one); otherwise the earliest `{` or `[` of the output. Nothing after
    that opener can change which value is read, so a streamed answer can stop once it is complete (settle.py)."""
    s = text.strip()
    openers = [i for i in (s.find("{"), s.find("[")) if i >= 0]
    fence = s.find("```")
    if fence >= 0 and (not openers or fence < min(openers)):
        inside = re.match(r"```(?:json)?\s*(.*?)```", s[fence:], flags=re.S)
        if inside is None:
            return s, None  # an open fence: its content is not known yet
        s = inside.group(1).strip()
        openers = [i for i in (s.find("{"), s.find("[")) if i >= 0]
    return s, min(openers) if openers else None


def _json_value(text: str) -> Any:
    """The first JSON object or array in the output (models often wrap it in prose or a code fence)."""
    s, start = _json_start(text)
    if start is not None:
        try:
            return json.JSONDecoder().raw_decode(s[start:])[0]
        except json.JSONDecodeError:
            pass
    return json.loads(s)  # raises on anything that is not JSON


def _is_json(out: str, c: dict[str, Any]) -> bool:
    try:
        _json_value(out)
        return True
    except (json.JSONDecodeError, ValueError):
        return False


def _schema(out: str, c: dict[str, Any]) -> bool:
    import jsonschema

    try:
        jsonschema.validate(_json_value(out), c["schema"])
        return True
    except (json.JSONDecodeError, ValueError, jsonschema.ValidationError):
        return False


def _number(out: str, c: dict[str, Any]) -> bool:
    nums = re.findall(r"-?\d+(?:\.\d+)?", out.replace(",", ""))
    return bool(nums) and abs(float(nums[0]) - float(c["value"])) <= float(c.get("tolerance", 0))


def _words(out: str) -> int:
    return len(re.findall(r"\b\w+\b", out))


CHECKS: dict[str, tuple[tuple[str, ...], Callable[[str, dict[str, Any]], bool]]] = {
    # name: (required fields, predicate)
    "json": ((), _is_json),
    "json_schema": (("schema",), _schema),
    "regex": (("pattern",), lambda o, c: re.search(c["pattern"], o) is not None),
    "contains": (("value",), lambda o, c: str(c["value"]).lower() in o.lower()),
    "not_contains": (("value",), lambda o, c: str(c["value"]).lower() not in o.lower()),
    "exact": (("value",), lambda o, c: o.strip() == str(c["value"]).strip()),
    "number": (("value",), _number),
    "word_count": ((), lambda o, c: int(c.get("min", 0)) <= _words(o) <= int(c.get("max", 10**9))),
    "sentence_count": (
        (),
        lambda o, c: (
            int(c.get("min", 0)) <= len([s for s in re.split(r"[.!?]+", o) if s.strip()]) <= int(c.get("max", 10**9))
        ),
    ),
    "bullet_count": (
        (),
        lambda o, c: (
            int(c.get("min", 0)) <= len(re.findall(r"^\s*[-*•]\s+", o, flags=re.M)) <= int(c.get("max", 10**9))
        ),
    ),
    "lowercase": ((), lambda o, c: o == o.lower() and any(ch.isalpha() for ch in o)),
    "no_commas": ((), lambda o, c: "," not in o),
    "starts_with": (("value",), lambda o, c: o.strip().lower().startswith(str(c["value"]).lower())),
    "ends_with": (("value",), lambda o, c: o.strip().lower().endswith(str(c["value"]).lower())),
    "keywords": (("values",), lambda o, c: all(str(k).lower() in o.lower() for k in c["values"])),
}
# "agreement" (the same output as the reference variant) is evaluated by the runner, which knows both outputs.


def validate_check(c: Any) -> str | None:
    """None when the check is well-formed, else what is wrong."""
    if not isinstance(c, dict) or "type" not in c:
        return "a check must be an object with a 'type'"
    if c["type"] == "agreement":
        return None
    if c["type"] not in CHECKS:
        return f"unknown check type {c['type']!r} (valid: {', '.join([*CHECKS, 'agreement'])})"
    missing = [f for f in CHECKS[c["type"]][0] if f not in c]
    if missing:
        return f"check {c['type']!r} needs {', '.join(missing)}"
    if c["type"] == "regex":
        if not isinstance(c["pattern"], str):
            return "check 'regex': 'pattern' must be text"
        try:
            re.compile(c["pattern"])
        except re.error as exc:
            return f"invalid regex {c['pattern']!r}: {exc}"
    if c["type"] == "json_schema":
        import jsonschema

        try:
            jsonschema.Draft202012Validator.check_schema(c["schema"])
        except jsonschema.SchemaError as exc:
            return f"check 'json_schema': not valid JSON Schema ({exc.message})"
    if c["type"] == "number":
        for key in ("value", "tolerance"):
            if key in c and not _is_finite_number(c[key]):
                return f"check 'number': {key!r} must be a finite number, not {c[key]!r}"
    if c["type"] == "keywords" and not isinstance(c["values"], list):
        return "check 'keywords': 'values' must be a list"
    if "min" in c or "max" in c:
        lo, hi = c.get("min", 0), c.get("max", 10**9)
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (lo, hi)):
            return f"check {c['type']!r}: 'min' and 'max' must be whole numbers ≥ 0"
        if lo > hi:
            return f"check {c['type']!r}: 'min' {lo} is more than 'max' {hi}"
    return None


def _is_finite_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def run_check(output: str, c: dict[str, Any]) -> bool:
    return bool(CHECKS[c["type"]][1](output, c))


def evaluate_case(case: Case, output: str, reference_output: str | None) -> dict[str, bool]:
    """Each check of the case on one output; `agreement` compares with the reference variant's output."""
    out = {}
    for i, chk in enumerate(case.checks):
        key = f"{i}:{chk['type']}"
        if chk["type"] == "agreement":
            out[key] = reference_output is not None and output.strip() == reference_output.strip()
        else:
            out[key] = run_check(output, chk)
    return out
