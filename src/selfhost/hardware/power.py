"""GPU power drawn while something runs: NVML's board power for every NVIDIA GPU of this machine, sampled in a
thread (nvmlDeviceGetPowerUsage, milliwatts; NVIDIA's NVML API reference). Without NVML it records nothing."""

from __future__ import annotations

import statistics
import threading
import time
from types import TracebackType
from typing import Any

__all__ = ["PowerSampler"]


class PowerSampler:
    def __init__(self, interval_s: float = 0.1) -> None:
        self.interval_s = interval_s
        self.samples: list[float] = []  # watts, all GPUs together
        self._nvml: Any = None
        self._handles: list[Any] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started = self.finished = 0.0

    def __enter__(self) -> PowerSampler:
        try:
            import pynvml

            pynvml.nvmlInit()
        except Exception:  # no pynvml, no driver or no GPU: nothing to measure
            return self
        self._nvml = pynvml
        self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        if self._handles:
            self.started = time.perf_counter()
            self._thread = threading.Thread(target=self._run, daemon=True, name="selfhost-power")
            self._thread.start()
        return self

    def _read(self) -> None:
        self.samples.append(sum(self._nvml.nvmlDeviceGetPowerUsage(h) for h in self._handles) / 1000.0)

    def _run(self) -> None:
        self._read()
        while not self._stop.wait(self.interval_s):
            self._read()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.finished = time.perf_counter()
        if self._nvml is not None:
            self._nvml.nvmlShutdown()

    def to_dict(self) -> dict[str, Any] | None:
        if not self.samples:
            return None
        return {
            "mean_w": statistics.fmean(self.samples),
            "max_w": max(self.samples),
            "samples": len(self.samples),
            "gpus": len(self._handles),
            "duration_s": self.finished - self.started,
            "source": "NVML board power of this machine's GPUs, sampled every "
            f"{self.interval_s * 1000:.0f} ms during the run (meaningful when the server runs here)",
        }
