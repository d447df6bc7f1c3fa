"""Stands for NVIDIA's `pynvml` (NVML bindings), which needs an NVIDIA driver and GPU that this machine lacks.
Written from NVML's documented API (nvmlInit, nvmlShutdown, nvmlDeviceGetCount, nvmlDeviceGetHandleByIndex,
nvmlDeviceGetPowerUsage in milliwatts): two GPUs drawing 300 W and 250 W."""

from __future__ import annotations

POWER_MW = [300_000, 250_000]
calls = {"init": 0, "shutdown": 0, "power": 0}


def nvmlInit() -> None:
    calls["init"] += 1


def nvmlShutdown() -> None:
    calls["shutdown"] += 1


def nvmlDeviceGetCount() -> int:
    return len(POWER_MW)


def nvmlDeviceGetHandleByIndex(i: int) -> int:
    return i


def nvmlDeviceGetPowerUsage(handle: int) -> int:
    calls["power"] += 1
    return POWER_MW[handle]
