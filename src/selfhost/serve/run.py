"""`selfhost serve` as library calls: plan with fit, build the engine's command line, start it, and compare the memory
the engine says it allocated with fit's prediction."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from selfhost.backends.server import EngineProcess, check_port_free, free_port
from selfhost.errors import UsageError
from selfhost.fit.run import FitOptions
from selfhost.serve.engines import SERVE_ENGINES, ServeEngine, serve_engine_names
from selfhost.settings import setting

__all__ = ["ServeOptions", "Launch", "prepare", "start", "started_report"]


@dataclass(frozen=True)
class ServeOptions:
    engine: str = setting(
        "auto",
        "llama-server, vllm or llama-cpp-python (auto: llama-server when built, else llama-cpp-python).",
        choices=("auto", *serve_engine_names()),
    )
    host: str = setting("127.0.0.1", "Address to listen on.")
    port: int = setting(8080, "Port to listen on (0 picks a free one).")
    threads: int | None = setting(None, "CPU threads for generation (default: the engine's).")
    log_path: Path | None = setting(
        None, "Where the engine's own output goes (default: selfhost-serve-ENGINE.log here).", flag="--log", path="out"
    )
    engine_args: str = setting(
        "", "More arguments for the engine, shell-quoted, appended as given (e.g. --engine-args='--enforce-eager')."
    )
    print_only: bool = setting(False, "Print the command line and stop: start nothing.", flag="--print")
    timeout: float = setting(300.0, "Seconds to wait for the engine to answer its health check.")


@dataclass
class Launch:
    engine: ServeEngine
    argv: list[str]
    host: str
    port: int
    log_path: Path
    spec: Any
    request: Any
    plan: Any

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


def _engine(name: str) -> ServeEngine:
    if name != "auto":
        return SERVE_ENGINES[name]
    from selfhost.errors import MissingDependencyError
    from selfhost.serve.engines import find_llama_server

    try:
        find_llama_server()
        return SERVE_ENGINES["llama-server"]
    except MissingDependencyError:
        return SERVE_ENGINES["llama-cpp-python"]


def _argv(engine: ServeEngine, spec: Any, p: Any, req: Any, host: str, port: int, threads: int | None) -> list[str]:
    from selfhost.fit.engines import get_engine

    if engine.name == "llama-cpp-python":
        from selfhost.models.resolve import local_gguf_path

        argv = ["--model", str(local_gguf_path(spec)), "--host", host, "--port", str(port)]
        argv += ["--n_ctx", str(req.n_ctx), "--model_alias", Path(str(spec.path)).stem]
        argv += ["--flash_attn", str(req.flash_attn), "--interrupt_requests", "False"]
        return engine.program() + argv + (["--n_threads", str(threads)] if threads else [])
    own = get_engine(engine.fit_engine).launch_argv(spec, p, req, host, port)
    if engine.name == "vllm":  # `vllm serve MODEL …` is `python -m vllm.entrypoints.openai.api_server --model MODEL …`
        own = ["--model", *own[2:]]
        return engine.program() + own
    # -lv 4: llama-server then logs llama.cpp's own buffer sizes, which the memory check reads
    return engine.program() + own[1:] + (["-t", str(threads)] if threads else []) + ["-lv", "4"]


def prepare(model: str | None, fit_options: FitOptions, options: ServeOptions) -> Launch:
    """The plan and the exact command line, without starting anything."""
    from selfhost.fit.plan import plan
    from selfhost.fit.run import fit_request
    from selfhost.models.resolve import resolve_model

    engine = _engine(options.engine)
    spec = resolve_model(model)
    if spec.path is None:
        raise UsageError(f"{spec.name} is not a file here: serve needs a local model", "pass a GGUF or HF directory")
    if engine.fit_engine == "llama.cpp" and spec.source == "hf":
        raise UsageError(f"{engine.name} serves GGUF files; {spec.name} is a Hugging Face directory", "--engine vllm")
    if engine.name == "vllm" and spec.source != "hf":
        spec = _as_hf_dir(spec, write=not options.print_only)
    req, _ = fit_request(spec, replace(fit_options, engine=engine.fit_engine), measure_bandwidth=False)
    req = replace(req, outputs_per_slot=engine.outputs_per_slot)
    p = plan(spec, req)
    port = options.port
    if not options.print_only:
        check_port_free(options.host, port)
        port = port or free_port(options.host)
    try:
        extra = shlex.split(options.engine_args)
    except ValueError as exc:  # an unbalanced quote
        raise UsageError(f"--engine-args {options.engine_args!r}: {exc}", "quote it as you would in a shell") from None
    argv = _argv(engine, spec, p, req, options.host, port, options.threads) + extra
    log = options.log_path or Path(f"selfhost-serve-{engine.name}.log")
    return Launch(engine, argv, options.host, port, log, spec, req, p)


def _as_hf_dir(spec: Any, write: bool) -> Any:
    """vLLM loads Hugging Face weights: a GGUF is served from its dequantized HF directory (models.hf_export)."""
    from selfhost.models.hf_export import hf_dir_for, hf_dir_path
    from selfhost.models.resolve import resolve_model

    if not write:
        return replace(spec, path=hf_dir_path(spec), source="hf")
    return resolve_model(str(hf_dir_for(spec)))


def start(launch: Launch, timeout_s: float = 300.0) -> EngineProcess:
    proc = EngineProcess(launch.argv, host=launch.host, port=launch.port, log_path=launch.log_path)
    proc.name = launch.engine.name
    proc.health_path = launch.engine.health_path
    return proc.start(timeout_s)


def _predicted(p: Any) -> dict[str, int]:
    return {
        "weights_bytes": p.weights_bytes,
        "kv_cache_bytes": p.kv_cache_bytes,
        "compute_bytes": p.compute_bytes,
        "total_bytes": p.total_bytes,
    }


def started_report(launch: Launch, url: str | None) -> dict[str, Any]:
    """What `serve` says once the engine answers (or, with url None, what it would run): the command, the log,
    fit's prediction, and the engine's own logged allocations next to it."""
    out: dict[str, Any] = {
        "engine": launch.engine.name,
        "model": launch.spec.name,
        "command": launch.command,
        "url": url,
        "port": launch.port,
        "log": str(launch.log_path),
        "n_ctx_per_slot": launch.request.n_ctx,
        "parallel": launch.request.parallel,
        "predicted": _predicted(launch.plan),
    }
    if url is not None:
        from selfhost.fit.verify import compare_log

        try:
            out["from_log"] = compare_log(launch.spec, launch.log_path, launch.request)
        except UsageError as exc:  # an engine that logs no allocations (llama-cpp-python when quiet)
            out["from_log"] = {"error": exc.message}
    return out
