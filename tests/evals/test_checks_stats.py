"""Every check type with a passing and a failing output; bootstrap coverage on simulated data; suite errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from selfhost.errors import UsageError
from selfhost.evals.checks import CHECKS, evaluate_case, run_check
from selfhost.evals.stats import paired_bootstrap, wilson
from selfhost.evals.suite import Case, default_suite, load_suite

SCHEMA = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
CASES = [  # (check, passing output, failing output)
    ({"type": "json"}, 'Here: {"a": 1}', "{a: 1}"),
    ({"type": "json_schema", "schema": SCHEMA}, '```json\n{"name": "x"}\n```', '{"name": 3}'),
    ({"type": "regex", "pattern": r"^\d{4}$"}, "2024", "year 2024"),
    ({"type": "contains", "value": "Paris"}, "It is paris.", "It is Rome."),
    ({"type": "not_contains", "value": "sorry"}, "Sure.", "Sorry, I can't."),
    ({"type": "exact", "value": "42"}, " 42\n", "42."),
    ({"type": "number", "value": 3.14, "tolerance": 0.01}, "About 3.141", "About 3.2"),
    ({"type": "word_count", "min": 2, "max": 3}, "two words", "just one more word here"),
    ({"type": "sentence_count", "min": 1, "max": 1}, "One sentence.", "One. Two."),
    ({"type": "bullet_count", "min": 2, "max": 2}, "- a\n- b", "- a"),
    ({"type": "lowercase"}, "all lower here", "Not lower"),
    ({"type": "no_commas"}, "no commas here", "one, two"),
    ({"type": "starts_with", "value": "yes"}, "Yes, indeed", "Well, yes"),
    ({"type": "ends_with", "value": "done."}, "All done.", "Done. More"),
    ({"type": "keywords", "values": ["red", "blue"]}, "Red and blue.", "Red and green."),
]


def test_every_check_type_is_covered() -> None:
    assert {c["type"] for c, _, _ in CASES} == set(CHECKS)


@pytest.mark.parametrize(("check", "good", "bad"), CASES, ids=[c["type"] for c, _, _ in CASES])
def test_check_passes_and_fails(check: dict, good: str, bad: str) -> None:  # type: ignore[type-arg]
    assert run_check(good, check) is True
    assert run_check(bad, check) is False


def test_agreement_check() -> None:
    case = Case("c", [{"role": "user", "content": "x"}], [{"type": "agreement"}])
    assert evaluate_case(case, "same ", "same") == {"0:agreement": True}
    assert evaluate_case(case, "other", "same") == {"0:agreement": False}


def test_bootstrap_covers_the_true_difference() -> None:
    """200 simulated paired studies with a known true difference of −0.10: the 95 % interval should contain it
    about 95 % of the time."""
    rng = np.random.default_rng(1)
    covered = 0
    trials = 200
    for t in range(trials):
        ref = rng.random(120) < 0.7
        # the variant fails 1 in 7 of the reference's passes: true difference = −0.7/7 = −0.10
        var = ref & (rng.random(120) >= 1 / 7)
        ci = paired_bootstrap(var.tolist(), ref.tolist(), resamples=1000, seed=t)
        covered += ci["ci_low"] <= -0.10 <= ci["ci_high"]
    assert 0.90 <= covered / trials <= 0.99


def test_wilson_interval() -> None:
    lo, hi = wilson(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)


def test_default_suite_is_valid_and_large_enough(tmp_path: Path) -> None:
    cases = default_suite()
    assert len(cases) >= 60 and len({c.id for c in cases}) == len(cases)
    assert {c.category for c in cases} == {"json", "extraction", "instructions", "arithmetic", "summarisation"}
    f = tmp_path / "suite.jsonl"
    f.write_text("\n".join(json.dumps({"id": c.id, "messages": c.messages, "checks": c.checks}) for c in cases))
    assert [c.id for c in load_suite(f)] == [c.id for c in cases]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"id": "a", "checks": [{"type": "json"}]}', "no 'prompt' or 'messages'"),
        ('{"id": "a", "prompt": "x", "checks": []}', "non-empty list"),
        ('{"id": "a", "prompt": "x", "checks": [{"type": "telepathy"}]}', "unknown check type 'telepathy'"),
        ('{"id": "a", "prompt": "x", "checks": [{"type": "regex"}]}', "needs pattern"),
        ('{"id": "a", "prompt": "x", "checks": [{"type": "regex", "pattern": "("}]}', "invalid regex"),
    ],
)
def test_malformed_suites_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    f = tmp_path / "s.jsonl"
    f.write_text('{"id": "ok", "prompt": "x", "checks": [{"type": "json"}]}\n' + line + "\n")
    with pytest.raises(UsageError, match=message) as err:
        load_suite(f)
    assert f"{f}:2:" in err.value.message


def test_yaml_suites_read_like_jsonl_and_name_the_line(tmp_path: Path) -> None:
    f = tmp_path / "suite.yaml"
    f.write_text(
        "cases:\n"
        "  - id: order\n"
        "    prompt: 'Return the order as JSON with keys sku and qty: 3 boxes of A-17'\n"
        "    max_tokens: 64\n"
        "    checks:\n"
        "      - {type: json_schema, schema: {type: object, required: [sku, qty]}}\n"
        "      - type: agreement\n"
        "  - id: sum\n"
        "    messages:\n"
        "      - {role: user, content: 'What is 2 + 2?'}\n"
        "    checks: [{type: number, value: 4}]\n"
    )
    cases = load_suite(f)
    assert [c.id for c in cases] == ["order", "sum"] and cases[0].max_tokens == 64
    assert cases[0].checks[0]["schema"]["required"] == ["sku", "qty"]
    assert cases[1].messages == [{"role": "user", "content": "What is 2 + 2?"}]

    bad = tmp_path / "bad.yml"
    bad.write_text(
        "- id: a\n  prompt: x\n  checks: [{type: json}]\n- id: b\n  prompt: y\n  checks: [{type: telepathy}]\n"
    )
    with pytest.raises(UsageError, match="unknown check type 'telepathy'") as err:
        load_suite(bad)
    assert f"{bad}:4:" in err.value.message  # the line the bad case starts on
    broken = tmp_path / "broken.yaml"
    broken.write_text("- id: a\n  prompt: [unclosed\n")
    with pytest.raises(UsageError, match="not valid YAML"):
        load_suite(broken)
