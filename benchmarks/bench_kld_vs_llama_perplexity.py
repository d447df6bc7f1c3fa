"""selfhost's KL divergence against llama.cpp's own `llama-perplexity --kl-divergence`, same text, same models.

Both use llama-perplexity's procedure: chunks of --ctx tokens, each from an empty cache, positions from
ctx/2 on scored. llama-perplexity is not shipped as a binary; build it from the llama.cpp sources inside
llama-cpp-python's source archive (`make install-test` downloads it to .venv/sdist):

    tar xzf .venv/sdist/llama_cpp_python-*.tar.gz -C /tmp && cd /tmp/llama_cpp_python-*/vendor/llama.cpp
    cmake -B build -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF
    cmake --build build --target llama-perplexity -j2

Run: .venv/bin/python benchmarks/bench_kld_vs_llama_perplexity.py --perplexity PATH/build/bin/llama-perplexity \
        --variants selfhost-runs/quant/variants
(`selfhost quant` makes the variants there). Prints each variant's mean KLD by both and their ratio.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
from pathlib import Path

from selfhost.quant.kld import compare_distributions, default_text, logprobs, summarize

# selfhost's logprobs() runs without flash attention; so does llama-perplexity here (its default is "auto").
FLAGS = ["-fa", "off"]


def llama_perplexity_kld(exe: str, ref: Path, var: Path, text: Path, ctx: int, tmp: Path) -> float:
    base = tmp / f"base-{ref.stem}.kld"
    if not base.exists():
        subprocess.run(
            [
                exe,
                "-m",
                str(ref),
                "-f",
                str(text),
                "-c",
                str(ctx),
                "-b",
                str(ctx),
                *FLAGS,
                "--kl-divergence-base",
                str(base),
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )
    out = subprocess.run(
        [
            exe,
            *FLAGS,
            "-m",
            str(var),
            "-f",
            str(text),
            "-c",
            str(ctx),
            "-b",
            str(ctx),
            "--kl-divergence-base",
            str(base),
            "--kl-divergence",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    m = re.search(r"Mean\s+KLD:\s+([-\d.eE+]+)", out.stdout + out.stderr)
    if not m:
        raise RuntimeError(f"no 'Mean KLD' in llama-perplexity's output:\n{out.stderr[-2000:]}")
    return float(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--perplexity", required=True)
    ap.add_argument("--variants", type=Path, required=True)
    ap.add_argument("--ctx", type=int, default=64)
    args = ap.parse_args()
    files = sorted(args.variants.glob("*.gguf"))
    ref = next(f for f in files if f.name.endswith(".F16.gguf"))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        text = tmp / "text.txt"
        text.write_text(default_text())
        ref_next, ref_lp = logprobs(ref, text.read_text(), chunk_ctx=args.ctx)
        print(f"{'variant':8} {'selfhost KLD':>13} {'llama-perplexity':>17} {'ratio':>7}   positions {len(ref_next)}")
        for var in files:
            if var == ref:
                continue
            nxt, lp = logprobs(var, text.read_text(), chunk_ctx=args.ctx)
            ours = summarize(compare_distributions(ref_next, ref_lp, nxt, lp))["kld_mean"]
            theirs = llama_perplexity_kld(args.perplexity, ref, var, text, args.ctx, tmp)
            name = var.name.split(".")[-2]
            print(f"{name:8} {ours:13.6f} {theirs:17.6f} {ours / theirs:7.4f}")


if __name__ == "__main__":
    main()
