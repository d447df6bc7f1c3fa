"""The built-in suite: size, categories, round-robin order, well-formed checks, and fair checks (each case's correct
answer passes all of them, its wrong answer fails at least one)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from selfhost.evals.builtin_suite import CATEGORIES, LICENSE_NOTE, builtin_suite, builtin_suite_with_answers
from selfhost.evals.checks import evaluate_case, validate_check
from selfhost.evals.suite import Case


@pytest.fixture(scope="module")
def with_answers() -> list[tuple[Case, str, str]]:
    return builtin_suite_with_answers()


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return builtin_suite()


def test_size_ids_and_categories(cases: list[Case]) -> None:
    assert len(cases) >= 500
    ids = [c.id for c in cases]
    assert len(set(ids)) == len(ids)
    counts = Counter(c.category for c in cases)
    assert set(counts) == set(CATEGORIES) and len(CATEGORIES) == 6
    assert min(counts.values()) >= 70
    for c in cases:
        category, n = c.id.rsplit("-", 1)
        assert category == c.category and n.isdigit(), c.id


def test_checks_are_valid_and_budgets_small(cases: list[Case]) -> None:
    for c in cases:
        assert c.checks, c.id
        assert c.messages and c.messages[-1]["role"] == "user" and c.messages[-1]["content"], c.id
        assert 1 <= c.max_tokens <= 64, c.id
        for chk in c.checks:
            assert chk["type"] != "agreement", c.id
            assert validate_check(chk) is None, (c.id, chk)


def test_tool_calls_have_a_system_message_and_pin_values(cases: list[Case]) -> None:
    for c in cases:
        if c.category != "tool_call":
            continue
        assert c.messages[0]["role"] == "system" and "JSON Schema" in c.messages[0]["content"], c.id
        schema = next(chk["schema"] for chk in c.checks if chk["type"] == "json_schema")
        assert any("const" in p or "enum" in p for p in schema["properties"].values()), c.id


def test_every_prefix_covers_all_categories(cases: list[Case]) -> None:
    for start in range(len(cases) - 60 + 1):
        assert {c.category for c in cases[start : start + 60]} == set(CATEGORIES), start
    # Strictly round-robin: the first six cases are one of each category, in CATEGORIES order.
    assert [c.category for c in cases[:6]] == list(CATEGORIES)


def _unfair(with_answers: list[tuple[Case, str, str]]) -> tuple[list[str], list[str]]:
    """Ids of cases whose gold answer fails a check, and of cases whose wrong answer passes every check."""
    gold_fails = [c.id for c, gold, _ in with_answers if not all(evaluate_case(c, gold, None).values())]
    wrong_passes = [c.id for c, _, wrong in with_answers if all(evaluate_case(c, wrong, None).values())]
    return gold_fails, wrong_passes


def test_gold_answers_pass_and_wrong_answers_fail(with_answers: list[tuple[Case, str, str]]) -> None:
    for case, gold, wrong in with_answers:
        assert gold.strip() and wrong.strip() and gold != wrong, case.id
    assert _unfair(with_answers) == ([], [])


def test_the_fairness_check_catches_bad_cases(with_answers: list[tuple[Case, str, str]]) -> None:
    case, gold, wrong = with_answers[0]
    too_loose = replace(case, checks=[{"type": "word_count", "min": 0}])
    too_strict = replace(case, checks=[*case.checks, {"type": "exact", "value": "something else"}])
    assert _unfair([(too_loose, gold, wrong), (too_strict, gold, wrong)]) == ([case.id], [case.id])


def test_deterministic(cases: list[Case], with_answers: list[tuple[Case, str, str]]) -> None:
    assert builtin_suite() == cases
    assert builtin_suite_with_answers() == with_answers
    assert [c for c, _, _ in with_answers] == cases


def test_license_note() -> None:
    assert "Apache-2.0" in LICENSE_NOTE and "selfhost" in LICENSE_NOTE
