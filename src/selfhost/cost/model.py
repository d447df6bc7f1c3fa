"""The arithmetic of self-hosting cost: hourly cost of hardware, cost per million tokens at a measured
throughput and a utilization, and the monthly volume at which it beats a per-token API.

Definitions (one place):
  hourly cost, rented   = price per GPU-hour × GPUs (paid whether busy or not)
  hourly cost, owned    = purchase ÷ (lifetime years × 8,760 h) + watts ÷ 1000 × $/kWh × utilization
                          + idle watts ÷ 1000 × $/kWh × (1 − utilization)
  $/1M tokens           = hourly cost ÷ (tokens/s × 3,600 × utilization) × 10^6, for output tokens and, separately,
                          input tokens (each bears the whole cost: the two are not additive)
  API $/month           = V_out × (ratio_in × p_in + p_out) ÷ 10^6, ratio_in = input tokens per output token
  break-even V_out      = self-hosted $/month ÷ API $ per output token (self-hosted always on: 730 h/month);
                          utilization needed = V_out ÷ (output tokens/s × 3,600 × 730)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from selfhost.errors import UsageError

__all__ = ["Hardware", "ApiPrice", "hourly_cost", "cost_per_million", "break_even", "HOURS_PER_MONTH"]

HOURS_PER_MONTH = 730.0  # 8,760 / 12
HOURS_PER_YEAR = 8760.0


@dataclass(frozen=True)
class Hardware:
    name: str
    gpus: int = 1
    rent_per_gpu_hour: float | None = None  # rented
    purchase_usd: float | None = None  # owned
    lifetime_years: float = 3.0
    watts: float | None = None  # at load
    idle_watts: float = 0.0
    kwh_price: float = 0.0
    sources: tuple[str, ...] = ()
    assumptions: tuple[str, ...] = ()

    def validate(self) -> None:
        if self.gpus < 1:
            raise UsageError(f"GPU count must be at least 1, got {self.gpus}")
        for label, v in (
            ("price per hour", self.rent_per_gpu_hour),
            ("purchase price", self.purchase_usd),
            ("watts", self.watts),
            ("idle watts", self.idle_watts),
            ("$/kWh", self.kwh_price),
        ):
            if v is not None and v < 0:
                raise UsageError(f"{label} cannot be negative ({v})")
        if self.lifetime_years <= 0:
            raise UsageError(f"lifetime must be positive, got {self.lifetime_years} years")
        if self.rent_per_gpu_hour is None and self.purchase_usd is None:
            raise UsageError(
                "no price for the hardware",
                "pass --price-per-hour (rented) or --purchase-price (owned), or a catalog --gpu",
            )


@dataclass(frozen=True)
class ApiPrice:
    name: str
    input_per_million: float
    output_per_million: float
    source: str

    def validate(self) -> None:
        if self.input_per_million < 0 or self.output_per_million < 0:
            raise UsageError(f"API prices cannot be negative ({self.input_per_million}, {self.output_per_million})")


def _check_utilization(u: float) -> None:
    if not 0 < u <= 1:
        raise UsageError(f"utilization must be in (0, 1], got {u}")


def hourly_cost(hw: Hardware, utilization: float = 1.0) -> dict[str, float]:
    """$/hour, split into its parts."""
    hw.validate()
    _check_utilization(utilization)
    if hw.rent_per_gpu_hour is not None:
        return {"rent": hw.rent_per_gpu_hour * hw.gpus, "total": hw.rent_per_gpu_hour * hw.gpus}
    assert hw.purchase_usd is not None
    amortization = hw.purchase_usd / (hw.lifetime_years * HOURS_PER_YEAR)
    watts = hw.watts or 0.0
    power = (watts * utilization + hw.idle_watts * (1 - utilization)) / 1000 * hw.kwh_price
    return {"amortization": amortization, "power": power, "total": amortization + power}


def cost_per_million(hourly_total: float, tokens_per_s: float, utilization: float = 1.0) -> float:
    _check_utilization(utilization)
    if tokens_per_s <= 0:
        raise UsageError(
            f"throughput must be positive to price tokens, got {tokens_per_s} tokens/s",
            "use a bench run that completed requests",
        )
    return hourly_total / (tokens_per_s * 3600 * utilization) * 1e6


def break_even(
    hw: Hardware, api: ApiPrice, output_tokens_per_s: float, input_per_output: float, utilization_for_power: float = 1.0
) -> dict[str, Any]:
    """Monthly output-token volume above which an always-on self-hosted server is cheaper than the API."""
    api.validate()
    if output_tokens_per_s <= 0:
        raise UsageError(f"throughput must be positive, got {output_tokens_per_s} tokens/s")
    monthly_self = hourly_cost(hw, utilization_for_power)["total"] * HOURS_PER_MONTH
    api_per_output_token = (input_per_output * api.input_per_million + api.output_per_million) / 1e6
    capacity = output_tokens_per_s * 3600 * HOURS_PER_MONTH  # output tokens one server makes in a month
    volume = monthly_self / api_per_output_token if api_per_output_token > 0 else float("inf")
    return {
        "self_hosted_usd_per_month": monthly_self,
        "api_usd_per_million_output_tokens_incl_input": api_per_output_token * 1e6,
        "break_even_output_tokens_per_month": volume,
        "capacity_output_tokens_per_month": capacity,
        "utilization_needed": volume / capacity,
        "reachable_with_one_server": volume <= capacity,
    }
