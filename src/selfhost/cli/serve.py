"""`selfhost serve` (llama-cpp-python's server for a local GGUF) and `selfhost mock-server` (a deterministic
OpenAI/Ollama server with a known schedule and injectable faults, what the bench tests prove the client against)."""

from __future__ import annotations

import math
import time

import click

from selfhost.cli.output import stdout
from selfhost.errors import UsageError


@click.command()
@click.argument("model", required=False)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8080, show_default=True)
@click.option("--ctx", "n_ctx", type=int, default=4096, show_default=True)
@click.option("--threads", type=int, default=None)
def serve(model: str | None, host: str, port: int, n_ctx: int, threads: int | None) -> None:
    """Serve MODEL (a GGUF; default: embedded) with llama-cpp-python's OpenAI-compatible server."""
    from selfhost.backends.server import LlamaCppServer, check_port_free
    from selfhost.models.resolve import local_gguf_path, resolve_model

    check_port_free(host, port)
    spec = resolve_model(model)
    server = LlamaCppServer(local_gguf_path(spec), host=host, port=port, n_ctx=n_ctx, n_threads=threads)
    server.start()
    stdout.print(f"serving {spec.name} at {server.url}/v1 (OpenAI-compatible); Ctrl-C stops it", highlight=False)
    try:
        while server.proc is not None and server.proc.poll() is None:
            time.sleep(0.5)
        raise UsageError("the server stopped by itself")
    finally:
        server.stop()


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
