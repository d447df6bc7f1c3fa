"""llama.cpp (llama-server): its memory rules, measured byte-exact against llama.cpp's own buffers (tests/fit).

--ctx is what each request may use; llama-server's -c is the total its slots share, so the plan allocates
ctx × parallel cells. Layers are offloaded last-first and split over GPUs in proportion to their memory."""

from __future__ import annotations

import shlex
from dataclasses import replace
from pathlib import Path

from selfhost.errors import UsageError
from selfhost.fit.compute import (
    FORMULA_HELD_OUT,
    llamacpp_compute_bytes,
    llamacpp_output_bytes,
    llamacpp_vocab_bytes,
)
from selfhost.fit.cpu_work import llamacpp_cpu_work_bytes
from selfhost.fit.dry_run import DRY_RUN_SOURCE, DryRun, llamacpp_dry_run
from selfhost.fit.engines.base import GIB, MIB, Engine, register
from selfhost.fit.kv import LlamaCppKVConfig, llamacpp_kv, row_bytes
from selfhost.fit.plan import DevicePlan, FitPlan, FitRequest
from selfhost.fit.projector import projector_plan
from selfhost.fit.recurrent import recurrent_state_per_layer
from selfhost.fit.server_process import llama_server_checkpoint_bytes, llama_server_process_bytes
from selfhost.fit.weights import (
    FILE_BPW,
    QUANT_ORDER,
    WeightsPlan,
    cpu_mapped_bytes,
    cpu_repack_bytes,
    layer_bytes,
    weights_plan,
)
from selfhost.models.spec import ModelSpec

__all__ = ["LlamaCppEngine", "GPU_RUNTIME_BYTES", "LLAMACPP_KV_TYPES"]

# CUDA context + cuBLAS workspace per GPU, not reported by llama.cpp. Assumed from a public receipt: ollama#6160
# shows nvidia-smi 309 MiB above llama.cpp's buffers; measure yours with `selfhost fit --verify` on a GPU.
GPU_RUNTIME_BYTES = 320 * MIB
# --cache-type-k/-v values llama-server accepts
LLAMACPP_KV_TYPES = ("f16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl", "bf16")


def _layer_weights(spec: ModelSpec, w: WeightsPlan) -> tuple[list[int], int]:
    """Bytes per repeating layer, and of the rest (embeddings/output), exact when the file is at hand."""
    if w.exact and spec.tensors:
        return layer_bytes(spec)
    tied = bool(spec.extra.get("tie_word_embeddings"))
    emb_params = spec.vocab_size * spec.hidden_size * (1 if tied else 2)
    bpw = FILE_BPW.get(w.quant, 16.0)
    other = int(emb_params * bpw / 8)
    per = max(0, w.bytes - other) // spec.n_layers
    return [per] * spec.n_layers, other


def _expert_layer_bytes(spec: ModelSpec, w: WeightsPlan, w_layers: list[int]) -> list[int]:
    """Bytes of the routed-expert tensors in each layer (what --n-cpu-moe keeps on the CPU)."""
    if not spec.is_moe:
        return [0] * spec.n_layers
    if w.exact and spec.tensors:
        per = [0] * spec.n_layers
        for t in spec.tensors:
            if "_exps." in t.name and t.name.startswith("blk."):
                per[int(t.name.split(".")[1])] += t.n_bytes
        return per
    # total = shared + E·p and active = shared + u·p, so all experts hold (total − active)·E/(E − u) parameters.
    if not spec.active_parameters or spec.n_experts <= spec.n_experts_used:
        return [0] * spec.n_layers
    experts = (spec.parameters - spec.active_parameters) * spec.n_experts / (spec.n_experts - spec.n_experts_used)
    body = spec.parameters - spec.vocab_size * spec.hidden_size * (1 if spec.extra.get("tie_word_embeddings") else 2)
    frac = min(1.0, experts / body) if body > 0 else 0.0
    return [int(b * frac) for b in w_layers]


