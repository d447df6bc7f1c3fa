"""`selfhost cost`: what self-hosting costs per million tokens, and when it beats a hosted API."""

from __future__ import annotations

from pathlib import Path

import click

from selfhost.cli.options import json_option, out_file
from selfhost.cli.output import emit


@click.command()
@out_file(
    "--bench",
    "bench_path",
    "A saved `selfhost bench --json` result (default: run a short bench on the embedded model).",
)
@click.option("--gpu", default=None, help="Catalog GPU (prices and board power from the catalog).")
@click.option("--gpus", type=int, default=1, show_default=True)
@click.option("--price-per-hour", type=float, default=None, help="Rent, $ per GPU-hour (overrides the catalog).")
@click.option("--owned", is_flag=True, help="Owned hardware: amortised purchase + power.")
@click.option("--purchase-price", type=float, default=None, help="$ for all the hardware (implies --owned).")
@click.option("--lifetime-years", type=float, default=3.0, show_default=True)
@click.option("--watts", type=float, default=None, help="Power at load (default: NVML, else catalog board power).")
@click.option("--idle-watts", type=float, default=None)
@click.option("--kwh-price", type=float, default=0.15, show_default=True, help="$ per kWh.")
@click.option("--utilization", type=float, default=1.0, show_default=True, help="Fraction of hours serving.")
@click.option(
    "--api",
    "api_names",
    default="gpt-4o-mini,gpt-4o",
    show_default=True,
    help="Hosted APIs to compare with (catalog names, comma separated).",
)
@click.option("--api-price", default=None, help="IN,OUT $ per 1M tokens of another API.")
@json_option
def cost(
    bench_path: Path | None,
    gpu: str | None,
    gpus: int,
    price_per_hour: float | None,
    owned: bool,
    purchase_price: float | None,
    lifetime_years: float,
    watts: float | None,
    idle_watts: float | None,
    kwh_price: float,
    utilization: float,
    api_names: str,
    api_price: str | None,
    as_json: bool,
) -> None:
    """Dollars per million tokens at measured throughput; the monthly volume where self-hosting wins."""
    from selfhost.cost.run import (
        HardwareOptions,
        bench_power,
        cost_report,
        find_api_price,
        hardware_from_options,
        load_bench,
        parse_api_price,
    )
    from selfhost.hardware.detect import gpu_power_watts

    apis = [find_api_price(n.strip()) for n in api_names.split(",") if n.strip()]
    if api_price:
        apis.append(parse_api_price(api_price))
    if bench_path is not None:
        bench = load_bench(bench_path)
        source = str(bench_path)
    else:
        from selfhost.cost.embedded import bench_embedded

        bench, source = bench_embedded(Path("selfhost-runs"))
    needs_power = (owned or purchase_price is not None) and watts is None
    during = bench_power(bench) if needs_power else None
    measured = during or ((gpu_power_watts(), "power: NVML reading when `selfhost cost` ran") if needs_power else None)
    hw = hardware_from_options(
        HardwareOptions(gpu, gpus, price_per_hour, owned, purchase_price, lifetime_years, watts, idle_watts, kwh_price),
        measured_watts=measured[0] if measured else None,
        measured_source=measured[1] if measured else None,
    )
    r = cost_report(bench, hw, apis, utilization, source)
    from selfhost.cost.section import cost_summary_section

    emit(r, cost_summary_section(r, f"{hw.name} × {hw.gpus}", utilization), as_json)
