"""Predicted vs real: load the model in llama.cpp at the planned settings (`--verify`), or read a
startup log someone else captured (`--from-log`)."""

from __future__ import annotations

import multiprocessing
import re
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from selfhost.backends.llamacpp_log import MIB, LlamaCppMemoryReport, parse_llama_log
from selfhost.errors import UsageError
from selfhost.fit.compute import llamacpp_compute_bytes, llamacpp_output_bytes, llamacpp_vocab_bytes
from selfhost.fit.kv import LlamaCppKVConfig, llamacpp_kv
from selfhost.fit.plan import FitRequest, plan
from selfhost.fit.recurrent import recurrent_state_bytes
from selfhost.fit.weights import cpu_mapped_bytes, cpu_repack_bytes, weights_plan
from selfhost.models.spec import ModelSpec

__all__ = [
    "ComponentCheck",
    "verify_llamacpp",
    "measure_llamacpp",
    "predicted_process_bytes",
    "compare_log",
    "parse_llama_context_settings",
    "parse_vllm_log",
]


@dataclass(frozen=True)
class ComponentCheck:
    component: str
    predicted_bytes: int
    actual_bytes: int
    source: str  # where the actual number came from

    @property
    def error(self) -> float:
        return (self.predicted_bytes - self.actual_bytes) / self.actual_bytes if self.actual_bytes else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "predicted_bytes": self.predicted_bytes,
            "actual_bytes": self.actual_bytes,
            "error": self.error,
            "source": self.source,
        }


def _predicted(
    spec: ModelSpec, cfg: LlamaCppKVConfig, flash_attn: bool, n_outputs_max: int | None = None
) -> dict[str, int]:
    return {
        "model buffer": cpu_mapped_bytes(spec) if spec.tensors else weights_plan(spec).bytes,
        "cpu repack buffer": cpu_repack_bytes(spec),
        "KV cache": llamacpp_kv(spec, cfg).bytes,
        "compute buffer": llamacpp_compute_bytes(spec, cfg, flash_attn, n_outputs_max),
        "output buffer": llamacpp_output_bytes(spec, cfg.n_parallel),
        "recurrent state": recurrent_state_bytes(spec, cfg.n_parallel),
    }


def _checks_from_report(pred: dict[str, int], rep: LlamaCppMemoryReport, source: str) -> list[ComponentCheck]:
    mapped = sum(v for k, v in rep.model_buffers_mib.items() if "REPACK" not in k)
    repack = sum(v for k, v in rep.model_buffers_mib.items() if "REPACK" in k)
    actual = {
        "model buffer": mapped,
        "cpu repack buffer": repack,
        "KV cache": rep.kv_mib,
        "compute buffer": rep.compute_mib,
        "output buffer": rep.output_mib,
        "recurrent state": rep.recurrent_mib,
    }
    return [ComponentCheck(k, pred[k], round(actual[k] * MIB), source) for k in pred if pred[k] or actual[k]]


def _measure(path: str, cfg: LlamaCppKVConfig, flash_attn: bool) -> tuple[LlamaCppMemoryReport, int, float]:
    """Runs in a fresh process: an earlier load in the same process leaves freed pages resident in the
    allocator, and RSS growth would then undercount."""
    from selfhost.backends.llamacpp_probe import llamacpp_probe

    t0 = time.perf_counter()
    with llamacpp_probe(path) as probe:
        load_s = time.perf_counter() - t0
        rep = probe.context_report(cfg, flash_attn, fill=True)
        rep.model_buffers_mib.update(probe.model_report.model_buffers_mib)
        return rep, probe.load_rss_bytes + (probe.last_fill_rss_bytes or 0), load_s


def measure_llamacpp(
    path: Path, cfg: LlamaCppKVConfig, flash_attn: bool = True
) -> tuple[LlamaCppMemoryReport, int, float]:
    """(llama.cpp's reported buffers, measured RSS growth, load seconds) from a clean process."""
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_measure, str(path), cfg, flash_attn).result()


def predicted_process_bytes(spec: ModelSpec, cfg: LlamaCppKVConfig, flash_attn: bool = True) -> int:
    """Resident memory after a full micro-batch of logits: every buffer plus the tokenizer's vocabulary."""
    pred = _predicted(spec, cfg, flash_attn)
    return (
        pred["model buffer"]
        + pred["cpu repack buffer"]
        + llamacpp_vocab_bytes(spec)
        + pred["KV cache"]
        + pred["recurrent state"]
        + pred["compute buffer"]
        + llamacpp_output_bytes(spec, cfg.n_ubatch)
    )


def verify_llamacpp(spec: ModelSpec, cfg: LlamaCppKVConfig, flash_attn: bool = True) -> dict[str, Any]:
    """Load with llama.cpp on this machine and compare every component with what llama.cpp reports, then
    the process's resident memory after the case llama.cpp reserves for (a whole micro-batch of logits) with
    the predicted total. With flash attention off, attention scratch for a full context is only touched
    once the context is full, so resident memory can stay below the prediction."""
    if spec.path is None:
        raise UsageError(f"{spec.name} has no local GGUF file to load", "--verify needs a GGUF file or `embedded`")
    rep, measured, load_s = measure_llamacpp(spec.path, cfg, flash_attn)
    checks = _checks_from_report(_predicted(spec, cfg, flash_attn), rep, "llama.cpp log")
    checks.append(
        ComponentCheck(
            "process memory",
            predicted_process_bytes(spec, cfg, flash_attn),
            measured,
            "RSS growth (psutil, fresh process) over loading, creating the context and decoding one micro-batch "
            "with all logits",
        )
    )
    return {
        "settings": vars(cfg) | {"flash_attn": flash_attn},
        "load_s": load_s,
        "checks": [c.to_dict() for c in checks],
        "llama_cpp_reported": rep.to_dict(),
    }


