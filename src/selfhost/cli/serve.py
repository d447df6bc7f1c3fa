"""`selfhost serve` (a real engine: llama-server, vLLM or llama-cpp-python's server) and `selfhost mock-server`
(a deterministic OpenAI/Ollama server with a known schedule and injectable faults, what the bench tests prove the
client against)."""

from __future__ import annotations

import math
import signal
import time
from typing import Any

import click

from selfhost.cli.options import config_from, config_options, json_option
from selfhost.cli.output import emit, stderr
from selfhost.errors import UsageError
from selfhost.fit.run import FitOptions
from selfhost.serve.run import ServeOptions


@click.command()
@click.argument("model", required=False)
@config_options(ServeOptions)
@config_options(FitOptions, skip=("engine", "verify", "from_log", "gpu", "gpus", "gpu_util", "tp"))
@json_option
def serve(model: str | None, as_json: bool, **values: Any) -> None:
    """Serve MODEL (default: embedded) with a real engine, started with the command `fit` recommends.

    Waits until the engine answers, prints where it listens, the exact command, and the memory the engine logged
    next to fit's prediction; keeps its log; Ctrl-C (or selfhost's exit) stops it."""
    from selfhost.serve import run
    from selfhost.serve.section import serve_section

    options = config_from(ServeOptions, values)
    launch = run.prepare(model, config_from(FitOptions, values), options)
    if options.print_only:
        r = run.started_report(launch, None)
        emit(r, serve_section(r), as_json)
        return
    stderr.print(f"starting {launch.engine.name}: {launch.command}", markup=False, highlight=False)
    proc = run.start(launch, options.timeout)
    try:
        r = run.started_report(launch, proc.url)
        emit(r, serve_section(r), as_json)
        _wait(proc)
    except KeyboardInterrupt:
        pass  # the normal way to stop a server
    finally:
        proc.stop()


def _wait(proc: Any) -> None:
    """Until the engine exits or selfhost is told to stop (Ctrl-C, SIGTERM)."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        while proc.running():
            time.sleep(0.5)
    finally:
        signal.signal(signal.SIGTERM, previous)
    raise UsageError(f"{proc.name} stopped by itself", f"see its log: {proc.log_path}")


@click.command("mock-server")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True, help="0 picks a free port.")
@click.option("--ttft", type=float, default=0.2, show_default=True, help="Seconds to the first token.")
@click.option("--itl", type=float, default=0.02, show_default=True, help="Seconds between tokens.")
@click.option("--output-tokens", type=int, default=None, help="Tokens per response (default: the request's max).")
@click.option("--tokens-per-chunk", type=int, default=1, show_default=True)
@click.option("--reasoning-tokens", type=int, default=0, show_default=True)
@click.option("--no-role-chunk", is_flag=True, help="Do not send a role-only first chunk.")
@click.option("--fault", "faults", multiple=True, help="NAME=P: http_500, stall, disconnect, malformed, in_band_error.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--api-key", default=None, help="Require this bearer token (401 otherwise).")
@click.option(
    "--ollama-num-ctx",
    type=int,
    default=None,
    help="Ollama endpoints truncate prompts to this many tokens silently, as Ollama does.",
)
def mock_server(
    host: str,
    port: int,
    ttft: float,
    itl: float,
    output_tokens: int | None,
    tokens_per_chunk: int,
    reasoning_tokens: int,
    no_role_chunk: bool,
    faults: tuple[str, ...],
    seed: int,
    api_key: str | None,
    ollama_num_ctx: int | None,
) -> None:
    """A deterministic OpenAI/Ollama-compatible server with a known TTFT/ITL schedule and injectable faults."""
    from selfhost.bench.mock_server import FAULTS, MockConfig, serve

    fault_map = {}
    for f in faults:
        name, eq, p = f.partition("=")
        if name not in FAULTS:
            raise UsageError(f"unknown fault {name!r}", f"valid: {', '.join(FAULTS)}")
        try:
            prob = float(p) if eq else math.nan
        except ValueError:
            prob = math.nan
        if not 0 <= prob <= 1:
            raise UsageError(f"--fault {f!r}: give NAME=P with P a probability in 0..1", "e.g. --fault http_500=0.1")
        fault_map[name] = prob
    if sum(fault_map.values()) > 1:
        raise UsageError("--fault probabilities add up to more than 1")
    from selfhost.backends.server import check_port_free

    check_port_free(host, port)
    serve(
        MockConfig(
            ttft_s=ttft,
            itl_s=itl,
            output_tokens=output_tokens,
            tokens_per_chunk=tokens_per_chunk,
            role_chunk=not no_role_chunk,
            reasoning_tokens=reasoning_tokens,
            faults=fault_map,
            seed=seed,
            api_key=api_key,
            ollama_num_ctx=ollama_num_ctx,
        ),
        host,
        port,
    )
