"""The quant pipeline on the embedded model: real variants, real generations, real logits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfhost.errors import ModelNotFoundError, UsageError
from selfhost.evals.suite import Case, default_suite
from selfhost.quant.kld import default_text
from selfhost.quant.run import QuantConfig, run_order, run_quant
from selfhost.quant.variants import Variant, make_variants
from tests.cli.test_info_cli import _one_line_error, run


@pytest.fixture(scope="module")
def variants(smollm2_path: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Variant]:
    return make_variants(smollm2_path, tmp_path_factory.mktemp("variants"), ["Q8_0", "Q4_K_M", "Q2_K"], "Q4_1")


def test_degradation_grows_as_bits_shrink(variants: list[Variant], tmp_path: Path) -> None:
    cases = default_suite()[::8]  # 8 cases across categories keep the test short
    r = run_quant(QuantConfig(variants, cases, default_text(), tmp_path / "items.jsonl"))
    by = {v["name"]: v for v in r["variants"]}
    assert by["F16"]["kld_mean"] == 0.0 and by["F16"]["top1_agreement"] == 1.0
    assert by["Q8_0"]["kld_mean"] < by["Q4_K_M"]["kld_mean"] < by["Q2_K"]["kld_mean"]
    assert by["Q8_0"]["top1_agreement"] > by["Q2_K"]["top1_agreement"]
    assert by["Q2_K"]["file_bytes"] < by["Q8_0"]["file_bytes"] < by["F16"]["file_bytes"]
    assert r["recommended"] in by and by[r["recommended"]]["passes_gates"]
    assert "dequantized from the shipped Q4_1" in r["reference"]["note"]
    assert all(v["tokens_per_s"] > 0 for v in r["variants"] if v["cases_run"])
    # 8 cases cannot decide a variant; one whose KLD tail already fails the gate is decided without any
    for v in r["variants"][1:]:
        pruned = v["kld_p99"] > 1.0
        assert (v["decision"], v["cases_run"]) == (("worse", 0) if pruned else ("undecided", 8)), v["name"]
    # memory from fit's plan: weights + KV + buffers, so above the file's weights and ordered like them
    assert by["Q2_K"]["memory_bytes"] < by["F16"]["memory_bytes"]
    assert all(v["memory_bytes"] > v["file_bytes"] * 0.9 for v in r["variants"])
    # what the terminal shows: the recommendation first, then one row per variant with its gate verdict
    from selfhost.quant.section import quant_table_section

    shown = quant_table_section(r, "smollm2", len(cases))
    assert shown.answer is not None and r["recommended"] in shown.answer and shown.table is not None
    head, rows = shown.table
    assert [row[0] for row in rows] == list(by) and [row[-1] for row in rows] == [v["decision"] for v in by.values()]
    assert len(head) == len(rows[0])


def test_interrupted_run_resumes_without_redoing(variants: list[Variant], tmp_path: Path) -> None:
    cases = default_suite()[:3]
    cfg = QuantConfig(variants[:2], cases, default_text()[:400], tmp_path / "items.jsonl")
    seen: list[str] = []

    def stop_after_two(what: str, n: int, total: int) -> None:
        seen.append(what)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_quant(cfg, stop_after_two)
    # the reference and the variant run side by side: the other engine's item in flight is finished and kept too
    kept = len((tmp_path / "items.jsonl").read_text().splitlines())
    assert 2 <= kept <= 3
    redone: list[str] = []
    result = run_quant(cfg, lambda what, n, total: redone.append(what))
    lines = [json.loads(x) for x in (tmp_path / "items.jsonl").read_text().splitlines()]
    assert len(redone) == 6 - kept and len(lines) == 6  # only the missing items ran
    assert len({(x["variant"], x["case"]) for x in lines}) == 6
    assert result["cases"] == 3


def test_unreachable_variant_and_bad_schema(variants: list[Variant], tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="no such file"):
        run_quant(
            QuantConfig(
                [variants[0], Variant("X", tmp_path / "nope.gguf")], default_suite()[:1], "text", tmp_path / "a.jsonl"
            )
        )
    bad = Case("s", [{"role": "user", "content": "x"}], [{"type": "json_schema", "schema": {"type": "strng"}}])
    with pytest.raises(UsageError, match="not valid JSON Schema"):
        run_quant(QuantConfig(variants[:1], [bad], "text", tmp_path / "b.jsonl"))


def test_cli_errors(tmp_path: Path) -> None:
    assert "unknown variant 'Q9_X'" in _one_line_error(run("quant", "--variants", "Q9_X"))
    f = tmp_path / "s.jsonl"
    f.write_text("{oops\n")
    assert f"{f}:1: not valid JSON" in _one_line_error(run("quant", "--suite", str(f), "--out", str(tmp_path)))


def test_endpoint_variant_answers_like_the_same_file_run_here(smollm2_path: Path, tmp_path: Path) -> None:
    """The shipped model in-process and the same file behind llama-cpp-python's OpenAI-compatible server: greedy
    answers agree, so the pass rates do; the endpoint has no logits, size or memory to report."""
    from selfhost.backends.server import LlamaCppServer
    from selfhost.quant.variants import parse_endpoint

    cases = default_suite()[::8]
    with LlamaCppServer(smollm2_path, n_ctx=2048) as server:
        url, model = parse_endpoint(f"{server.url}/v1#{server.model_alias}")
        served = Variant("served", None, "llama-cpp-python server", url=url, model=model)
        r = run_quant(QuantConfig([Variant("here", smollm2_path), served], cases, default_text(), tmp_path / "i.jsonl"))
    here, there = r["variants"]
    assert there["pass_rate"] == here["pass_rate"] and there["url"] == url
    assert there["kld_mean"] is None and there["gates"]["kld_p99"] is None and there["file_bytes"] is None
    assert there["tokens_per_s"] > 0 and there["decision"] == "undecided"  # too few cases to decide
    outputs = [json.loads(x) for x in (tmp_path / "i.jsonl").read_text().splitlines()]
    by_case: dict[str, set[str]] = {}
    for o in outputs:
        by_case.setdefault(o["case"], set()).add(o["output"].strip())
    assert sum(len(v) == 1 for v in by_case.values()) >= len(cases) - 1  # the same greedy answer, case by case


def test_endpoint_that_dies_mid_run_loses_nothing(smollm2_path: Path, tmp_path: Path) -> None:
    from selfhost.backends.server import LlamaCppServer
    from selfhost.errors import BackendError

    cases = default_suite()[:4]
    records = tmp_path / "i.jsonl"
    server = LlamaCppServer(smollm2_path, n_ctx=2048).start()

    served_items: list[str] = []

    def kill_after_two(what: str, n: int, total: int) -> None:
        if what.startswith("served"):  # the reference runs alongside, in its own thread
            served_items.append(what)
            if len(served_items) == 2:
                server.stop()

    served = Variant("served", None, url=server.url, model=server.model_alias)
    cfg = QuantConfig([Variant("here", smollm2_path), served], cases, default_text()[:400], records)
    try:
        with pytest.raises(BackendError, match="variant served .* failed on case"):
            run_quant(cfg, kill_after_two)
    finally:
        server.stop()
    kept = [json.loads(x) for x in records.read_text().splitlines()]
    assert sum(x["variant"] == "served" for x in kept) == 2
    here_kept = sum(x["variant"] == "here" for x in kept)
    with LlamaCppServer(smollm2_path, n_ctx=2048) as again:  # a new port: the run is keyed by the served model's name
        cfg.variants[1] = Variant("served", None, url=again.url, model=again.model_alias)
        redone: list[str] = []
        r = run_quant(cfg, lambda what, n, total: redone.append(what))
        with pytest.raises(BackendError, match="does not serve 'nope'"):
            run_quant(QuantConfig([Variant("x", None, url=again.url, model="nope")], cases, "t", tmp_path / "b.jsonl"))
    assert [x for x in redone if x.startswith("served")] == [f"served: {c.id}" for c in run_order(cases)[2:]]
    assert len(redone) == 2 + 4 - here_kept and r["cases"] == 4
    with pytest.raises(BackendError, match="variant gone: cannot connect"):
        run_quant(QuantConfig([Variant("gone", None, url=again.url, model="x")], cases, "t", tmp_path / "c.jsonl"))


def test_ctrl_c_on_the_command_keeps_every_finished_item(tmp_path: Path) -> None:
    """A real SIGINT while the reference and a variant generate side by side (two threads): exit 130, one JSON
    object, every record a complete line, and a rerun over the answered cases generates nothing."""
    import sys

    from tests.helpers import has_lines, interrupt_when

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "selfhost", "quant", "--variants", "Q8_0", "--out", str(out), "--json"]
    items = out / "items.jsonl"
    p = interrupt_when(cmd, has_lines(items, 4), within_s=120, finish_s=60)
    stdout, stderr = p.stdout, p.stderr
    assert p.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert json.loads(stdout)["interrupted"] is True, stdout
    lines = [json.loads(x) for x in items.read_text().splitlines()]  # each one a complete record
    answered = {v: sum(x["variant"] == v for x in lines) for v in ("F16", "Q8_0")}
    assert len({(x["variant"], x["case"]) for x in lines}) == len(lines) >= 4 and min(answered.values()) >= 1
    both = str(min(answered.values()))
    r = run("quant", "--variants", "Q8_0", "--out", str(out), "--max-cases", both, "--json")
    assert r.returncode == 0, r.stderr
    assert len(items.read_text().splitlines()) == len(lines)  # every answer reused, none generated again
