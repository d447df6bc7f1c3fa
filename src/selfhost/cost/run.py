"""`selfhost cost`: prices (catalog or given) × measured throughput (a bench run) → $/1M tokens and break-even."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from selfhost.cost.model import HOURS_PER_MONTH, ApiPrice, Hardware, break_even, cost_per_million, hourly_cost
from selfhost.errors import UsageError
from selfhost.files import read_json

__all__ = ["prices", "find_api_price", "hardware_from_options", "load_bench", "cost_report", "bench_power"]


@lru_cache(maxsize=1)
def prices() -> dict[str, Any]:
    return dict(json.loads(resources.files("selfhost.cost").joinpath("data/prices.json").read_text(encoding="utf-8")))


def find_api_price(name: str) -> ApiPrice:
    for e in prices()["api_usd_per_million"]:
        if e["name"].lower() == name.lower():
            return ApiPrice(e["name"], e["input"], e["output"], f"{e['source_url']} (as of {e['as_of']})")
    names = ", ".join(e["name"] for e in prices()["api_usd_per_million"])
    raise UsageError(f"no API price for {name!r}", f"known: {names}; or pass --api-price IN,OUT ($ per 1M tokens)")


def parse_api_price(text: str) -> ApiPrice:
    try:
        a, b = (float(x) for x in text.split(","))
    except ValueError:
        raise UsageError(
            f"--api-price {text!r} is not IN,OUT", "e.g. --api-price 0.15,0.60 ($ per 1M tokens)"
        ) from None
    if not all(math.isfinite(x) and 0 <= x <= 1e6 for x in (a, b)) or a + b == 0:
        raise UsageError(
            f"--api-price {text!r}: prices must be finite, ≥ 0 and not both 0", "e.g. --api-price 0.15,0.60"
        )
    return ApiPrice("custom", a, b, "given on the command line")


@dataclass(frozen=True)
class HardwareOptions:
    gpu: str | None = None
    gpus: int = 1
    price_per_hour: float | None = None
    owned: bool = False
    purchase_price: float | None = None
    lifetime_years: float = 3.0
    watts: float | None = None
    idle_watts: float | None = None
    kwh_price: float = 0.15


def bench_power(bench: dict[str, Any]) -> tuple[float, str] | None:
    """The mean GPU power `selfhost bench` sampled while its load ran (the busiest level of a sweep)."""
    runs = [r for r in (bench.get("runs") or [bench]) if r.get("gpu_power")]
    if not runs:
        return None
    p = max(runs, key=lambda r: float(r["gpu_power"]["mean_w"]))["gpu_power"]
    return float(p["mean_w"]), f"power: mean of {p['samples']} NVML samples during the bench ({p['mean_w']:.0f} W)"


def hardware_from_options(
    o: HardwareOptions, measured_watts: float | None = None, measured_source: str | None = None
) -> Hardware:
    from selfhost.hardware.catalog import find_device

    sources: list[str] = []
    assumptions: list[str] = []
    name = o.gpu or "this machine"
    board_w = None
    if o.gpu:
        d = find_device(o.gpu)
        name = d.name
        board_w = d.board_power_w
    if o.owned or o.purchase_price is not None:
        purchase = o.purchase_price
        if purchase is None:
            hit = next((e for e in prices()["purchase_usd"] if e["gpu"] == name), None)
            if hit is None:
                raise UsageError(f"no purchase price for {name}", "pass --purchase-price USD")
            purchase = hit["usd"] * o.gpus
            sources.append(f"purchase: {hit['source_url']} ({hit['as_of']})")
        else:
            sources.append("purchase price: given")
        watts = o.watts if o.watts is not None else measured_watts
        if watts is None and board_w is not None:
            watts = board_w * o.gpus
            assumptions.append(f"power: board power {board_w:g} W per GPU from the GPU catalog (not measured)")
        elif watts is not None and o.watts is None:
            sources.append(measured_source or "power: NVML reading when `selfhost cost` ran")
        if watts is None:
            raise UsageError("no power figure for owned hardware", "pass --watts W")
        idle = o.idle_watts if o.idle_watts is not None else 0.0
        if o.idle_watts is None:
            assumptions.append("idle power: 0 W (pass --idle-watts)")
        return Hardware(
            name,
            o.gpus,
            purchase_usd=purchase,
            lifetime_years=o.lifetime_years,
            watts=watts,
            idle_watts=idle,
            kwh_price=o.kwh_price,
            sources=tuple(sources),
            assumptions=tuple(assumptions),
        )
    rate = o.price_per_hour
    if rate is None:
        hit = next((e for e in prices()["rent_per_gpu_hour"] if e["gpu"] == name), None)
        if hit is None:
            raise UsageError(f"no rental price for {name}", "pass --price-per-hour USD (per GPU)")
        rate = hit["usd_per_hour"]
        sources.append(f"rent: {hit['provider']}, {hit['source_url']} ({hit['as_of']})")
    else:
        sources.append("rent: given")
    return Hardware(name, o.gpus, rent_per_gpu_hour=rate, sources=tuple(sources), assumptions=tuple(assumptions))


def load_bench(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise UsageError(f"no bench result at {path}", "run `selfhost bench URL --json > bench.json` first")
    d = read_json(path)
    if not isinstance(d, dict) or ("output_tokens_per_s" not in d and "runs" not in d):
        raise UsageError(f"{path} is not a `selfhost bench --json` result (no output_tokens_per_s)")
    return d


def cost_report(
    bench: dict[str, Any], hw: Hardware, apis: list[ApiPrice], utilization: float, bench_source: str
) -> dict[str, Any]:
    runs = bench.get("runs") or [bench]
    hourly = hourly_cost(hw, utilization)
    levels = []
    for r in runs:
        out_tps = float(r.get("output_tokens_per_s") or 0)
        in_tps = float(r.get("input_tokens_per_s") or 0)
        level = {
            "concurrency": r["load"].get("concurrency"),
            "rate": r["load"].get("rate"),
            "output_tokens_per_s": out_tps,
            "input_tokens_per_s": in_tps,
            "usd_per_million_output_tokens": cost_per_million(hourly["total"], out_tps, utilization),
            "usd_per_million_input_tokens": cost_per_million(hourly["total"], in_tps, utilization)
            if in_tps > 0
            else None,
        }
        ratio = (in_tps / out_tps) if out_tps > 0 else 0.0
        level["break_even"] = {a.name: break_even(hw, a, out_tps, ratio, utilization) for a in apis}
        levels.append(level)
    best = max(levels, key=lambda x: x["output_tokens_per_s"])
    return {
        "hardware": {
            "name": hw.name,
            "gpus": hw.gpus,
            "rent_per_gpu_hour": hw.rent_per_gpu_hour,
            "purchase_usd": hw.purchase_usd,
            "lifetime_years": hw.lifetime_years,
            "watts": hw.watts,
            "kwh_price": hw.kwh_price,
        },
        "hourly_usd": hourly,
        "utilization": utilization,
        "levels": levels,
        "best_level": best,
        "apis": [
            {
                "name": a.name,
                "input_per_million": a.input_per_million,
                "output_per_million": a.output_per_million,
                "source": a.source,
            }
            for a in apis
        ],
        "sources": list(hw.sources),
        "assumptions": list(hw.assumptions),
        "throughput_from": bench_source,
        "definitions": "each $/1M figure bears the whole hourly cost (input and output are not additive); "
        f"break-even assumes an always-on server ({HOURS_PER_MONTH:g} h/month)",
    }
