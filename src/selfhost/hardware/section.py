"""This machine as the check report shows it."""

from __future__ import annotations

from selfhost.hardware.detect import HostInfo
from selfhost.report.section import Section
from selfhost.units import fmt_bytes

__all__ = ["host_section"]


def host_section(host: HostInfo) -> Section:
    rows = [
        ("CPU", f"{host.cpu_model} ({host.physical_cores} cores, {host.logical_cores} threads)"),
        ("RAM", f"{fmt_bytes(host.ram_total_bytes)} total, {fmt_bytes(host.ram_available_bytes)} available"),
        ("OS / Python", f"{host.os} / {host.python}"),
        ("GPUs", ", ".join(f"{g.name} ({fmt_bytes(g.memory_total_bytes)})" for g in host.gpus) or "none detected"),
    ]
    return Section("host", "This machine", host.to_dict(), rows)
