"""Named hardware for planning: memory, bandwidth and peak FLOPs, each with its source."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from selfhost.errors import UsageError

__all__ = ["Device", "device_catalog", "find_device"]


@dataclass(frozen=True)
class Device:
    name: str
    kind: str  # "gpu", "unified" (Apple), "cpu"
    memory_bytes: int
    bandwidth_bytes_per_s: float | None
    fp16_flops: float | None
    source: str  # URL, or "measured on this machine"
    board_power_w: float | None = None
    note: str | None = None
    free_bytes: int | None = None  # when detected: memory free right now

    @property
    def usable_bytes(self) -> int:
        return self.free_bytes if self.free_bytes is not None else self.memory_bytes


@lru_cache(maxsize=1)
def device_catalog() -> tuple[Device, ...]:
    raw = json.loads(resources.files("selfhost.hardware").joinpath("data/gpus.json").read_text(encoding="utf-8"))
    return tuple(
        Device(
            d["name"],
            d["kind"],
            int(d["memory_bytes"]),
            d["bandwidth_gb_s"] * 1e9,
            d["fp16_tflops"] * 1e12,
            d["source_url"],
            d.get("board_power_w"),
            d.get("note"),
        )
        for d in raw["devices"]
    )


def _key(s: str) -> str:
    return s.lower().replace(" ", "").replace("-", "").replace("_", "").replace("nvidia", "").replace("geforce", "")


def find_device(name: str) -> Device:
    raw = json.loads(resources.files("selfhost.hardware").joinpath("data/gpus.json").read_text(encoding="utf-8"))
    index: dict[str, str] = {}
    for d in raw["devices"]:
        for k in (d["name"], *d["aliases"]):
            index.setdefault(_key(k), d["name"])
    by_name = {d.name: d for d in device_catalog()}
    key = _key(name)
    if key in index:
        return by_name[index[key]]
    close = difflib.get_close_matches(key, list(index), n=3, cutoff=0.5)
    names = sorted({index[c] for c in close})
    raise UsageError(
        f"unknown GPU {name!r}",
        (f"did you mean {', '.join(names)}? " if names else "")
        + "known: "
        + ", ".join(d.name for d in device_catalog()),
    )
