"""GPU power sampled during a bench, and `cost` pricing electricity with it. NVML is faked (tests/hardware/
fake_pynvml.py): there is no NVIDIA GPU here."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from selfhost.bench.load import LoadSpec
from selfhost.bench.run import BenchConfig, run_bench
from selfhost.hardware.power import PowerSampler
from tests.cli.test_info_cli import run
from tests.hardware import fake_pynvml


@pytest.fixture
def nvml(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml)
    yield


def test_sampler_reads_every_gpu_until_stopped(nvml: None) -> None:
    with PowerSampler(interval_s=0.02) as p:
        time.sleep(0.2)
    d = p.to_dict()
    assert d is not None and d["mean_w"] == d["max_w"] == 550.0 and d["gpus"] == 2
    assert 5 <= d["samples"] <= 12 and d["duration_s"] == pytest.approx(0.2, abs=0.05)
    assert fake_pynvml.calls["shutdown"] == fake_pynvml.calls["init"]


def test_no_nvml_no_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails, as on a machine without NVIDIA's bindings
    with PowerSampler() as p:
        pass
    assert p.to_dict() is None


def test_cost_prices_the_power_measured_during_the_bench(
    nvml: None, mock_server: Callable[..., str], tmp_path: Path
) -> None:
    url = mock_server("--ttft", "0.01", "--itl", "0.005")
    s = run_bench(
        BenchConfig(url=url, load=LoadSpec(concurrency=4, requests=40), output_tokens=8, records_path=tmp_path / "r")
    )
    assert s["gpu_power"]["mean_w"] == 550.0 and s["gpu_power"]["samples"] >= 1
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps(s))
    # `cost` runs in its own process, where no NVML answers: the watts come from the bench file.
    r = run("cost", "--bench", str(bench), "--gpu", "RTX 4090", "--owned", "--json")
    assert r.returncode == 0, r.stderr
    c = json.loads(r.stdout)
    assert c["hardware"]["watts"] == 550.0
    assert any("NVML samples during the bench" in x for x in c["sources"])
