"""When a streamed answer's outcome can no longer change: generation stops there.

A case passes when every check passes. Some checks are decided by a prefix of the answer whatever follows it: a
required phrase once present, a JSON value once complete (checks._json_start reads the first one), a number once
it is followed by something that cannot continue it, a word or sentence limit once exceeded, a comma or capital
letter once written. When one check has failed for good, or all have passed for good, the case is settled and the
rest of the answer would only cost time: the JSON and tool-call cases of the built-in suite stop after ~15 of their
64 tokens. tests/evals/test_settle.py checks that a settled prefix always has the outcome of the whole answer."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from selfhost.evals.checks import _json_start, _words, run_check

if TYPE_CHECKING:
    from selfhost.evals.suite import Case

__all__ = ["settled"]


def _json_settled(out: str, c: dict[str, Any]) -> bool | None:
    s, start = _json_start(out)
    if start is None:
        return None
    try:
        json.JSONDecoder().raw_decode(s[start:])
    except json.JSONDecodeError:
        return None  # not complete yet (or never: then the whole answer decides)
    return run_check(out, c)


def _number_settled(out: str, c: dict[str, Any]) -> bool | None:
    text = out.replace(",", "")
    m = re.search(r"-?\d+(?:\.\d+)?", text)
    # "12" may still become "123" or "12.5": settled once followed by something else ("." then a non-digit)
    if m is None or re.match(r"[^\d.]|\.[^\d]", text[m.end() :]) is None:
        return None
    return run_check(out, c)


def _at_most(count: Callable[[str], int]) -> Callable[[str, dict[str, Any]], bool | None]:
    """Counts that only grow as text is added: past the maximum is a failure for good."""

    def check(out: str, c: dict[str, Any]) -> bool | None:
        return False if "max" in c and count(out) > int(c["max"]) else None

    return check


def _sentences(out: str) -> int:
    return len([s for s in re.split(r"[.!?]+", out) if s.strip()])


def _bullets(out: str) -> int:
    return len(re.findall(r"^\s*[-*•]\s+", out, flags=re.M))


def _starts_with(out: str, c: dict[str, Any]) -> bool | None:
    head = out.lstrip()
    return run_check(out, c) if len(head) > len(str(c["value"])) else None


_SETTLED: dict[str, Callable[[str, dict[str, Any]], bool | None]] = {
    "json": _json_settled,
    "json_schema": _json_settled,
    "number": _number_settled,
    "contains": lambda o, c: True if str(c["value"]).lower() in o.lower() else None,
    "not_contains": lambda o, c: False if str(c["value"]).lower() in o.lower() else None,
    "keywords": lambda o, c: True if all(str(k).lower() in o.lower() for k in c["values"]) else None,
    "starts_with": _starts_with,
    "word_count": _at_most(_words),
    "sentence_count": _at_most(_sentences),
    "bullet_count": _at_most(_bullets),
    "no_commas": lambda o, c: False if "," in o else None,
    "lowercase": lambda o, c: False if o != o.lower() else None,
}


def settled(case: Case, prefix: str) -> bool | None:
    """The case's final pass/fail if no continuation of `prefix` can change it, else None. Checks not listed
    (exact, ends_with, regex, agreement) settle only with the whole answer."""
    outcomes = []
    for c in case.checks:
        rule = _SETTLED.get(c["type"])
        outcome = rule(prefix, c) if rule is not None else None
        if outcome is False:
            return False
        outcomes.append(outcome)
    return True if outcomes and all(outcomes) else None
