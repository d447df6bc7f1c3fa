"""fit on the zoo's recurrent architectures (Mamba, LFM2, Granite 4.0-H) against llama-server's own log: the
recurrent state (llama.cpp's RS buffer), the KV cache of the attention layers, and the compute buffer with
llama-server's output rule, at the small and the published widths.

The recurrent state is read from llama.cpp's source, not fitted. The Mamba compute rows (fit.compute._recurrent_rows)
were written from llama.cpp's graph (models/mamba-base.cpp) and checked on the small builds: the published widths are
held out.

Run: .venv/bin/python benchmarks/bench_fit_recurrent.py [--width small|published ...]
Published builds take up to a few minutes each (cached under ~/.cache/selfhost/zoo).
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from selfhost.backends.llamacpp_log import parse_llama_log
from selfhost.fit import zoo
from selfhost.fit.compute import llamacpp_compute_bytes
from selfhost.fit.kv import LlamaCppKVConfig, llamacpp_kv
from selfhost.fit.recurrent import recurrent_state_bytes
from selfhost.models.gguf_spec import spec_from_gguf
from selfhost.serve.engines import find_llama_server

MIB = 2**20
RECURRENT = ["mamba-130m", "lfm2-1.2b", "granite4-h-tiny"]
# (total context, slots, flash attention, ubatch)
SETTINGS = [(2048, 1, True, 512), (4096, 4, False, 512), (2048, 2, True, 128)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_log(path: Path, ctx: int, slots: int, fa: bool, ubatch: int, log: Path) -> str:
    port = _free_port()
    argv = [str(find_llama_server()), "-m", str(path), "-c", str(ctx), "-np", str(slots), "-fa", "on" if fa else "off"]
    argv += ["-ub", str(ubatch), "--host", "127.0.0.1", "--port", str(port), "-lv", "4"]
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.perf_counter() + 120
            while time.perf_counter() < deadline:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                    break
                except OSError:
                    time.sleep(0.2)
        finally:
            proc.terminate()
            proc.wait()
    return log.read_text(errors="replace")


def _err(pred: float, actual: float) -> str:
    return f"{(pred - actual) / actual:+.1%}" if actual else "—"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", action="append", choices=["small", "published"], help="default: both")
    args = ap.parse_args()
    log = Path(tempfile.mkdtemp(prefix="selfhost-recurrent-")) / "llama-server.log"
    print(
        "| architecture | width | -c | slots | flash attn | ubatch | recurrent state fit / log MiB | KV fit / log MiB "
        "| compute fit / log MiB | compute error |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for width in args.width or ["small", "published"]:
        for name in RECURRENT:
            path = zoo.build(name, width).path
            spec = spec_from_gguf(path)
            for ctx, slots, fa, ub in SETTINGS:
                rep = parse_llama_log(_server_log(path, ctx, slots, fa, ub, log))
                cfg = LlamaCppKVConfig(ctx, slots, n_ubatch=ub)
                state = recurrent_state_bytes(spec, slots) / MIB
                kv = llamacpp_kv(spec, cfg).bytes / MIB
                compute = llamacpp_compute_bytes(spec, cfg, fa, slots) / MIB
                logged_compute = rep.compute_mib
                print(
                    f"| {name} | {width} | {ctx} | {slots} | {'on' if fa else 'off'} | {ub} "
                    f"| {state:.3f} / {rep.recurrent_mib:.2f} | {kv:.2f} / {rep.kv_mib:.2f} "
                    f"| {compute:.2f} / {logged_compute:.2f} | {_err(compute, logged_compute)} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
