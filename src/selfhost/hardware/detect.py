"""What this machine has: CPU, RAM, and (when nvidia-ml-py is installed and a driver answers) NVIDIA GPUs."""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass, field
from typing import Any

import psutil

__all__ = ["GPUInfo", "HostInfo", "detect_host", "gpu_power_watts"]


@dataclass(frozen=True)
class GPUInfo:
    index: int
    name: str
    memory_total_bytes: int
    memory_free_bytes: int


@dataclass(frozen=True)
class HostInfo:
    cpu_model: str
    physical_cores: int | None
    logical_cores: int | None
    ram_total_bytes: int
    ram_available_bytes: int
    os: str
    python: str
    gpus: list[GPUInfo] = field(default_factory=list)
    cpu_features: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def nvml_status() -> str | None:
    """None when NVML answers; otherwise why no NVIDIA GPU can be seen, in one line."""
    try:
        import pynvml
    except ImportError:
        return "nvidia-ml-py is not installed (pip install nvidia-ml-py)"
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # NVMLError subclasses vary by version
        return f"no NVIDIA driver or GPU answered NVML ({exc})"
    pynvml.nvmlShutdown()
    return None


def _nvidia_gpus() -> list[GPUInfo]:
    try:
        import pynvml  # from nvidia-ml-py
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver or no GPU: NVMLError subclasses vary by version
        return []
    try:
        out = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            name = pynvml.nvmlDeviceGetName(h)
            out.append(GPUInfo(i, name.decode() if isinstance(name, bytes) else name, int(mem.total), int(mem.free)))
        return out
    finally:
        pynvml.nvmlShutdown()


def gpu_power_watts() -> float | None:
    """Total power draw of this machine's NVIDIA GPUs right now (NVML), or None without NVML."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver or no GPU
        return None
    try:
        return (
            sum(
                pynvml.nvmlDeviceGetPowerUsage(pynvml.nvmlDeviceGetHandleByIndex(i))
                for i in range(pynvml.nvmlDeviceGetCount())
            )
            / 1000.0
        )
    finally:
        pynvml.nvmlShutdown()


def _llama_cpu_features() -> str | None:
    try:
        import llama_cpp

        return llama_cpp.llama_print_system_info().decode("utf-8", errors="replace").strip()
    except Exception:  # informational only
        return None


def detect_host() -> HostInfo:
    vm = psutil.virtual_memory()
    return HostInfo(
        cpu_model=_cpu_model(),
        physical_cores=psutil.cpu_count(logical=False),
        logical_cores=psutil.cpu_count(logical=True),
        ram_total_bytes=int(vm.total),
        ram_available_bytes=int(vm.available),
        os=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        gpus=_nvidia_gpus(),
        cpu_features=_llama_cpu_features(),
    )
