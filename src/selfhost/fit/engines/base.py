"""The engine protocol `fit` plans for, and the registry of engines by name.

An engine knows its own memory rules (`plan`), what it refuses (`validate`), which quantizations it serves, how
far its context can grow, the command that launches it, and whether GPUs split its layers (taking turns) or its
tensors (reading at once). Everything else in fit (the table, the recommendation, speed bounds, the CLI's
choices) goes through the registry, so a new engine is one module in this folder plus its tests."""

from __future__ import annotations

import importlib
from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar

from selfhost.errors import UsageError

if TYPE_CHECKING:
    from selfhost.fit.plan import FitPlan, FitRequest
    from selfhost.hardware.catalog import Device
    from selfhost.models.spec import ModelSpec

__all__ = ["Engine", "ENGINE_MODULES", "register", "get_engine", "engine_names", "MIB", "GIB"]

MIB = 1024**2
GIB = 1024**3


class Engine:
    name: ClassVar[str]
    tensor_parallel: ClassVar[bool] = False  # True: GPUs hold shards of every layer and read at the same time

    def validate(self, spec: ModelSpec, req: FitRequest) -> None:
        """Raise UsageError for settings this engine refuses (beyond fit's common checks)."""

    def plan(self, spec: ModelSpec, req: FitRequest) -> FitPlan:
        raise NotImplementedError

    def candidate_quants(self, spec: ModelSpec) -> list[str]:
        raise NotImplementedError

    def full_offload(self, spec: ModelSpec, req: FitRequest) -> FitRequest:
        """The request with everything on the GPUs (what the fit table and max context assume)."""
        return req

    def default_context(self, spec: ModelSpec, gpus: tuple[Device, ...]) -> int:
        """The context the engine serves when none is asked for."""
        return min(8192, spec.context_length or 8192)

    def max_context(self, spec: ModelSpec, req: FitRequest, quant: str) -> int:
        """Largest context (a multiple of 256, up to the model's limit) that fits entirely on the devices; memory
        grows monotonically with context, so a binary search over plans."""
        from selfhost.fit.plan import CTX_STEP

        limit = spec.context_length or 131072
        base = self.full_offload(spec, replace(req, quant=quant))
        lo, hi = 0, limit // CTX_STEP
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._fits(spec, replace(base, n_ctx=mid * CTX_STEP)):
                lo = mid
            else:
                hi = mid - 1
        return lo * CTX_STEP

    def _fits(self, spec: ModelSpec, req: FitRequest) -> bool:
        from selfhost.fit.plan import plan

        try:
            return plan(spec, req).fits
        except UsageError:
            return False

    def launch_argv(
        self, spec: ModelSpec, p: FitPlan, req: FitRequest, host: str = "127.0.0.1", port: int = 8080
    ) -> list[str]:
        """The engine's own command line for this plan: what `fit` prints and what `selfhost serve` runs."""
        raise NotImplementedError(f"{self.name}: selfhost does not start this engine")

    def launch_command(self, spec: ModelSpec, p: FitPlan, req: FitRequest) -> str:
        raise NotImplementedError


# The registration: engine name -> the module that defines it (imported when the engine is first used, so the
# CLI lists the engines without loading them). A module calls register() for its engine on import.
ENGINE_MODULES: dict[str, str] = {
    "llama.cpp": "selfhost.fit.engines.llamacpp",
    "ollama": "selfhost.fit.engines.ollama",
    "vllm": "selfhost.fit.engines.vllm",
}
_REGISTRY: dict[str, Engine] = {}


def register(engine: Engine) -> Engine:
    _REGISTRY[engine.name] = engine
    return engine


def engine_names() -> tuple[str, ...]:
    return tuple(ENGINE_MODULES)


def get_engine(name: str) -> Engine:
    if name not in ENGINE_MODULES:
        raise UsageError(f"unknown engine {name!r}", f"valid engines: {', '.join(ENGINE_MODULES)}")
    if name not in _REGISTRY:
        importlib.import_module(ENGINE_MODULES[name])
    return _REGISTRY[name]
