"""fit with a vision projector (--mmproj) on the zoo's two vision builds (small width): llama-server started by
`selfhost serve` with fit's command line loads the projector; its logged weights must equal fit's (exact), its compute
buffer be within the measured error of fit's estimate (fitted on SmolVLM's small projector: Gemma 3's is held out),
and the process's peak resident memory within 10 % of the plan."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from selfhost.errors import BackendError, UsageError
from selfhost.fit import zoo
from selfhost.fit.projector import projector_plan
from selfhost.fit.run import FitOptions
from selfhost.serve import run as serve
from selfhost.serve.engines import find_llama_server

VISION = [a.name for a in zoo.architectures() if a.is_vision]
LOG_RESOLUTION = 0.01 * 2**20


def _post(url: str, payload: dict) -> dict:  # type: ignore[type-arg]
    req = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", VISION)
def test_projector_is_planned_and_loaded(zoo_small: dict[str, object], tmp_path: Path, name: str) -> None:
    find_llama_server()
    model = zoo_small[name]
    if isinstance(model, BackendError):
        pytest.fail(str(model))
    assert isinstance(model, zoo.ZooModel) and model.mmproj is not None
    options = serve.ServeOptions(engine="llama-server", port=0, log_path=tmp_path / "llama-server.log")
    launch = serve.prepare(str(model.path), FitOptions(ctx=1024, mmproj=model.mmproj), options)
    assert launch.argv[launch.argv.index("--mmproj") + 1] == str(model.mmproj)
    proc = serve.start(launch, 120)
    try:
        assert proc.proc is not None
        token = _post(proc.url + "/tokenize", {"content": "hello"})["tokens"][-1]
        _post(proc.url + "/completion", {"prompt": [token] * 1016, "n_predict": 4, "cache_prompt": False})
        status = Path(f"/proc/{proc.proc.pid}/status").read_text().splitlines()
        peak = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
        report = serve.started_report(launch, proc.url)
    finally:
        proc.stop()
    checks = {c["component"]: c for c in report["from_log"]["checks"]}
    weights, compute = checks["projector weights"], checks["projector compute"]
    assert abs(weights["predicted_bytes"] - weights["actual_bytes"]) <= LOG_RESOLUTION, weights
    assert abs(compute["error"]) <= 0.12, compute  # Gemma 3's projector: +10 % at this width (RESULTS.md)
    host = launch.plan.per_device[0].components
    assert host["projector_weights"] == weights["predicted_bytes"]
    overhead = ("output", "tokenizer_vocab", "cpu_work", "llama_server_process", "context_checkpoints")
    overhead += ("projector_weights", "projector_compute")  # the summary's overhead row holds the projector too
    assert launch.plan.overhead_bytes == sum(host.get(k, 0) for k in overhead)
    assert abs(launch.plan.total_bytes - peak) <= 0.10 * peak, (launch.plan.total_bytes / 2**20, peak / 2**20)


def test_a_file_that_is_not_a_projector_is_refused(zoo_small: dict[str, object]) -> None:
    model = zoo_small["llama-1b"]
    assert isinstance(model, zoo.ZooModel)
    with pytest.raises(UsageError, match="not a vision projector"):
        projector_plan(model.path)


def test_a_file_that_is_not_a_gguf_is_refused_as_a_projector(tmp_path: Path) -> None:
    text = tmp_path / "notes.gguf"
    text.write_text("not a model")
    with pytest.raises(UsageError, match="--mmproj") as e:
        projector_plan(text)
    assert "mmproj" in (e.value.next_step or "")
    assert text.read_text() == "not a model"  # the input is left as it was
