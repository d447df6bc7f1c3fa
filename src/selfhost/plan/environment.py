"""Where a card was measured: what `plan verify` compares before it measures again. A different model file or
engine build makes the old numbers another setup's, so each is named exactly (file hash, engine version line)."""

from __future__ import annotations

import subprocess
from typing import Any

__all__ = ["environment", "engine_version", "differences"]


def engine_version(program: str) -> str:
    """llama-server's own `--version` line (e.g. 'version: 0.5.0-dev (build 1, commit 0c1e570)')."""
    try:
        done = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    lines = [x.strip() for x in (done.stdout + done.stderr).splitlines() if x.strip().startswith("version")]
    return lines[0] if lines else "unknown"


def environment(model_path: str, engine_program: str) -> dict[str, Any]:
    from selfhost import __version__
    from selfhost.hardware.detect import detect_host
    from selfhost.models.hf_export import file_sha256

    host = detect_host()
    return {
        "selfhost_version": __version__,
        "engine": "llama-server",
        "engine_program": engine_program,
        "engine_version": engine_version(engine_program),
        "model_file": model_path,
        "model_sha256": file_sha256(model_path),
        "hardware": {
            "cpu": host.cpu_model,
            "logical_cores": host.logical_cores,
            "ram_bytes": host.ram_total_bytes,
            "gpus": [g.name for g in host.gpus],
        },
        "os": host.os,
        "python": host.python,
    }


# What must be equal for a measurement to be comparable, and what a difference means.
_COMPARED = {
    "model_sha256": "the model file differs",
    "engine_version": "the engine build differs",
    "hardware": "the hardware differs",
}


def differences(card_env: dict[str, Any], now: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"what": key, "reason": why, "card": card_env.get(key), "now": now.get(key)}
        for key, why in _COMPARED.items()
        if card_env.get(key) != now.get(key)
    ]