def _ggml_type(name: str) -> int:
    from selfhost.backends.llamacpp_probe import GGML_TYPE_IDS

    return GGML_TYPE_IDS[name]


_CTX_KEYS = {
    "n_ctx": int,
    "n_seq_max": int,
    "n_ubatch": int,
    "n_outputs_max": int,  # llama-server: its slots; llama-cpp-python: n_batch
    "flash_attn": str,
    "kv_unified": str,
}


def parse_llama_context_settings(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, conv in _CTX_KEYS.items():
        m = re.search(rf"llama_context:\s+{key}\s+=\s+(\S+)", text)
        if m:
            out[key] = conv(m.group(1)) if conv is int else m.group(1)
    m = re.search(r"K \((\w+)\):", text)
    out["type_k"] = m.group(1) if m else "f16"
    m = re.search(r"V \((\w+)\):", text)
    out["type_v"] = m.group(1) if m else out["type_k"]
    out["swa_full"] = "using full-size SWA cache" in text
    return out


def parse_vllm_log(text: str) -> dict[str, Any]:
    """vLLM v1 startup lines: 'GPU KV cache size: 420,000 tokens' ('CPU KV cache size' in its CPU build),
    'Maximum concurrency for 8,192 tokens per request: 51.27x', 'Model loading took 14.99 GiB'."""
    out: dict[str, Any] = {}
    if m := re.search(r"(GPU|CPU) KV cache size:\s*([\d,]+) tokens", text):
        out["device"] = m.group(1)
        out["kv_capacity_tokens"] = int(m.group(2).replace(",", ""))
    if m := re.search(r"Maximum concurrency for ([\d,]+) tokens per request:\s*([\d.]+)x", text):
        out["max_model_len"] = int(m.group(1).replace(",", ""))
        out["max_concurrency"] = float(m.group(2))
    if m := re.search(r"Model loading took ([\d.]+) GiB", text):
        out["weights_bytes"] = int(float(m.group(1)) * 1024**3)
    return out


def compare_log(spec: ModelSpec, path: Path, req: FitRequest | None = None) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8", errors="replace")
    if "llama_kv_cache" in text or "load_tensors" in text:
        s = parse_llama_context_settings(text)
        if "n_ctx" not in s:
            raise UsageError(
                f"{path} has llama.cpp lines but no 'llama_context: n_ctx = ...'",
                "capture the whole startup log (llama-server prints it at start)",
            )
        unified = s.get("kv_unified") == "true"
        cfg = LlamaCppKVConfig(
            s["n_ctx"],
            s.get("n_seq_max", 1),
            s["type_k"],
            s["type_v"],
            kv_unified=unified,
            swa_full=s["swa_full"],
            n_ubatch=s.get("n_ubatch", 512),
        )
        fa = s.get("flash_attn", "enabled") not in ("disabled", "0", "false")
        rep = parse_llama_log(text)
        predicted = _predicted(spec, cfg, fa, s.get("n_outputs_max"))
        formula_compute = predicted["compute buffer"]
        dry_run_answered = False
        if req is not None and req.dry_run and spec.path is not None:  # what fit planned: llama.cpp's own allocator
            from selfhost.fit.dry_run import DryRun, llamacpp_dry_run

            dry = llamacpp_dry_run(Path(spec.path), cfg, fa, s.get("n_outputs_max"))
            if isinstance(dry, DryRun):
                predicted["compute buffer"], dry_run_answered = dry.compute_bytes, True
        checks = _checks_from_report(predicted, rep, f"llama.cpp log {path.name}")
        if dry_run_answered:
            source, actual = f"llama.cpp log {path.name}", round(rep.compute_mib * MIB)
            checks.append(ComponentCheck("compute buffer (formula)", formula_compute, actual, source))
        if req is not None and req.mmproj is not None and rep.projector_model_mib:
            from selfhost.fit.projector import projector_plan

            proj = projector_plan(req.mmproj)
            source = f"mtmd (clip) log {path.name}"
            checks.append(
                ComponentCheck("projector weights", proj.weights_bytes, round(rep.projector_model_mib * MIB), source)
            )
            checks.append(
                ComponentCheck("projector compute", proj.compute_bytes, round(rep.projector_compute_mib * MIB), source)
            )
        return {"engine": "llama.cpp", "settings": vars(cfg), "checks": [c.to_dict() for c in checks]}
    v = parse_vllm_log(text)
    if v:
        out: dict[str, Any] = {"engine": "vllm", "logged": v, "checks": []}
        if req is not None and (req.gpus or req.host) and "kv_capacity_tokens" in v:
            p = plan(spec, replace(req, engine="vllm", n_ctx=v.get("max_model_len", req.n_ctx)))
            out["checks"].append(
                ComponentCheck(
                    "KV capacity (tokens)", p.kv_capacity_tokens or 0, v["kv_capacity_tokens"], f"vLLM log {path.name}"
                ).to_dict()
            )
            if "weights_bytes" in v:
                out["checks"].append(
                    ComponentCheck(
                        "weights per GPU",
                        p.weights_bytes // max(1, len(p.per_device)),
                        v["weights_bytes"],
                        f"vLLM log {path.name}",
                    ).to_dict()
                )
        return out
    raise UsageError(
        f"{path} is neither a llama.cpp nor a vLLM startup log",
        "pass the log llama-server/llama-cli or `vllm serve` printed while starting",
    )
