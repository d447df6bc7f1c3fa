"""`selfhost fit` through the real command: the JSON contract and clear errors."""

from __future__ import annotations

import json

from tests.cli.test_info_cli import _one_line_error, run
from tests.fit.test_plan import FIT_CONTRACT


def test_fit_json_contract_embedded_with_verify() -> None:
    r = run("fit", "--ctx", "2048", "--parallel", "2", "--kv-type", "q8_0", "--verify", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    for key in FIT_CONTRACT:
        assert key in d
    assert d["weights_exact"] and d["kv_cache_bytes"] == 2 * 2048 * 30 * 2 * (192 // 32 * 34)
    checks = {c["component"]: c for c in d["verify"]["checks"]}
    assert abs(checks["KV cache"]["actual_bytes"] - d["kv_cache_bytes"]) <= 0.005 * 1024**2  # printed precision
    assert "-c 4096 -np 2" in d["launch"]["llama.cpp"]


def test_fit_catalog_on_named_gpus() -> None:
    d = json.loads(
        run(
            "fit", "llama-3.1-70b", "--gpu", "rtx 3090", "--gpus", "2", "--quant", "Q4_K_M", "--ctx", "8192", "--json"
        ).stdout
    )
    assert len([x for x in d["per_device"] if "RTX 3090" in x["name"]]) == 2
    assert d["max_context"]["Q4_K_M"] > 0 and d["launch"]["llama.cpp"].startswith("llama-server")


def test_fit_errors() -> None:
    assert "unknown GPU 'rtx 4900'" in _one_line_error(run("fit", "llama-3.1-8b", "--gpu", "rtx 4900"))
    assert "above llama-3.1-8b's limit" in _one_line_error(run("fit", "llama-3.1-8b", "--ctx", "1000000"))
    assert "'--parallel': '0' is out of range: must be ≥ 1" in _one_line_error(run("fit", "--parallel", "0"))
