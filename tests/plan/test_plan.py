"""`selfhost plan` end to end on this machine: llama-server started for each setting it measures, the embedded
model, a stated workload and SLO; then `plan verify` on the card it wrote."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest

from selfhost.plan.verify import workload_from_card
from selfhost.serve.engines import find_llama_server
from tests.browser import assert_readable, look_at
from tests.cli.test_info_cli import _one_line_error, run

# Loose enough that every level passes on a loaded 2-core machine: goodput is then the throughput at the highest
# concurrency tried, which is steady from run to run (what `plan verify` compares).
SLO = "ttft_p99=10,tpot_p99=2"


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path) -> tuple[dict[str, Any], Path, Path]:
    root = tmp_path_factory.mktemp("plan")
    model = root / "model.gguf"
    shutil.copy(smollm2_path, model)
    out = root / "card"
    args = ["--try-parallel", "1,2", "--try-threads", "2", "--max-measurements", "2", "--repeats", "2"]
    args += ["--max-concurrency", "2", "--requests-per-level", "4", "--price-per-hour", "0.1"]
    r = run("plan", str(model), "--slo", SLO, *args, "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), model, out


def test_the_card_answers_first_and_keeps_its_evidence(planned: tuple[dict[str, Any], Path, Path]) -> None:
    card, model, out = planned
    assert card["kind"] == "measured" and card["answer"].startswith(f"run {card['decision']['label']}:")
    s = card["search"]
    # 2 slots × 2 flash-attention × 2 KV types × 2 ubatch; a q8_0 V cache without flash attention is pruned unrun
    assert s["grid_size"] == 16 and s["pruned_without_measuring"] == 4
    assert all("flash attention" in why for why in s["pruned"].values())
    assert s["measured_settings"] == 2  # --max-measurements
    measured = {m["label"] for m in s["measured"]}
    assert card["decision"]["label"] in measured
    assert not measured & set(s["pruned"])
    d = card["decision"]
    g = d["goodput_requests_per_s"]
    assert len(g["runs"]) == 2 and g["low"] <= g["median"] <= g["high"] and g["low"] > 0
    assert d["launch_command"].startswith(f"llama-server -m {model} ")
    c = d["config"]
    assert f"-np {c['parallel']}" in d["launch_command"]
    assert (f"-ub {c['ubatch']}" in d["launch_command"]) == (c["ubatch"] != 512)  # llama-server's default unsaid
    assert f"-fa {'on' if c['flash_attn'] else 'off'}" in d["launch_command"] and "-lv" not in d["launch_command"]
    assert card["runner_up"] is not None and card["runner_up"]["label"] != d["label"]
    # memory: fit's prediction next to what llama-server logged for the same setting; the KV cache is exact
    checks = {x["component"]: x for x in card["memory"]["from_engine_log"]["checks"]}
    kv = next(v for k, v in checks.items() if "KV" in k)
    assert abs(kv["predicted_bytes"] - kv["actual_bytes"]) <= 0.005 * 2**20  # the log prints MiB with two decimals
    env = card["environment"]
    assert env["model_sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert env["engine_version"].startswith("version:")
    cost = card["cost"]
    out_tps = cost["output_tokens_per_s_at_slo"]
    assert cost["usd_per_million_output_tokens"] == pytest.approx(0.1 / (out_tps * 3600) * 1e6)
    assert card["quality"]["measured"] is False and "--quant-result" in card["quality"]["note"]
    assert json.loads((out / "card.json").read_text())["decision"] == d
    assert any((out / "runs").glob("*/requests-concurrency1.jsonl"))


def test_the_card_reads_in_a_browser(planned: tuple[dict[str, Any], Path, Path]) -> None:
    _, _, out = planned
    assert_readable(look_at(out / "card.html", "plan-card"), {"decision", "search", "memory", "quality", "cost"})


def test_verify_on_the_same_machine_reports_no_drift(planned: tuple[dict[str, Any], Path, Path]) -> None:
    _, _, out = planned
    r = run("plan", "verify", str(out / "card.json"), "--tolerance", "0.3", "--json")
    v = json.loads(r.stdout)
    assert r.returncode == 0, v
    assert v["drift"] is False and v["drifted"] == [] and v["answer"].startswith("no drift")
    lo, hi = v["accepted_range"]
    assert lo <= v["measured_goodput_requests_per_s"]["median"] <= hi


def _copy_card(out: Path, dest: Path, model: Path) -> Path:
    card = json.loads((out / "card.json").read_text())
    card["decision"]["model_file"] = str(model)
    card["environment"]["model_file"] = str(model)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "card.json").write_text(json.dumps(card))
    return dest / "card.json"


def test_verify_reports_drift_when_the_model_file_changed(
    planned: tuple[dict[str, Any], Path, Path], tmp_path: Path
) -> None:
    _, model, out = planned
    copy = tmp_path / "model.gguf"
    shutil.copy(model, copy)
    card = _copy_card(out, tmp_path / "card", copy)
    with copy.open("ab") as f:  # the file a card names is replaced by another build of it
        f.write(b"\0" * 32)
    r = run("plan", "verify", str(card), "--json")
    v = json.loads(r.stdout)
    assert r.returncode == 1 and v["drift"] is True
    assert [x["what"] for x in v["drifted"]] == ["model_sha256"] and "model file differs" in v["answer"]
    assert "measured_goodput_requests_per_s" not in v  # another file's numbers are not compared


def test_verify_reports_drift_when_the_engine_build_differs(
    planned: tuple[dict[str, Any], Path, Path], tmp_path: Path
) -> None:
    _, _, out = planned
    other = tmp_path / "llama-server"  # the same server under another build's version line
    other.write_text(
        f'#!/bin/sh\nif [ "$1" = --version ]; then echo "version: 9999 (build 2, commit abcdef0)"; exit 0; fi\n'
        f'exec {find_llama_server()} "$@"\n'
    )
    other.chmod(other.stat().st_mode | stat.S_IEXEC)
    r = run("plan", "verify", str(out / "card.json"), "--json", env=os.environ | {"SELFHOST_LLAMA_SERVER": str(other)})
    v = json.loads(r.stdout)
    assert r.returncode == 1 and [x["what"] for x in v["drifted"]] == ["engine_version"]
    assert v["drifted"][0]["now"] == "version: 9999 (build 2, commit abcdef0)"


def test_verify_reports_drift_when_goodput_moved(planned: tuple[dict[str, Any], Path, Path]) -> None:
    """The comparison alone (the measuring path is the no-drift test's): a card from a box ten times faster, and
    one that measured a third of today's goodput, both drift; a value inside the widened range does not."""
    from selfhost.plan.verify import _result

    card, _, _ = planned
    g = card["decision"]["goodput_requests_per_s"]

    def now(goodput: float) -> dict[str, Any]:
        return _result(card, [], [{"goodput_requests_per_s": goodput}], 0.2)

    slower, faster, same = now(g["low"] / 10), now(g["high"] * 3), now(g["median"] * 1.1)
    assert slower["drift"] and [x["what"] for x in slower["drifted"]] == ["goodput"] and "below" in slower["answer"]
    assert faster["drift"] and "above" in faster["answer"]
    assert not same["drift"] and same["accepted_range"] == [g["low"] * 0.8, g["high"] * 1.2]


def test_plan_usage_errors(tmp_path: Path) -> None:
    assert "needs an SLO" in _one_line_error(run("plan", "--out", str(tmp_path)))
    assert "--try-parallel '0'" in _one_line_error(run("plan", "--slo", SLO, "--try-parallel", "0"))
    bad = tmp_path / "card.json"
    bad.write_text('{"hello": 1}')
    assert "is not a `selfhost plan` card" in _one_line_error(run("plan", "verify", str(bad)))


def test_quant_verdicts_choose_which_variants_are_measured(tmp_path: Path, smollm2_path: Path) -> None:
    """A `quant --json` result joins the choice: the reference and non-inferior variants are candidates; variants
    decided worse, not needed (never tested) or whose file is gone are pruned, each with its reason."""
    from selfhost.models.resolve import resolve_model
    from selfhost.plan.run import _variants

    files = {n: tmp_path / f"{n}.gguf" for n in ("F16", "Q8_0", "Q6_K", "Q2_K")}
    for f in files.values():
        shutil.copy(smollm2_path, f)
    rows = [
        {"name": "F16", "path": str(files["F16"]), "decision": "reference"},
        {"name": "Q8_0", "path": str(files["Q8_0"]), "decision": "not needed"},
        {"name": "Q6_K", "path": str(files["Q6_K"]), "decision": "non-inferior"},
        {"name": "Q2_K", "path": str(files["Q2_K"]), "decision": "worse", "decision_reason": "KLD p99 5.8 > 1.0"},
        {"name": "Q4_K_M", "path": str(tmp_path / "gone.gguf"), "decision": "non-inferior"},
    ]
    q = tmp_path / "quant.json"
    q.write_text(json.dumps({"variants": rows}))
    variants, pruned = _variants(smollm2_path, resolve_model(str(smollm2_path)), q)
    assert list(variants) == ["Q4_1", "F16", "Q6_K"]  # the model's own file first
    why = {p["variant"]: p["reason"] for p in pruned}
    assert why["Q2_K"] == "quant decided it worse: KLD p99 5.8 > 1.0"
    assert why["Q8_0"].startswith("quant decided it not needed")
    assert "not here" in why["Q4_K_M"]
    q.write_text('{"rows": []}')
    with pytest.raises(Exception, match="not a `selfhost quant --json` result"):
        _variants(smollm2_path, resolve_model(str(smollm2_path)), q)


def test_a_trace_is_replayed_faster_until_the_slo_breaks(tmp_path: Path, smollm2_path: Path) -> None:
    """--trace: a measured setting replays every request of a Mooncake trace at 1×, 2×, 4× its recorded arrivals;
    goodput is taken at the fastest replay that met the SLO; the card keeps the trace and `plan verify` replays it."""
    trace = tmp_path / "trace.jsonl"
    rows = [{"timestamp": 600 * i, "input_length": 48, "output_length": 8, "hash_ids": [7]} for i in range(8)]
    trace.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "card"
    args = ["--trace", str(trace), "--slo", SLO, "--try-parallel", "2", "--try-threads", "2", "--max-speedup", "4"]
    args += ["--max-measurements", "1", "--repeats", "1", "--out", str(out), "--json"]
    r = run("plan", str(smollm2_path), *args)
    assert r.returncode == 0, r.stderr
    card = json.loads(r.stdout)
    w = card["workload"]
    assert (w["trace_file"], w["trace_requests"], w["trace_seconds"]) == (str(trace), 8, pytest.approx(4.2))
    m = card["measurements"][0]
    assert m["searched_by"] == "speedup" and [lv["speedup"] for lv in m["levels"]] == [1, 2, 4]
    assert all(lv["requests"] == 8 for lv in m["levels"])  # the whole trace at every speed
    for speedup in (1, 2, 4):  # the recorded arrivals, every gap divided by the speedup
        records = (out / "runs" / f"{m['label'].replace(' ', '_')}-0" / f"requests-speedup{speedup}.jsonl").read_text()
        sent_at = [json.loads(x)["scheduled_t"] for x in records.splitlines()]
        assert sent_at == pytest.approx([0.6 * i / speedup for i in range(8)]), speedup
    assert card["decision"]["best_level"] == 4 and "at 4× its recorded rate" in card["answer"]
    # `plan verify` measures the card's own workload again: the same trace, searched by replay speed
    again = workload_from_card(card)
    assert (again.trace_file, again.searched_by, again.longest_request_tokens) == (
        str(trace),
        "speedup",
        w["longest_request_tokens"],
    )
