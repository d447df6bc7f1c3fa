"""`selfhost plan verify CARD`: is the card still true here? First the environment (model file, engine build,
hardware): a difference means the card describes another setup, and it is drift without measuring. Then the
chosen setting is measured again and its goodput compared with the card's interval, widened by a tolerance for
run-to-run noise."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from selfhost.errors import UsageError
from selfhost.plan.space import Workload

__all__ = ["verify_card", "workload_from_card"]


def _load(path: Path) -> dict[str, Any]:
    from selfhost.files import read_json

    card = read_json(path)
    if not isinstance(card, dict) or card.get("kind") not in ("measured", "predicted") or "decision" not in card:
        raise UsageError(f"{path} is not a `selfhost plan` card (no kind/decision)", "pass the card.json plan wrote")
    return card


def verify_card(path: Path, runs: int = 1, tolerance: float = 0.2) -> dict[str, Any]:
    from selfhost.plan.environment import differences, environment
    from selfhost.plan.measure import MeasureSettings, measure_config
    from selfhost.serve.engines import find_llama_server

    card = _load(path)
    if card["kind"] == "predicted":
        raise UsageError(f"{path} is a predicted-only card: nothing on it was measured here", "plan it on this machine")
    d = card["decision"]
    model_file = d["model_file"]
    if not Path(model_file).is_file():
        return _result(
            card, [{"what": "model_file", "reason": f"the model file {model_file} is gone"}], None, tolerance
        )
    now = environment(model_file, find_llama_server())
    drift = differences(card["environment"], now)
    if drift:
        return _result(card, drift, None, tolerance, now)
    workload = workload_from_card(card)
    out = path.parent / "verify"
    ms = card.get("measure_settings") or {}
    settings = MeasureSettings(
        card["slo"],
        workload,
        out,
        ms.get("max_concurrency", 16),
        ms.get("requests_per_level", 8),
        ms.get("max_speedup", 16.0),
    )
    from selfhost.backends.tokenizer import token_counter

    count = token_counter(model_file)
    measured = [measure_config(d["config"], model_file, settings, count, run_index=i) for i in range(runs)]
    return _result(card, [], measured, tolerance, now)


def workload_from_card(card: dict[str, Any]) -> Workload:
    """The workload the card was measured with (its prompts file or trace is read again when measured)."""
    w = card["workload"]
    return Workload(
        w["input_tokens"],
        w["output_tokens"],
        w["prompts_file"],
        w["longest_request_tokens"],
        trace_file=w.get("trace_file"),
        trace_requests=w.get("trace_requests", 0),
        trace_seconds=w.get("trace_seconds", 0.0),
    )


def _result(
    card: dict[str, Any],
    drift: list[dict[str, Any]],
    measured: list[dict[str, Any]] | None,
    tolerance: float,
    now: dict[str, Any] | None = None,
) -> dict[str, Any]:
    g = card["decision"]["goodput_requests_per_s"]
    low, high = g["low"] * (1 - tolerance), g["high"] * (1 + tolerance)
    out: dict[str, Any] = {
        "card": card["decision"]["label"],
        "card_goodput_requests_per_s": g,
        "accepted_range": [low, high],
        "tolerance": tolerance,
        "environment_now": now,
    }
    if measured is not None:
        values = [m["goodput_requests_per_s"] for m in measured]
        median = statistics.median(values)
        out["measured_goodput_requests_per_s"] = {"median": median, "runs": values}
        if not low <= median <= high:
            direction = "below" if median < low else "above"
            drift.append(
                {
                    "what": "goodput",
                    "reason": f"goodput {median:.2f} requests/s is {direction} the card's range "
                    f"{g['low']:.2f}–{g['high']:.2f} widened by {tolerance:.0%}",
                    "card": g,
                    "now": values,
                }
            )
    out["drift"] = bool(drift)
    out["drifted"] = drift
    out["answer"] = (
        "drift: " + "; ".join(x["reason"] for x in drift)
        if drift
        else f"no drift: {out['measured_goodput_requests_per_s']['median']:.2f} requests/s, within the card's range"
    )
    return out
