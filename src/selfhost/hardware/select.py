"""Which devices a plan is for: named catalog GPUs, or what this machine has."""

from __future__ import annotations

import psutil

from selfhost.errors import UsageError
from selfhost.hardware.catalog import Device, device_catalog, find_device
from selfhost.hardware.detect import detect_host

__all__ = ["select_devices", "host_device"]


def host_device(bandwidth: float | None = None) -> Device:
    vm = psutil.virtual_memory()
    return Device(
        "this machine's RAM",
        "cpu",
        int(vm.total),
        bandwidth,
        None,
        "measured on this machine (psutil)",
        free_bytes=int(vm.available),
    )


def select_devices(gpu: str | None, count: int = 1) -> tuple[Device, ...]:
    """`--gpu NAME --gpus K` (catalog), `--gpu auto` (NVML), or no GPU (CPU only)."""
    if count < 1:
        raise UsageError(f"--gpus must be at least 1, got {count}")
    if gpu is None or gpu.lower() == "cpu":
        return ()
    if gpu.lower() == "auto":
        detected = detect_host().gpus
        out = []
        for g in detected:
            match = _catalog_match(g.name)
            out.append(
                Device(
                    g.name,
                    "gpu",
                    g.memory_total_bytes,
                    match.bandwidth_bytes_per_s if match else None,
                    match.fp16_flops if match else None,
                    "detected with NVML" + (f"; bandwidth/FLOPs from {match.source}" if match else ""),
                    free_bytes=g.memory_free_bytes,
                )
            )
        return tuple(out)
    d = find_device(gpu)
    return (d,) * count


def _catalog_match(detected_name: str) -> Device | None:
    """The catalog entry whose model number (and memory size, when it names one) the NVML name contains."""
    name = detected_name.lower()
    best: tuple[int, Device] | None = None
    for d in device_catalog():
        tokens = [t for t in d.name.lower().split() if any(c.isdigit() for c in t)]
        if tokens and tokens[0] in name:
            score = sum(t in name for t in tokens)
            if best is None or score > best[0]:
                best = (score, d)
    return best[1] if best else None