def _kv_per_layer(spec: ModelSpec, cfg: LlamaCppKVConfig) -> tuple[list[int], int]:
    kvp = llamacpp_kv(spec, cfg)
    cells = {c.kind: c.cells * c.streams for c in kvp.caches}
    per: list[int] = []
    for il, swa in enumerate(spec.swa_layers):
        dk = (
            (spec.mla.kv_lora_rank + spec.mla.qk_rope_head_dim)
            if spec.mla
            else spec.n_kv_heads_per_layer[il] * spec.head_dim
        )
        dv = 0 if spec.mla else spec.n_kv_heads_per_layer[il] * (spec.head_dim_v or spec.head_dim)
        n = cells.get("swa" if swa else "full", 0)
        per.append(n * (row_bytes(cfg.type_k, dk) + (row_bytes(cfg.type_v, dv) if dv else 0)))
    return per, kvp.n_ctx


def _embedding_bytes(spec: ModelSpec, w: WeightsPlan) -> int:
    if w.exact and spec.tensors:
        return sum(t.n_bytes for t in spec.tensors if t.name == "token_embd.weight")
    return int(spec.vocab_size * spec.hidden_size * FILE_BPW.get(w.quant, 16.0) / 8)


class LlamaCppEngine(Engine):
    name = "llama.cpp"
    tensor_parallel = False  # layers are split over GPUs, which take turns
    gpu_reserve_bytes = GPU_RUNTIME_BYTES
    reserve_source = "assumed (CUDA context; not logged by llama.cpp)"
    kv_always_unified = False
    # llama-server caps the reserve graph's outputs at its slots (server_output_limits); an engine that leaves
    # llama.cpp's default (n_batch: every token an output, as llama-cpp-python and Ollama do) sets this False.
    outputs_per_slot = True
    dry_run_applies = True  # the llama.cpp a dry run asks (llama-cpp-python's) is this engine's

    def validate(self, spec: ModelSpec, req: FitRequest) -> None:
        if not req.kv_unified and req.n_ctx // req.parallel < 1:
            raise UsageError(
                f"{req.parallel} parallel slots cannot share a context of {req.n_ctx} tokens",
                "raise --ctx or lower --parallel",
            )
        row_bytes(req.kv_type, spec.head_dim)  # unknown KV type / incompatible row size -> UsageError

    def candidate_quants(self, spec: ModelSpec) -> list[str]:
        quants = list(QUANT_ORDER)
        if spec.tensors and spec.file_type and spec.file_type.upper() not in FILE_BPW:
            quants.append(spec.file_type.upper())  # the file's own quantization, exact
        return quants

    def full_offload(self, spec: ModelSpec, req: FitRequest) -> FitRequest:
        return replace(req, n_gpu_layers=spec.n_layers + 1) if req.gpus else req

    def kv_note(self, req: FitRequest) -> str:
        return ""

    def plan(self, spec: ModelSpec, req: FitRequest) -> FitPlan:
        w = weights_plan(spec, req.quant)
        # --ctx is what each request may use. llama-server's -c is the total that its slots share, and Ollama asks
        # llama.cpp for num_ctx × num_parallel cells, so both allocate ctx × parallel.
        n_ctx_total = req.n_ctx * req.parallel
        cfg = LlamaCppKVConfig(
            n_ctx_total,
            req.parallel,
            req.kv_type,
            req.kv_type,
            kv_unified=req.kv_unified or self.kv_always_unified,
            swa_full=False,
            n_ubatch=req.n_ubatch,
        )
        kv_layers, n_ctx_eff = _kv_per_layer(spec, cfg)
        rs_layers = recurrent_state_per_layer(spec, req.parallel)
        w_layers, w_other = _layer_weights(spec, w)
        n_cpu_moe = min(max(req.n_cpu_moe, 0), spec.n_layers)
        cpu_experts = _expert_layer_bytes(spec, w, w_layers)[:n_cpu_moe] if n_cpu_moe else []
        # Experts of the first n_cpu_moe layers move from wherever their layer is to host RAM.
        w_layers = [b - (cpu_experts[i] if i < len(cpu_experts) else 0) for i, b in enumerate(w_layers)]
        per_slot = self.outputs_per_slot if req.outputs_per_slot is None else req.outputs_per_slot
        compute = llamacpp_compute_bytes(spec, cfg, req.flash_attn, req.parallel if per_slot else None)
        formula_compute, dry, asked, from_config = compute, None, None, False
        # The CPU backend's compute buffer does not depend on the weights' quantization
        # (tests/fit/test_config_dry_run.py), so the file's dry run answers for any --quant; GPU backends size their
        # own buffers.
        if req.dry_run and self.dry_run_applies and not req.gpus:
            if spec.path is not None and Path(spec.path).is_file():
                asked = Path(spec.path)
            elif req.config_dry_run:
                from_config = True
                from selfhost.fit.config_dry_run import config_gguf

                asked = config_gguf(spec)
            if isinstance(asked, Path):
                dry = llamacpp_dry_run(asked, cfg, req.flash_attn, req.parallel if per_slot else None)
            elif isinstance(asked, str):
                dry = f"no header could be built from the config: {asked}"
            if isinstance(dry, DryRun):
                compute = dry.compute_bytes
        output = llamacpp_output_bytes(spec, req.parallel)
        reserve = self.gpu_reserve_bytes
        vocab = llamacpp_vocab_bytes(spec)
        cpu_work = llamacpp_cpu_work_bytes(spec, cfg, req.flash_attn, 1 if per_slot else req.n_ubatch)
        server_process = llama_server_process_bytes(spec) if per_slot else 0
        projector = projector_plan(req.mmproj) if req.mmproj is not None else None
        checkpoints, checkpoints_ceiling = llama_server_checkpoint_bytes(spec, cfg) if per_slot else (0, 0)
        gpus = list(req.gpus)
        n_layers = spec.n_layers

        def layout(ngl: int) -> list[DevicePlan]:
            """The last `ngl` layers on the GPUs, split in proportion to their memory (llama.cpp's default)."""
            devices: list[DevicePlan] = []
            first_gpu_layer = n_layers - min(ngl, n_layers)
            if gpus and ngl > 0:
                total_cap = sum(g.usable_bytes for g in gpus)
                start = first_gpu_layer
                for i, g in enumerate(gpus):
                    share = round((n_layers - first_gpu_layer) * g.usable_bytes / total_cap)
                    end = n_layers if i == len(gpus) - 1 else min(n_layers, start + share)
                    comps = {
                        "weights": sum(w_layers[start:end]),
                        "kv_cache": sum(kv_layers[start:end]),
                        "recurrent_state": sum(rs_layers[start:end]),
                        "compute": compute,
                        "runtime_reserve": reserve,
                    }
                    if i == 0 and projector is not None:  # mtmd offloads the projector to the first GPU
                        comps["projector_weights"] = projector.weights_bytes
                        comps["projector_compute"] = projector.compute_bytes
                    if i == len(gpus) - 1 and ngl > n_layers:
                        comps["weights"] += w_other - _embedding_bytes(spec, w)  # output layer and final norm
                    devices.append(DevicePlan(f"{g.name} #{i}", g.usable_bytes, comps))
                    start = end
            host_comps = {
                "weights": sum(w_layers[:first_gpu_layer])
                + (_embedding_bytes(spec, w) if ngl > n_layers else w_other)
                + sum(cpu_experts),
                "kv_cache": sum(kv_layers[:first_gpu_layer]),
                "recurrent_state": sum(rs_layers[:first_gpu_layer]),
                "compute": compute if first_gpu_layer > 0 or not gpus else 0,
                "output": output,
                "tokenizer_vocab": vocab,
            }
            if first_gpu_layer > 0 or not gpus:
                host_comps["cpu_repack"] = cpu_repack_bytes(spec) if w.exact else 0
                host_comps["cpu_work"] = cpu_work
            if per_slot:
                host_comps["llama_server_process"] = server_process
                if checkpoints:
                    host_comps["context_checkpoints"] = checkpoints
            if projector is not None and not gpus:
                host_comps["projector_weights"] = projector.weights_bytes
                host_comps["projector_compute"] = projector.compute_bytes
            if not gpus and w.exact:
                # the mapped buffer spans the file from the first to the last tensor that is not repacked
                host_comps["weights"] = cpu_mapped_bytes(spec)
            if req.host is not None:
                devices.append(DevicePlan(f"host RAM ({req.host.name})", req.host.usable_bytes, host_comps))
            elif not gpus:
                devices.append(DevicePlan("host RAM (unchecked)", 2**62, host_comps))
            return devices

        if not gpus:
            ngl = 0
        elif req.n_gpu_layers is not None:
            ngl = max(0, min(req.n_gpu_layers, n_layers + 1))
        else:
            ngl = n_layers + 1
            while ngl > 0 and not all(d.fits for d in layout(ngl) if not d.name.startswith("host")):
                ngl -= 1
        devices = layout(ngl)
        beside_llama_cpp = (
            "cpu_work",
            "llama_server_process",
            "context_checkpoints",
            "projector_weights",
            "projector_compute",
        )
        process_and_work = sum(d.components.get(k, 0) for d in devices for k in beside_llama_cpp)
        notes = [f"KV cache: llama.cpp allocation rules, {n_ctx_eff:,} cells in all" + self.kv_note(req)]
        if gpus:
            notes.append(f"per-GPU runtime reserve {reserve // MIB} MiB is {self.reserve_source}")
        if not w.exact:
            notes.append(f"weights estimated: {w.source}")
        if isinstance(dry, DryRun):
            off = (formula_compute - compute) / compute if compute else 0.0
            of = " on a header built from the config (fit/config_dry_run.py)" if from_config else ""
            notes.append(
                f"compute buffer: {compute / MIB:.2f} MiB from {DRY_RUN_SOURCE}{of}, {dry.llama_cpp}; fit's formula "
                f"gives {formula_compute / MIB:.2f} MiB ({off:+.1%})"
            )
            if dry.kv_cache_bytes and abs(dry.kv_cache_bytes - sum(kv_layers)) > 0.01 * MIB:
                notes.append(
                    f"KV cache: llama.cpp's dry run sizes it at {dry.kv_cache_bytes / MIB:.2f} MiB, fit's rules at "
                    f"{sum(kv_layers) / MIB:.2f} MiB: this architecture has a cache rule fit does not know"
                )
        elif dry is not None:
            notes.append(f"compute buffer: fit's formula (estimated; {FORMULA_HELD_OUT}); {dry}")
        else:
            notes.append(
                f"compute buffer: fit's formula (estimated; {FORMULA_HELD_OUT}); on the CPU, llama.cpp's own dry run "
                "answers instead for a local GGUF, or with --shape-dry-run for a model known by its config"
            )
        if per_slot:  # llama-server (its output rule); not llama-cpp-python in-process, nor Ollama
            notes.append(
                "host RAM is for the llama-server process with one slot's context full and logits for one token per "
                "slot: llama.cpp's buffers, the CPU work buffer (read from ggml's source) and the process itself "
                f"({server_process / MIB:.1f} MiB, fitted on the embedded models, held out on the zoo: "
                "benchmarks/bench_server_rss.py); not counted: its prompt cache, which keeps replaced slot states in "
                "host RAM up to --cache-ram (8192 MiB by default; --cache-ram 0 turns it off)"
            )
        if checkpoints:
            notes.append(
                f"context checkpoints: {checkpoints / MIB:.1f} MiB of sliding-window or recurrent state copied to host "
                f"RAM after one long prompt; later prompts add more, up to {checkpoints_ceiling / MIB:,.0f} MiB "
                f"(--ctx-checkpoints, 32 per slot by default, bounds it)"
            )
        if projector is not None:
            notes.append(
                f"vision projector ({projector.projector_type}, {projector.patches:,} patches per image): weights "
                f"{projector.weights_bytes / MIB:.1f} MiB exact, compute {projector.compute_bytes / MIB:.1f} MiB "
                "estimated (fit.projector: within ±10 % on the zoo's projectors)"
            )
        if cpu_experts:
            moved = sum(cpu_experts) / GIB
            notes.append(f"--n-cpu-moe {n_cpu_moe}: {moved:.2f} GiB of expert weights stay in host RAM")
        plan_ = FitPlan(
            engine=req.engine,
            quant=w.quant,
            n_ctx=req.n_ctx,
            parallel=req.parallel,
            kv_type=req.kv_type,
            weights=w,
            kv_cache_bytes=sum(kv_layers),
            recurrent_state_bytes=sum(rs_layers),
            compute_bytes=compute,
            overhead_bytes=output + vocab + reserve * len(gpus) + process_and_work,
            per_device=devices,
            n_gpu_layers=ngl if gpus else None,
            notes=notes,
            detail={
                "n_ctx_cells": n_ctx_eff,
                "flash_attn": req.flash_attn,
                "n_ubatch": req.n_ubatch,
                "kv_unified": cfg.kv_unified,
                "compute_source": DRY_RUN_SOURCE if isinstance(dry, DryRun) else "formula (fit/compute.py)",
                "compute_formula_bytes": formula_compute,
            },
        )
        return plan_

    def launch_argv(
        self, spec: ModelSpec, p: FitPlan, req: FitRequest, host: str = "127.0.0.1", port: int = 8080
    ) -> list[str]:
        if not req.gpus:
            ngl = 0
        elif req.engine == self.name and p.n_gpu_layers is not None:
            ngl = p.n_gpu_layers
        else:
            ngl = 999
        kv = gguf_kv_type(p)
        argv = ["llama-server", "-m", gguf_path(spec, p), "-c", str(req.n_ctx * req.parallel), "-np", str(req.parallel)]
        argv += ["-ngl", str(ngl)]
        if req.n_cpu_moe:
            argv += ["--n-cpu-moe", str(req.n_cpu_moe)]
        argv += ["-fa", "on" if req.flash_attn else "off", "--cache-type-k", kv, "--cache-type-v", kv]
        if req.kv_unified:
            argv.append("--kv-unified")
        if req.mmproj is not None:
            argv += ["--mmproj", str(req.mmproj)]
        if req.n_ubatch != 512:  # llama-server's default; its logical batch (-b, 2048) must hold the micro-batch
            argv += ["-ub", str(req.n_ubatch)] + (["-b", str(req.n_ubatch)] if req.n_ubatch > 2048 else [])
        return argv + ["--host", host, "--port", str(port)]

    def launch_command(self, spec: ModelSpec, p: FitPlan, req: FitRequest) -> str:
        comment = f"   # -c is the total: {req.parallel} slot(s) × {req.n_ctx} tokens"
        return shlex.join(self.launch_argv(spec, p, req)) + comment


def gguf_path(spec: ModelSpec, p: FitPlan) -> str:
    """A GGUF path when there is one; otherwise a placeholder for the file the user downloads."""
    return str(spec.path) if spec.path and spec.source != "hf" else f"./{spec.name}-{p.quant}.gguf"


def gguf_kv_type(p: FitPlan) -> str:
    return p.kv_type if p.kv_type in LLAMACPP_KV_TYPES else "f16"


register(LlamaCppEngine())
