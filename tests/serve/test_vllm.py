"""vLLM's CPU build (installed by `make vllm` into .venv-vllm), started by `selfhost serve --engine vllm` as a user
would: the embedded GGUF is exported to a Hugging Face directory, vLLM gets fit's command line, and every HTTP
capability runs against it: bench, context probe, template verify, quant over HTTP; then SIGTERM stops vLLM and
all of its worker processes.

One server for the module (vLLM takes about a minute to start on 2 cores)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from selfhost.serve.engines import find_vllm_python
from tests.serve.test_llama_server import _gone, _json_object

MAX_MODEL_LEN, SEQS, KV_GIB = 1536, 4, 1


@dataclass
class Served:
    proc: subprocess.Popen  # type: ignore[type-arg]
    report: dict  # type: ignore[type-arg]
    log: Path
    cwd: Path

    @property
    def url(self) -> str:
        return str(self.report["url"])


def _descendants(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    kids = [int(x) for x in out]
    return kids + [g for k in kids for g in _descendants(k)]


@pytest.fixture(scope="module")
def vllm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    find_vllm_python()  # `make test` installs it; a missing vLLM is a failure, not a skip
    cwd = tmp_path_factory.mktemp("vllm")
    log = cwd / "vllm.log"
    cmd = [sys.executable, "-m", "selfhost.cli.main", "serve", "--engine", "vllm", "--port", "0"]
    cmd += ["--ctx", str(MAX_MODEL_LEN), "--parallel", str(SEQS), "--kv-cache-gib", str(KV_GIB)]
    # eager mode: torch.compile would add minutes to the start on 2 cores and measures nothing here
    cmd += ["--engine-args=--enforce-eager", "--log", str(log), "--timeout", "400", "--json"]
    # both cores for the model (vLLM keeps one for itself by default, which halves its speed on this 2-core machine)
    env = {**os.environ, "VLLM_CPU_NUM_OF_RESERVED_CPU": "0"}
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env) as p:
        try:
            try:
                report = _json_object(p.stdout)
            except AssertionError:
                raise AssertionError(
                    f"serve printed no JSON; stderr: {p.stderr.read() if p.stderr else ''}\nlog tail: "
                    + (log.read_text()[-3000:] if log.exists() else "(no log)")
                ) from None
            yield Served(p, report, log, cwd)
        finally:
            if p.poll() is None:
                for pid in [p.pid, *_descendants(p.pid)]:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass


def test_serve_runs_fits_command_and_kv_capacity_is_fits(vllm: Served) -> None:
    r = vllm.report
    assert r["engine"] == "vllm" and r["url"].startswith("http://127.0.0.1:")
    argv = r["command"].split()
    assert argv[argv.index("--max-model-len") + 1] == str(MAX_MODEL_LEN)
    assert argv[argv.index("--max-num-seqs") + 1] == str(SEQS)
    assert argv[argv.index("--kv-cache-memory-bytes") + 1] == str(KV_GIB * 2**30)
    # the model is the GGUF's own HF export, keyed by the file's content, under the working directory
    model_dir = Path(argv[argv.index("--model") + 1])
    assert (vllm.cwd / model_dir / "config.json").is_file() and model_dir.parts[:2] == ("selfhost-runs", "hf")
    logged = r["from_log"]["logged"]
    assert logged["device"] == "CPU" and logged["max_model_len"] == MAX_MODEL_LEN
    kv = {c["component"]: c for c in r["from_log"]["checks"]}["KV capacity (tokens)"]
    # exact to the token: 1 GiB ÷ (30 layers × 2 × 3 KV heads × 64 × 2 bytes), in whole 16-token blocks = 46,592
    assert kv["actual_bytes"] == kv["predicted_bytes"] == 46_592


@pytest.mark.parametrize("concurrency", [1, 4, 16])
def test_bench_completes_every_request(vllm: Served, concurrency: int, tmp_path: Path) -> None:
    from tests.serve.test_llama_server import _bench

    # one request per stream: vLLM's CPU build runs its model on one of the two cores here (~1 s per request)
    r = _bench(vllm.url, concurrency, tmp_path, requests=concurrency, input_tokens="32")
    assert r["requests"]["completed"] == concurrency and r["requests"]["failed"] == 0, r["requests"]
    assert r["tokens_source"] == {"usage": concurrency}
    records = [json.loads(x) for x in (tmp_path / f"c{concurrency}.jsonl").read_text().splitlines()]
    assert {x["output_tokens"] for x in records if not x["warmup"]} == {8}


def test_context_probe_finds_max_model_len(vllm: Served) -> None:
    """--max-model-len 1536: a prompt plus the one token asked for must fit; a longer one is refused (HTTP 400)."""
    from selfhost.backends.tokenizer import Tokenizer
    from selfhost.context.probe import probe_context
    from selfhost.models.resolve import resolve_model

    r = probe_context(vllm.url, Tokenizer(resolve_model(None)), upper=2048)
    assert r["behaviour"].startswith("refuses") and not r["silent_truncation"]
    assert r["effective_context"] == MAX_MODEL_LEN - 1


def test_template_verify_agrees(vllm: Served) -> None:
    from selfhost.models.resolve import resolve_model
    from selfhost.template.verify import verify_server

    r = verify_server(vllm.url, resolve_model(None))
    assert r["agree"], r
    # vLLM renders the chat itself (/tokenize with messages): the same prompt as selfhost's render
    assert r["engine_render"]["endpoint"] == "/tokenize (chat)"
    assert r["engine_render"]["same_as_selfhost"], r["engine_render"]


def test_quant_over_http_runs_against_vllm(vllm: Served, tmp_path: Path) -> None:
    """quant's endpoint variant against vLLM: every case answered (no errors), graded like the in-process one.
    vLLM serves bf16 weights dequantized from the Q4_1 GGUF with its own kernels, so answers are not expected to be
    byte-identical to llama.cpp's (the llama-server test checks that, with the same file and kernel)."""
    from selfhost.evals.suite import default_suite
    from selfhost.models.resolve import resolve_model
    from selfhost.quant.kld import default_text
    from selfhost.quant.run import QuantConfig, run_quant
    from selfhost.quant.variants import Variant

    cases = default_suite()[::8]
    records = tmp_path / "q.jsonl"
    here = Variant("here", resolve_model(None).path)
    served = Variant("vllm", None, url=vllm.url, model=None)
    r = run_quant(QuantConfig([here, served], cases, default_text()[:400], records))
    rows = [json.loads(x) for x in records.read_text().splitlines()]
    by_variant: dict[str, dict[str, str]] = {}
    for o in rows:
        by_variant.setdefault(o["variant"], {})[o["case"]] = o["output"].strip()
    assert set(by_variant["vllm"]) == {c.id for c in cases}
    assert all(by_variant["vllm"].values()), "an empty answer from vLLM"
    # graded and compared with the reference like any variant (3 of these 8 answers were word-for-word llama.cpp's
    # on 2026-12-01: the same weights, but bf16 in vLLM against Q4_1 × Q8 dot products in llama.cpp)
    vllm_row = r["variants"][1]
    assert vllm_row["name"] == "vllm" and 0 <= vllm_row["pass_rate"] <= 1


def test_sigterm_stops_vllm_and_all_its_workers(vllm: Served) -> None:
    """Last: Ctrl-C/SIGTERM to `selfhost serve` is a clean stop (exit 0) and takes vLLM's engine-core and worker
    processes with it."""
    workers = _descendants(vllm.proc.pid)
    assert len(workers) >= 2, workers  # the API server and at least its engine core
    os.kill(vllm.proc.pid, signal.SIGTERM)
    assert vllm.proc.wait(timeout=60) == 0
    assert all(_gone(pid, 20) for pid in workers), [p for p in workers if not _gone(p, 0)]
