"""llama.cpp's own llama-server (built by `make llama-server` from the same llama.cpp as llama-cpp-python), started by
`selfhost serve` with fit's command line, and every HTTP capability run against it: bench, context probe, template
verify, quant over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from selfhost.backends.server import EngineProcess
from selfhost.fit.run import FitOptions
from selfhost.serve import run as serve
from selfhost.serve.engines import find_llama_server

CTX_PER_SLOT, SLOTS = 1024, 4


def _start(tmp: Path, **fit: object) -> tuple[serve.Launch, EngineProcess]:
    options = serve.ServeOptions(engine="llama-server", port=0, log_path=tmp / "llama-server.log")
    launch = serve.prepare(None, FitOptions(**fit), options)  # type: ignore[arg-type]
    return launch, serve.start(launch, 120)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[serve.Launch, EngineProcess]]:
    find_llama_server()  # `make test` builds it; a missing binary is a failure, not a skip
    # Flash attention off, as in the in-process engine: greedy answers depend on the kernel on this small model.
    launch, proc = _start(tmp_path_factory.mktemp("ls"), ctx=CTX_PER_SLOT, parallel=SLOTS, flash_attn=False)
    try:
        yield launch, proc
    finally:
        proc.stop()


def test_serve_runs_fits_command_and_its_memory_is_fits(server: tuple[serve.Launch, EngineProcess]) -> None:
    launch, proc = server
    assert launch.argv[1:3] == ["-m", str(launch.spec.path)]
    assert ["-c", str(CTX_PER_SLOT * SLOTS), "-np", str(SLOTS)] == launch.argv[3:7]
    r = serve.started_report(launch, proc.url)
    checks = {c["component"]: c for c in r["from_log"]["checks"]}
    # weights and KV cache exact against what llama-server itself logged (in MiB with two decimals)
    for component in ("model buffer", "KV cache"):
        c = checks[component]
        assert abs(c["actual_bytes"] - c["predicted_bytes"]) <= 0.005 * 2**20, c
    assert checks["KV cache"]["actual_bytes"] == r["predicted"]["kv_cache_bytes"]
    with urllib.request.urlopen(proc.url + "/health", timeout=5) as h:
        assert h.status == 200


@pytest.mark.parametrize("model", ["smollm2", "gemma3"])
def test_compute_buffer_is_fits_for_llama_server(
    model: str, tmp_path: Path, smollm2_path: Path, gemma3_path: Path
) -> None:
    """llama-server reserves logits for one token per slot (n_outputs_max = its slots), unlike llama-cpp-python: its
    compute buffer is one layer's feed-forward rows and the KQ masks. The formula was fitted on SmolLM2 with flash
    attention; Gemma 3 (other widths, sliding-window masks) is held out. The plan itself takes llama.cpp's dry run
    (fit/dry_run.py, with llama-server's output cap), which must match the log to its resolution."""
    path = smollm2_path if model == "smollm2" else gemma3_path
    # (context per slot, slots, ubatch, flash attention): plan's ubatch values, 1-8 slots, both attention kernels
    settings = [(256, 2, 512, True), (2048, 1, 256, True), (512, 8, 128, True), (512, 2, 512, False)]
    for ctx, slots, ubatch, fa in settings:
        options = serve.ServeOptions(engine="llama-server", port=0, log_path=tmp_path / f"{ctx}-{slots}.log")
        fit = FitOptions(ctx=ctx, parallel=slots, ubatch=ubatch, flash_attn=fa)
        launch = serve.prepare(str(path), fit, options)
        proc = serve.start(launch, 120)
        try:
            checks = {c["component"]: c for c in serve.started_report(launch, proc.url)["from_log"]["checks"]}
        finally:
            proc.stop()
        c = checks["compute buffer"]
        assert launch.plan.detail["compute_source"].startswith("llama.cpp's allocator, dry run")
        assert abs(c["predicted_bytes"] - c["actual_bytes"]) <= 0.01 * 2**20, (ctx, slots, ubatch, fa, c)
        assert launch.plan.compute_bytes == c["predicted_bytes"]  # the log is compared with what was planned
        formula = checks["compute buffer (formula)"]
        assert formula["predicted_bytes"] == launch.plan.detail["compute_formula_bytes"]
        assert abs(formula["error"]) <= 0.05, (ctx, slots, ubatch, fa, formula)


def test_each_server_is_planned_with_its_own_output_rule(smollm2_path: Path) -> None:
    """llama-server caps the reserve graph's outputs at its slots; llama-cpp-python's server keeps llama.cpp's default
    (every micro-batch token an output, as in-process): the same fit options give each its own compute buffer."""
    from selfhost.fit.compute import llamacpp_compute_bytes
    from selfhost.fit.kv import LlamaCppKVConfig
    from selfhost.models.gguf_spec import spec_from_gguf

    fit, spec = FitOptions(ctx=1024, parallel=2), spec_from_gguf(smollm2_path)
    cfg = LlamaCppKVConfig(2048, 2)
    dry_run: dict[str, int] = {}
    for engine, outputs in (("llama-server", 2), ("llama-cpp-python", None)):
        options = serve.ServeOptions(engine=engine, port=8080, print_only=True)
        launch = serve.prepare(str(smollm2_path), fit, options)
        assert launch.plan.detail["compute_formula_bytes"] == llamacpp_compute_bytes(spec, cfg, True, outputs), engine
        dry_run[engine] = launch.plan.compute_bytes  # llama.cpp's own allocator, asked with each server's output cap
        # what llama-server holds beyond the plan is named: its process and its prompt cache (--cache-ram)
        assert any("--cache-ram" in n for n in launch.plan.notes) == (engine == "llama-server"), engine
    assert dry_run["llama-server"] < dry_run["llama-cpp-python"] / 3  # logits for 2 tokens, not 512


def _bench(url: str, concurrency: int, tmp: Path, requests: int = 0, input_tokens: str = "64") -> dict:  # type: ignore[type-arg]
    from selfhost.bench.command import BenchOptions, bench_command

    opts = BenchOptions(
        concurrency=str(concurrency),
        requests=requests or 2 * concurrency,
        input_tokens=input_tokens,
        output_tokens=8,
        records_path=tmp / f"c{concurrency}.jsonl",
    )
    return bench_command(url, opts)


@pytest.mark.parametrize("concurrency", [1, 4, 16])
def test_bench_completes_every_request(
    server: tuple[serve.Launch, EngineProcess], concurrency: int, tmp_path: Path
) -> None:
    """Every request completes (stale keep-alive connections are retried, not failed) and output tokens come
    from the server's own usage, exactly what was asked (ignore_eos)."""
    r = _bench(server[1].url, concurrency, tmp_path)
    assert r["requests"]["completed"] == 2 * concurrency and r["requests"]["failed"] == 0, r["requests"]
    assert r["tokens_source"] == {"usage": 2 * concurrency}
    records = [json.loads(x) for x in (tmp_path / f"c{concurrency}.jsonl").read_text().splitlines()]
    assert {x["output_tokens"] for x in records if not x["warmup"]} == {8}


def test_context_probe_finds_the_per_slot_window(server: tuple[serve.Launch, EngineProcess]) -> None:
    """-c 4096 -np 4: each slot holds 1,024 tokens, and a longer prompt is refused, not cut."""
    from selfhost.backends.tokenizer import Tokenizer
    from selfhost.context.probe import probe_context

    launch, proc = server
    r = probe_context(proc.url, Tokenizer(launch.spec), upper=4096)
    assert r["behaviour"].startswith("refuses") and not r["silent_truncation"]
    # the prompt plus the one token asked for must fit the slot
    assert r["effective_context"] == CTX_PER_SLOT - 1


def test_template_verify_agrees(server: tuple[serve.Launch, EngineProcess]) -> None:
    from selfhost.template.verify import verify_server

    launch, proc = server
    r = verify_server(proc.url, launch.spec)
    assert r["agree"], r
    # llama-server has its own render endpoint: its prompt is selfhost's, byte for byte
    assert r["engine_render"]["same_as_selfhost"] and r["engine_render"]["prompt"] == r["rendered_prompt"]


def test_quant_over_http_answers_like_in_process(server: tuple[serve.Launch, EngineProcess], tmp_path: Path) -> None:
    from selfhost.evals.suite import default_suite
    from selfhost.quant.kld import default_text
    from selfhost.quant.run import QuantConfig, run_quant
    from selfhost.quant.variants import Variant

    launch, proc = server
    cases = default_suite()[::8]
    served = Variant("llama-server", None, url=proc.url, model=None)
    records = tmp_path / "i.jsonl"
    r = run_quant(QuantConfig([Variant("here", launch.spec.path), served], cases, default_text()[:400], records))
    here, there = r["variants"]
    assert there["pass_rate"] == here["pass_rate"]
    answers: dict[str, set[str]] = {}
    for o in (json.loads(x) for x in records.read_text().splitlines()):
        answers.setdefault(o["case"], set()).add(o["output"].strip())
    assert all(len(v) == 1 for v in answers.values()), [v for v in answers.values() if len(v) > 1]


def _json_object(stream: object) -> dict:  # type: ignore[type-arg]
    lines = []
    for line in stream:  # type: ignore[attr-defined]
        lines.append(line)
        if line.rstrip("\n") == "}":
            return json.loads("".join(lines))
    raise AssertionError("no JSON object on stdout: " + "".join(lines))


def _gone(pid: int, within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def _engine_pid(serve_pid: int) -> int:
    out = subprocess.run(["pgrep", "-P", str(serve_pid)], capture_output=True, text=True).stdout.split()
    assert out, "selfhost serve has no child process"
    return int(out[0])


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGKILL"])
def test_serve_command_starts_reports_and_stops(tmp_path: Path, stop: str) -> None:
    """The CLI: one JSON object once the engine answers; SIGTERM stops both cleanly (exit 0); even a SIGKILL of
    selfhost takes the engine down with it (no orphan holding the port and the memory)."""
    log = tmp_path / "serve.log"
    cmd = [sys.executable, "-m", "selfhost.cli.main", "serve", "--engine", "llama-server", "--port", "0"]
    cmd += ["--ctx", "512", "--log", str(log), "--json"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as p:
        try:
            _check_serve(p, log, stop)
        finally:
            if p.poll() is None:
                p.kill()


def _check_serve(p: subprocess.Popen, log: Path, stop: str) -> None:  # type: ignore[type-arg]
    r = _json_object(p.stdout)
    assert r["engine"] == "llama-server" and r["url"].startswith("http://127.0.0.1:")
    assert log.exists() and "llama_kv_cache" in log.read_text()
    engine = _engine_pid(p.pid)
    os.kill(p.pid, getattr(signal, stop))
    rc = p.wait(timeout=20)
    assert rc == (0 if stop == "SIGTERM" else -signal.SIGKILL)
    assert _gone(engine), "llama-server outlived selfhost serve"
