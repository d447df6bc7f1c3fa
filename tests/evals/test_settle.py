"""A prefix that settles a case must have the whole answer's outcome, whatever follows it."""

from __future__ import annotations

import pytest

from selfhost.evals.builtin_suite import builtin_suite_with_answers
from selfhost.evals.checks import evaluate_case
from selfhost.evals.settle import settled
from selfhost.evals.suite import Case

# What models append after an answer: more prose, numbers, capitals, commas, bullets, another JSON value, a fence.
TAILS = [
    "",
    " That is all.",
    "\n\nNote: 12, 345 and MORE text, with commas.",
    '\n```json\n{"other": [1, 2]}\n```',
    "\n- one\n- two\n- three\n- four",
    '5.5 and then {"x": 1} [3]',
    "0",
    ".5",
]


def _passes(case: Case, text: str) -> bool:
    return all(evaluate_case(case, text, None).values())


def test_a_settled_prefix_has_the_outcome_of_every_continuation() -> None:
    checked = stopped_early = 0
    for case, gold, wrong in builtin_suite_with_answers():
        for answer in (gold, wrong):
            for tail in TAILS:
                full = answer + tail
                final = _passes(case, full)
                for cut in range(len(full) + 1):
                    got = settled(case, full[:cut])
                    if got is not None:
                        checked += 1
                        stopped_early += cut < len(full)
                        assert got == final, (case.id, full[:cut], full)
                        break
    assert checked > 3000 and stopped_early > 2000  # most answers settle before their end


@pytest.mark.parametrize(
    ("checks", "prefix", "expected"),
    [
        ([{"type": "number", "value": 12}], "12", None),  # may become 123 or 12.5
        ([{"type": "number", "value": 12}], "12.", None),
        ([{"type": "number", "value": 12}], "12. ", True),
        ([{"type": "number", "value": 12}], "1,2", None),
        ([{"type": "number", "value": 12}], "13 apples", False),
        ([{"type": "json"}], '{"a": 1', None),
        ([{"type": "json"}], '{"a": 1}', True),
        ([{"type": "json"}], '```json\n{"a": 1}', None),  # an open fence: its content is not known yet
        ([{"type": "json"}], '```json\n{"a": 1}\n```', True),
        ([{"type": "json_schema", "schema": {"type": "array"}}], '[{"a": 1}]', True),  # the earliest opener
        ([{"type": "contains", "value": "Paris"}], "It is paris", True),
        ([{"type": "contains", "value": "Paris"}], "It is Lyon", None),
        ([{"type": "word_count", "max": 2}], "one two three", False),
        ([{"type": "word_count", "min": 2, "max": 5}], "one two", None),
        ([{"type": "lowercase"}, {"type": "contains", "value": "x"}], "x Y", False),
        ([{"type": "exact", "value": "yes"}], "yes", None),  # only the whole answer decides
        ([{"type": "contains", "value": "a"}, {"type": "ends_with", "value": "b"}], "a", None),
    ],
)
def test_settle_rules(checks: list[dict], prefix: str, expected: bool | None) -> None:  # type: ignore[type-arg]
    assert settled(Case("t", [{"role": "user", "content": "q"}], checks), prefix) is expected
