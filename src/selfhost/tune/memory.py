"""Peak memory of a training run, measured while it runs: the CUDA caching allocator's own peak on a GPU (what
`nvidia-smi` shows, less the CUDA context), the process's resident memory sampled every 5 ms on a CPU."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

__all__ = ["PeakMemory", "rss_bytes"]


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc; 0 where it is not available)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class PeakMemory:
    def __init__(self, torch: Any, interval_s: float = 0.005) -> None:
        self.torch = torch
        self.cuda = bool(torch.cuda.is_available())
        self.interval_s = interval_s
        self.before = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakMemory:
        if self.cuda:
            self.torch.cuda.reset_peak_memory_stats()
            self.before = int(self.torch.cuda.memory_reserved())
        else:
            self.before = self.peak = rss_bytes()
            self._thread = threading.Thread(target=self._sample, daemon=True, name="selfhost-peak-rss")
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.cuda:
            self.peak = int(self.torch.cuda.max_memory_reserved())
        else:
            self._stop.set()
            if self._thread is not None:
                self._thread.join()
            self.peak = max(self.peak, rss_bytes())

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": "cuda" if self.cuda else "cpu",
            "before_train_bytes": self.before,
            "peak_bytes": self.peak,
            "source": "torch.cuda.max_memory_reserved()" if self.cuda else "process RSS sampled every 5 ms",
        }
