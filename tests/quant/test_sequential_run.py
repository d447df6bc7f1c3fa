"""The sequential quant run: KLD prunes first, each variant stops once its confidence sequence decides it, a
smaller variant shown non-inferior makes larger ones unnecessary, and a budget ends the rest as undecided.

The answers are written ahead into the run's resumable records under the keys the run computes (as an interrupted
run leaves them), so the run reuses them instead of generating: the outcomes are then exactly known. The variant
files and their KL divergences are real."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from selfhost.evals.sequential import decide, difference_sequence, running_bounds
from selfhost.evals.suite import Case
from selfhost.quant.run import Gates, QuantConfig, item_key, look_points, run_order, run_quant
from selfhost.quant.variants import Variant, make_variants

TEXT = "The quick brown fox jumps over the lazy dog while the cat sleeps in the warm sun. " * 2


@pytest.fixture(scope="module")
def variants(smollm2_path: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Variant]:
    return make_variants(smollm2_path, tmp_path_factory.mktemp("variants"), ["Q8_0", "Q4_K_M", "Q2_K"], "Q4_1")


CASES = [
    Case(f"c{i}", [{"role": "user", "content": f"Say yes ({i})."}], [{"type": "contains", "value": "yes"}], 8, cat)
    for i, cat in zip(range(400), ["a", "b"] * 200, strict=True)
]
SIX = [  # six categories, as the built-in suite has
    Case(f"s{i}", [{"role": "user", "content": f"Say yes ({i})."}], [{"type": "contains", "value": "yes"}], 8, cat)
    for i, cat in enumerate("abcdef" * 100)
]


def _fails(name: str, i: int) -> bool:
    """Which cases each variant fails (the reference passes all): Q4_K_M none, Q8_0 one in 25, Q2_K two in five."""
    return {"F16": False, "Q4_K_M": False, "Q8_0": i % 25 == 3, "Q2_K": i % 5 in (1, 3)}[name]


def _write_records(
    path: Path, variants: list[Variant], cases: list[Case] = CASES, fails: Callable[[str, int], bool] = _fails
) -> None:
    with open(path, "w") as f:
        for v in variants:
            for i, c in enumerate(cases):
                out = "no" if fails(v.name, i) else "yes"
                rec = {"key": item_key(v, c, 2048), "variant": v.name, "case": c.id, "output": out}
                timing = {"completion_tokens": 1, "ttft_s": 0.01, "e2e_s": 0.02, "decode_tokens_per_s": 50.0}
                f.write(json.dumps(rec | timing) + "\n")


def _expected_decision(name: str, looks: list[int]) -> tuple[str, int]:
    order = [int(c.id[1:]) for c in run_order(CASES)]
    bounds = running_bounds([not _fails(name, i) for i in order], [True] * len(order))
    for n in looks:
        verdict = decide(bounds[n - 1], 0.05)
        if verdict != "open":
            return verdict, n
    return "open", looks[-1]


def test_smallest_first_each_stops_when_decided(variants: list[Variant], tmp_path: Path) -> None:
    records = tmp_path / "items.jsonl"
    _write_records(records, variants)
    gates = Gates(max_pass_rate_drop=0.05, max_kld_p99=1e6)  # no KLD pruning here: the suite decides
    cfg = QuantConfig(variants, CASES, TEXT, records, gates)
    r = run_quant(cfg, lambda *a: pytest.fail(f"generated {a}"))
    by = {v["name"]: v for v in r["variants"]}
    looks = look_points(len(CASES), cfg.look_every)
    # The smallest runs first and is shown worse; the next one then catches up from the first case and passes.
    worse_at = _expected_decision("Q2_K", looks)
    assert (by["Q2_K"]["decision"], by["Q2_K"]["decided_after_cases"]) == worse_at == ("worse", worse_at[1])
    passed_at = _expected_decision("Q4_K_M", [n for n in looks if n > worse_at[1]])
    assert (by["Q4_K_M"]["decision"], by["Q4_K_M"]["decided_after_cases"]) == ("non-inferior", passed_at[1])
    # Q8_0, larger, never ran: a smaller variant was shown non-inferior first
    assert by["Q8_0"]["decision"] == "not needed" and by["Q8_0"]["cases_run"] == 0
    assert r["recommended"] == "Q4_K_M" and "non-inferior" in r["recommendation"]["why"] and r["decided"]
    assert by["Q2_K"]["cases_run"] < len(CASES) and r["cases"] == passed_at[1] < len(CASES)
    lo, hi = by["Q2_K"]["difference_vs_reference"]["ci_low"], by["Q2_K"]["difference_vs_reference"]["ci_high"]
    assert hi < -0.05 and lo <= by["Q2_K"]["difference_vs_reference"]["difference"] <= hi
    cats = by["Q2_K"]["pass_rate_by_category"]
    assert set(cats) == {"a", "b"} and sum(c["cases"] for c in cats.values()) == by["Q2_K"]["cases_run"]


def test_kld_prunes_before_any_generation(variants: list[Variant], tmp_path: Path) -> None:
    records = tmp_path / "items.jsonl"
    _write_records(records, variants)
    probe = run_quant(QuantConfig(variants, CASES, TEXT, tmp_path / "p.jsonl", Gates(max_kld_p99=1e6), budget_s=0))
    p99 = {v["name"]: v["kld_p99"] for v in probe["variants"]}
    bound = (p99["Q4_K_M"] + p99["Q2_K"]) / 2  # between the two: Q2_K's tail fails, the others' pass
    r = run_quant(QuantConfig(variants, CASES, TEXT, records, Gates(max_kld_p99=bound)))
    by = {v["name"]: v for v in r["variants"]}
    assert by["Q2_K"]["decision"] == "worse" and by["Q2_K"]["cases_run"] == 0 and by["Q2_K"]["pass_rate"] is None
    assert "KLD p99" in by["Q2_K"]["decision_reason"] and by["Q2_K"]["gates"]["kld_p99"] is False


def test_a_budget_ends_open_variants_as_undecided(variants: list[Variant], tmp_path: Path) -> None:
    gates = Gates(max_kld_p99=1e6)
    r = run_quant(QuantConfig(variants, CASES, TEXT, tmp_path / "none.jsonl", gates, budget_s=0))
    assert [v["decision"] for v in r["variants"]] == ["reference", "undecided", "undecided", "undecided"]
    assert sum("not run" in (v["decision_reason"] or "") for v in r["variants"]) == 2  # only the smallest started
    assert r["recommended"] == "F16" and r["decided"] is False and "undecided" in r["recommendation"]["why"]
    assert not (tmp_path / "none.jsonl").read_text()  # nothing generated after the budget ran out
    records = tmp_path / "items.jsonl"
    _write_records(records, variants)
    capped = run_quant(QuantConfig(variants, CASES, TEXT, records, gates, max_cases=30))
    assert capped["cases"] == 30 and all(v["cases_run"] <= 30 for v in capped["variants"])
    assert {v["decision"] for v in capped["variants"][1:]} <= {"undecided", "worse", "non-inferior", "not needed"}


def test_look_points_every_n_cases_and_at_the_end() -> None:
    assert look_points(70, 20) == [20, 40, 60, 70]
    assert look_points(20, 20) == [20] and look_points(7, 20) == [7]


def _loses_one_category(name: str, i: int) -> bool:
    """Q2_K fails three in ten of category c (a 30-point drop there, 5 points overall); the others fail nothing."""
    return name == "Q2_K" and i % 6 == 2 and (i // 6) % 10 in (0, 3, 6)


def _first_look(name: str, cases: list[Case], looks: list[int], want: str) -> int | None:
    """The first look at which `name`'s verdict is `want`: 'worse' when worse overall or in any category (10-point
    margin there), 'non-inferior' when non-inferior overall and in every category."""
    order = run_order(cases)
    passes = [not _loses_one_category(name, int(c.id[1:])) for c in order]
    for n in looks:
        overall = decide(running_bounds(passes[:n], [True] * n)[-1], 0.05)
        per_cat = []
        for cat in sorted({c.category for c in order}):
            mine = [p for p, c in zip(passes[:n], order[:n], strict=True) if c.category == cat]
            per_cat.append(decide(difference_sequence(mine, [True] * len(mine)), 0.10))
        if want == "worse" and (overall == "worse" or "worse" in per_cat):
            return n
        if want == "non-inferior" and overall == "non-inferior" and set(per_cat) == {"non-inferior"}:
            return n
    return None


def test_worse_in_one_category_is_worse(variants: list[Variant], tmp_path: Path) -> None:
    """A variant that keeps five categories and loses one is not recommended, though its overall drop (5 points)
    is within the overall margin; the next size up then runs until every category has its verdict."""
    records = tmp_path / "items.jsonl"
    _write_records(records, variants, SIX, _loses_one_category)
    cfg = QuantConfig(variants, SIX, TEXT, records, Gates(max_kld_p99=1e6))
    r = run_quant(cfg, lambda *a: pytest.fail(f"generated {a}"))
    by = {v["name"]: v for v in r["variants"]}
    looks = look_points(len(SIX), cfg.look_every)
    worse_at = _first_look("Q2_K", SIX, looks, "worse")
    assert worse_at is not None
    q2 = by["Q2_K"]
    assert (q2["decision"], q2["decided_after_cases"]) == ("worse", worse_at)
    assert "in c " in q2["decision_reason"] and q2["pass_rate_by_category"]["c"]["interval"][1] < -0.10
    assert q2["difference_vs_reference"]["ci_high"] >= -0.05  # not shown worse overall: the category decided it
    assert r["by_category"]["c"]["worse"] == ["Q2_K"]

    passed_at = _first_look("Q4_K_M", SIX, [n for n in looks if n > worse_at], "non-inferior")
    q4 = by["Q4_K_M"]
    assert (q4["decision"], q4["decided_after_cases"]) == ("non-inferior", passed_at)
    # shown non-inferior overall first, it kept running until each category was decided
    assert q4["overall_decided_after_cases"] < q4["decided_after_cases"]
    assert {c["decision"] for c in q4["pass_rate_by_category"].values()} == {"non-inferior"}
    assert all("Q4_K_M" in v["passed"] for v in r["by_category"].values())
    assert by["Q8_0"]["decision"] == "not needed" and r["recommended"] == "Q4_K_M" and r["decided"]
    assert "each category shown within it" in r["recommendation"]["why"]


def test_categories_still_open_when_the_suite_ends(variants: list[Variant], tmp_path: Path) -> None:
    """Thirty cases per category cannot show a category within 10 points; the variant shown non-inferior overall is
    still the answer, with its open categories named."""
    few = SIX[:180]
    records = tmp_path / "items.jsonl"
    chosen = [variants[0], next(v for v in variants if v.name == "Q4_K_M")]
    _write_records(records, chosen, few, _loses_one_category)
    r = run_quant(QuantConfig(chosen, few, TEXT, records, Gates(max_kld_p99=1e6)), lambda *a: pytest.fail(f"{a}"))
    q4 = r["variants"][1]
    assert q4["decision"] == "non-inferior" and "still open when the suite ran out" in q4["decision_reason"]
    assert q4["overall_decided_after_cases"] == q4["decided_after_cases"] < len(few)
    assert {c["decision"] for c in q4["pass_rate_by_category"].values()} == {"open"}
    assert r["by_category"] == {cat: {"passed": [], "worse": [], "open": ["Q4_K_M"]} for cat in "abcdef"}
    assert r["recommended"] == "Q4_K_M" and "still open: a, b, c, d, e, f" in r["recommendation"]["why"]
