"""Plans on paper for GPUs that are not here: the layouts vLLM can run, memory per GPU, launch commands (Ray across
nodes), every number marked predicted."""

from __future__ import annotations

import json
from pathlib import Path

from selfhost.models.resolve import resolve_model
from selfhost.plan.predicted import layouts
from tests.cli.test_info_cli import _one_line_error, run


def test_llama_70b_on_two_h100s_lists_every_layout_predicted(tmp_path: Path) -> None:
    r = run("plan", "llama-3.1-70b", "--gpu", "H100", "--gpus", "2", "--out", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    card = json.loads(r.stdout)
    assert card["kind"] == "predicted" and card["every_number_predicted"] is True
    assert card["answer"].startswith("predicted:")
    got = {(x["quant"], x["tensor_parallel"], x["pipeline_parallel"]) for x in card["layouts"]}
    assert got == {(q, tp, pp) for q in ("BF16", "FP8") for tp, pp in ((1, 2), (2, 1))}
    spec = resolve_model("llama-3.1-70b")
    for x in card["layouts"]:
        assert x["predicted"] is True and "assumed" in x["basis"]
        bits = 16 if x["quant"] == "BF16" else 8
        # each GPU holds half the weights, whichever way they are split
        assert abs(x["per_gpu_bytes"]["weights"] - spec.parameters * bits / 8 / 2) < 2
        cmd = x["launch"]["commands"][0]
        assert cmd.startswith("vllm serve meta-llama/Llama-3.1-70B-Instruct")
        assert f"--tensor-parallel-size {x['tensor_parallel']}" in cmd
        assert f"--pipeline-parallel-size {x['pipeline_parallel']}" in cmd
        assert x["launch"]["nodes"] == 1 and "ray" not in cmd
    # BF16 weights (65.7 GiB per GPU) leave under 1 GiB of an 80 GB card's 90 % budget: no room for 8k tokens
    assert not any(x["fits"] for x in card["layouts"] if x["quant"] == "BF16")
    best = card["decision"]
    assert best["quant"] == "FP8" and best["tensor_parallel"] == 2  # widest TP among those that fit
    assert card["cost"]["predicted"] is True and card["cost"]["usd_per_hour"] > 0
    written = json.loads((tmp_path / "card.json").read_text())
    assert written["layouts"] == card["layouts"]
    html = (tmp_path / "card.html").read_text()
    assert "predicted" in html and "<svg" in html
    assert "src=" not in html and "<link" not in html  # self-contained: nothing to fetch (tests/plan/test_browser.py)


def test_past_one_node_pipeline_stages_span_nodes_on_ray(tmp_path: Path) -> None:
    r = run("plan", "llama-3.1-405b", "--gpu", "H100", "--gpus", "16", "--out", str(tmp_path), "--json")
    assert r.returncode == 0, r.stderr
    card = json.loads(r.stdout)
    assert all(x["tensor_parallel"] <= 8 for x in card["layouts"])  # TP stays inside a node
    two_nodes = [x for x in card["layouts"] if x["tensor_parallel"] == 8]
    assert two_nodes and all(x["pipeline_parallel"] == 2 and x["launch"]["nodes"] == 2 for x in two_nodes)
    cmds = two_nodes[0]["launch"]["commands"]
    assert "ray start --head --port 6379" in cmds and "ray start --address HEAD_IP:6379" in cmds
    assert cmds[-1].endswith("--distributed-executor-backend ray")


def test_layouts_follow_vllms_divisibility_rules() -> None:
    assert layouts(4, 64, 80) == [(1, 4), (2, 2), (4, 1)]
    assert layouts(6, 64, 80) == [(1, 6), (2, 3)]  # 3 and 6 do not divide 64 heads
    assert layouts(4, 64, 2) == [(2, 2), (4, 1)]  # at least one layer per pipeline stage


def test_a_predicted_card_cannot_be_verified_here(tmp_path: Path) -> None:
    assert run("plan", "llama-3.1-8b", "--gpu", "L4", "--out", str(tmp_path)).returncode == 0
    err = _one_line_error(run("plan", "verify", str(tmp_path / "card.json")))
    assert "predicted-only card" in err
    assert "unknown GPU" in _one_line_error(run("plan", "llama-3.1-8b", "--gpu", "H9000", "--out", str(tmp_path)))
