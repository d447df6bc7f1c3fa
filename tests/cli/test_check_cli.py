"""`selfhost check` on the embedded model: the main job, end to end, through the real command."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.helpers import interrupt_when


@pytest.fixture(scope="module")
def check_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    d = tmp_path_factory.mktemp("check")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "selfhost",
            "check",
            "--json",
            "-o",
            str(d / "report.html"),
            "--json-output",
            str(d / "report.json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return r, d


def test_check_writes_both_reports(check_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    r, d = check_run
    assert r.returncode == 0, r.stderr
    printed = json.loads(r.stdout)
    on_disk = json.loads((d / "report.json").read_text())
    assert printed["sections"] == on_disk["sections"]
    assert list(on_disk["sections"]) == [
        "verdict",
        "model",
        "host",
        "load",
        "generation",
        "bench",
        "cost",
        "template",
        "context",
        "fit",
    ]


def test_the_report_opens_with_the_verdict(check_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    """Answer first: where it fits, the fastest measured setting, the quantization verdict, the problems found —
    each line taken from (and naming) the section below that holds its evidence."""
    _, d = check_run
    s = json.loads((d / "report.json").read_text())["sections"]
    lines = {x["what"]: x["line"] for x in s["verdict"]["lines"]}
    fit = s["fit"]["plan"]
    assert lines["fits"].startswith("fits on ") and f"{fit['recommended']['n_ctx']:,} tokens" in lines["fits"]
    best = max(r["output_tokens_per_s"] for r in s["bench"]["runs"])
    assert lines["fastest measured"].startswith(f"{best:.1f} output tokens/s") and lines["fastest measured"].endswith(
        "(bench)"
    )
    assert lines["quantization"].startswith("not compared")  # check runs quant only with --quant
    assert lines["problems"].startswith("none found")  # the embedded model's template and server are right
    assert s["verdict"]["answer"] == lines["fits"]
    html = (d / "report.html").read_text()
    assert html.index("id='verdict'") < html.index("id='model'")


def test_the_report_reads_in_a_browser(check_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    from tests.browser import assert_readable, look_at

    _, d = check_run
    sections = set(json.loads((d / "report.json").read_text())["sections"])
    assert_readable(look_at(d / "report.html", "check-report"), sections)


def test_check_numbers_are_measured(check_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, d = check_run
    s = json.loads((d / "report.json").read_text())["sections"]
    assert s["model"]["n_layers"] == 30
    load = s["load"]
    assert load["load_s"] > 0
    assert load["llama_cpp_reported"]["kv_cache_bytes"] == 90 * 1024 * 1024  # n_ctx 4096, f16
    gen = s["generation"]
    assert gen["runs"] == 3 and gen["completion_tokens_total"] > 3
    for run in gen["per_run"]:
        assert run["output"].strip()
        assert run["completion_tokens"] == len(run["token_times_s"])
        assert 0 < run["ttft_s"] <= run["token_times_s"][0] + 1e-9
        assert run["token_times_s"][-1] <= run["e2e_s"]
    assert gen["decode_tokens_per_s_median"] > 1


def test_html_is_self_contained_with_plots(check_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, d = check_run
    html = (d / "report.html").read_text()
    assert not re.search(r"<(script|link|img|iframe)\b[^>]*(src|href)=", html)
    svgs = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    assert len(svgs) >= 3
    for svg in svgs:
        ElementTree.fromstring(svg)  # well-formed
    assert "Tokens generated over time" in html and "Paris" in html


def test_check_fit_section_is_checked_against_llama_cpp(
    check_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, d = check_run
    fit = json.loads((d / "report.json").read_text())["sections"]["fit"]
    checks = {c["component"]: c for c in fit["verify"]["checks"]}
    assert checks["KV cache"]["predicted_bytes"] == checks["KV cache"]["actual_bytes"] == 90 * 1024**2
    assert abs(checks["process memory"]["error"]) < 0.10
    curve = fit["context_curve"]
    assert [c["n_ctx"] for c in curve] == [512, 1024, 2048, 4096, 8192]
    # linear KV: llama.cpp's reported KV per token is the same over the whole curve, and equals the formula
    assert fit["kv_bytes_per_token_measured"] == fit["kv_bytes_per_token_predicted"] == 30 * 2 * 3 * 64 * 2
    assert fit["plan"]["fits"] and fit["host_bandwidth_bytes_per_s"] > 0
    assert 0 < fit["measured_decode_fraction_of_bound"] < 1.5


def test_ctrl_c_keeps_finished_sections(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    cmd = [sys.executable, "-m", "selfhost", "check", "-o", str(tmp_path / "r.html"), "--json-output", str(out)]
    # interrupted once the first sections are on disk
    proc = interrupt_when(cmd, lambda: out.exists() and "load" in json.loads(out.read_text())["sections"])
    err = proc.stderr
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    report = json.loads(out.read_text())
    assert report["meta"]["interrupted"].startswith("during: ")
    assert {"model", "host", "load"} <= set(report["sections"])
    assert (tmp_path / "r.html").read_text().count("<section") == len(report["sections"])


def test_check_bench_section_is_a_real_http_run(check_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, d = check_run
    runs = json.loads((d / "report.json").read_text())["sections"]["bench"]["runs"]
    assert [r["load"]["concurrency"] for r in runs] == [1, 2, 4]
    for r in runs:
        assert r["requests"]["completed"] == 6 and r["requests"]["failed"] == 0
        assert r["target"].startswith("http://127.0.0.1:")
        assert Path(r["records_path"]).is_file() and r["records_path"].startswith(str(d))
    # one request at a time on this server: waiting grows with concurrency
    assert runs[2]["ttft_s"]["p50"] > runs[0]["ttft_s"]["p50"]


def test_check_template_and_context_sections(check_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, d = check_run
    s = json.loads((d / "report.json").read_text())["sections"]
    assert s["template"]["lint"]["family"] == "chatml" and s["template"]["verify"]["agree"] is True
    ctx = s["context"]
    assert sum(ctx["budget"]["parts"].values()) == ctx["budget"]["prompt_tokens"]
    assert ctx["packed"]["prompt_tokens"] <= ctx["packed"]["limit"]
    assert ctx["probe"]["effective_context"] == 2047 and not ctx["probe"]["silent_truncation"]


def test_check_cost_section(check_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, d = check_run
    s = json.loads((d / "report.json").read_text())["sections"]
    best = s["cost"]["rented"]["best_level"]
    tps = max(r["output_tokens_per_s"] for r in s["bench"]["runs"])
    assert best["output_tokens_per_s"] == tps
    rate = s["cost"]["rented"]["hardware"]["rent_per_gpu_hour"]
    assert best["usd_per_million_output_tokens"] == pytest.approx(rate / (tps * 3600) * 1e6)
    assert any("assumed" in a for a in s["cost"]["electricity_only"]["assumptions"])


def test_quant_section_compares_variants(smollm2_path: Path, tmp_path: Path) -> None:
    """What `selfhost check --quant Q8_0,Q2_K` adds to the report (the section alone: the rest is above)."""
    from selfhost.models.gguf_spec import spec_from_gguf
    from selfhost.quant.section import quant_section

    s = quant_section(spec_from_gguf(smollm2_path), tmp_path, ["Q8_0", "Q2_K"], n_cases=4)
    by = {v["name"]: v for v in s.data["variants"]}
    assert list(by) == ["F16", "Q8_0", "Q2_K"] and s.data["cases"] == 4
    assert by["Q8_0"]["kld_mean"] < by["Q2_K"]["kld_mean"] and len(s.plots) == 2
    assert any(label == "recommended" for label, _ in s.rows)
    from selfhost.check.verdict import verdict_section
    from selfhost.report.section import Report

    report = Report("check", {})
    report.add(s)
    assert dict(verdict_section(report).rows)["quantization"].startswith(f"{s.data['recommended']} recommended")
    r = subprocess.run(
        [sys.executable, "-m", "selfhost", "check", "--quant", "Q9_X"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode != 0 and "unknown quantization 'Q9_X'" in r.stderr
