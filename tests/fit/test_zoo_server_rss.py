"""fit's host-RAM plan for llama-server against the resident memory of a real llama-server process, on every zoo
architecture at the small width, both flash-attention settings.

The prediction is for the process with one slot's context full and logits for one token per slot (llama-server's
output rule): llama.cpp's buffers, the CPU work buffer (fit.cpu_work, read from ggml's source) and the process term
(fit.server_process), whose two constants were fitted on the embedded models only, so every architecture here is held
out. Sliding-window models add the context checkpoints llama-server copies to host RAM (read from its source). The
server is started by `selfhost serve` with fit's command line, gets one prompt that fills its slot, and its peak
resident memory (VmHWM) is compared with the plan's total."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from selfhost.errors import BackendError
from selfhost.fit import zoo
from selfhost.fit.run import FitOptions
from selfhost.serve import run as serve
from selfhost.serve.engines import find_llama_server

CTX = 1024
ARCHS = [a.name for a in zoo.architectures()]


def _post(url: str, payload: dict) -> dict:  # type: ignore[type-arg]
    req = urllib.request.Request(url, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for {pid}")


@pytest.mark.parametrize("flash_attn", [True, False], ids=["fa-on", "fa-off"])
@pytest.mark.parametrize("name", ARCHS)
def test_llama_server_peak_rss_is_the_plan(
    zoo_small: dict[str, object], tmp_path: Path, name: str, flash_attn: bool
) -> None:
    find_llama_server()
    model = zoo_small[name]
    if isinstance(model, BackendError):
        pytest.fail(str(model))
    assert isinstance(model, zoo.ZooModel)
    options = serve.ServeOptions(engine="llama-server", port=0, log_path=tmp_path / "llama-server.log")
    launch = serve.prepare(str(model.path), FitOptions(ctx=CTX, parallel=1, flash_attn=flash_attn), options)
    proc = serve.start(launch, 120)
    try:
        assert proc.proc is not None
        token = _post(proc.url + "/tokenize", {"content": "hello"})["tokens"][-1]
        _post(proc.url + "/completion", {"prompt": [token] * (CTX - 8), "n_predict": 4, "cache_prompt": False})
        peak = _peak_rss(proc.proc.pid)
    finally:
        proc.stop()
    host = launch.plan.per_device[0].components
    assert host["llama_server_process"] > 0 and (host["cpu_work"] > 0)
    # a sliding-window or recurrent model's server copies the state it cannot roll back to host RAM
    assert ("context_checkpoints" in host) == (any(launch.spec.swa_layers) or launch.spec.recurrent is not None)
    predicted = launch.plan.total_bytes
    assert abs(predicted - peak) <= 0.10 * peak, (name, flash_attn, predicted / 2**20, peak / 2**20, host)
