"""Cost arithmetic on hand-checked cases, bad inputs, and a cost from a real bench of `selfhost serve`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfhost.cost.model import ApiPrice, Hardware, break_even, cost_per_million, hourly_cost
from selfhost.cost.run import HardwareOptions, hardware_from_options
from selfhost.errors import UsageError
from tests.cli.test_info_cli import _one_line_error, run


def test_rented_cost_per_million() -> None:
    hw = Hardware("H100", gpus=2, rent_per_gpu_hour=3.0)
    assert hourly_cost(hw)["total"] == 6.0
    # $6/h at 1,000 tokens/s: 3.6M tokens/h → $1.6667 per 1M; at 50 % utilization twice that.
    assert cost_per_million(6.0, 1000) == pytest.approx(6 / 3.6)
    assert cost_per_million(6.0, 1000, utilization=0.5) == pytest.approx(2 * 6 / 3.6)


def test_owned_amortization_and_power() -> None:
    hw = Hardware("RTX 4090", purchase_usd=2628.0, lifetime_years=3, watts=400, idle_watts=50, kwh_price=0.25)
    h = hourly_cost(hw, utilization=0.5)
    assert h["amortization"] == pytest.approx(2628 / (3 * 8760)) == pytest.approx(0.1)
    # 0.5 × 400 W + 0.5 × 50 W = 225 W → 0.225 kWh × $0.25
    assert h["power"] == pytest.approx(0.05625)
    assert h["total"] == pytest.approx(0.15625)


def test_break_even() -> None:
    hw = Hardware("x", rent_per_gpu_hour=1.0)  # $730 a month always on
    api = ApiPrice("api", input_per_million=1.0, output_per_million=4.0, source="test")
    be = break_even(hw, api, output_tokens_per_s=100, input_per_output=2.0)
    # API: 2 × $1 + $4 = $6 per 1M output tokens (with their input) → 730 / 6 × 1e6 tokens a month
    assert be["self_hosted_usd_per_month"] == pytest.approx(730)
    assert be["break_even_output_tokens_per_month"] == pytest.approx(730 / 6 * 1e6)
    assert be["capacity_output_tokens_per_month"] == pytest.approx(100 * 3600 * 730)
    assert be["utilization_needed"] == pytest.approx((730 / 6 * 1e6) / (100 * 3600 * 730))
    assert be["reachable_with_one_server"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: cost_per_million(1.0, 0.0), "throughput must be positive"),
        (lambda: hourly_cost(Hardware("x", rent_per_gpu_hour=-1.0)), "cannot be negative"),
        (lambda: hourly_cost(Hardware("x", rent_per_gpu_hour=1.0), utilization=0.0), "utilization"),
        (lambda: hourly_cost(Hardware("x")), "no price"),
        (
            lambda: break_even(Hardware("x", rent_per_gpu_hour=1), ApiPrice("a", -1, 1, "t"), 10, 1),
            "cannot be negative",
        ),
    ],
)
def test_bad_inputs(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError, match=message):
        call()


def test_catalog_prices_carry_sources() -> None:
    hw = hardware_from_options(HardwareOptions(gpu="H100"))
    assert hw.rent_per_gpu_hour and any("lambda" in s for s in hw.sources)
    owned = hardware_from_options(HardwareOptions(gpu="RTX 4090", owned=True))
    assert owned.purchase_usd == 1599 and owned.watts == 450
    assert any("board power" in a for a in owned.assumptions)


def test_missing_bench_file(tmp_path: Path) -> None:
    err = _one_line_error(run("cost", "--bench", str(tmp_path / "nope.json"), "--price-per-hour", "1"))
    assert "no bench result" in err and "selfhost bench" in err


def test_cost_from_a_real_bench_of_selfhost_serve(tmp_path: Path) -> None:
    from selfhost.cost.embedded import bench_embedded

    bench, source = bench_embedded(tmp_path, levels=(1,))
    f = tmp_path / "bench.json"
    f.write_text(json.dumps(bench))
    r = run("cost", "--bench", str(f), "--price-per-hour", "0.10", "--api", "gpt-4o-mini", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    level = d["levels"][0]
    tps = bench["runs"][0]["output_tokens_per_s"]
    assert tps > 0 and level["output_tokens_per_s"] == tps
    assert level["usd_per_million_output_tokens"] == pytest.approx(0.10 / (tps * 3600) * 1e6)
    assert d["throughput_from"] == str(f) and "given" in d["sources"][0]
    assert "gpt-4o-mini" in level["break_even"]
    # the terminal shows the same numbers: $/1M per level, the break-even against the API, the sources
    wide = {"COLUMNS": "400"}  # one line per row, so the assertions see whole cells
    text = run("cost", "--bench", str(f), "--price-per-hour", "0.10", "--api", "gpt-4o-mini", env=wide)
    assert text.returncode == 0, text.stderr
    assert f"${level['usd_per_million_output_tokens']:.2f} per 1M output tokens" in text.stdout
    assert "vs gpt-4o-mini" in text.stdout and "break-even" in text.stdout
    assert f"throughput from: {f}" in text.stdout
