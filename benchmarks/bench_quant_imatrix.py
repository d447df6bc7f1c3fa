"""Importance-matrix variants against plain ones of the same type: `selfhost quant --imatrix` on the embedded model.

The importance matrix comes from llama.cpp's own llama-imatrix on the suite's prompts (rendered with the chat
template); KL divergence is measured as `llama-perplexity -c 512` does on a text that did not calibrate it
(llama.cpp's README from llama-cpp-python's source archive). Pass rates are on the built-in suite as far as the
sequential run took each variant (none for a variant the KLD gate already decided); its prompts (not answers)
calibrated the matrix.

Run: .venv/bin/python benchmarks/bench_quant_imatrix.py [--variants Q4_K_M,Q3_K_M,Q2_K] [--out DIR]
Prints one row per variant: size, mean KLD ± standard error, top-1 agreement, pass rate with its 95 % Wilson
interval, and the paired difference to F16 with its 95 % confidence sequence.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_kld_vs_llama_perplexity import readme_text  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", default="Q4_K_M,Q3_K_M,Q2_K")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        out = args.out or Path(d) / "quant"
        text = readme_text(Path(d) / "llama.cpp-README.md")
        cmd = [sys.executable, "-m", "selfhost", "quant", "embedded", "--variants", args.variants, "--imatrix"]
        cmd += ["--kld-ctx", "512", "--text", str(text), "--out", str(out), "--json"]
        got = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    print(f"{got['cases']} cases, KLD over {got['kld_positions']} positions (-c 512)")
    head = f"{'variant':15} {'MiB':>6} {'mean KLD':>20} {'top-1':>7}"
    print(f"{head} {'pass rate [95% CI]':>22} {'Δ vs F16 [95% CI]':>24}")
    for v in got["variants"]:
        d = v["difference_vs_reference"]
        head = (
            f"{v['name']:15} {v['file_bytes'] / 2**20:6.1f} {v['kld_mean']:.5f} ± {v['kld_mean_se']:.5f} "
            f"{v['top1_agreement']:7.2%} "
        )
        if v["pass_rate"] is None:
            print(head + f"{v['decision']} ({v['decision_reason']})")
            continue
        lo, hi = v["pass_rate_ci"]
        print(
            head + f"{v['pass_rate']:6.1%} [{lo:5.1%}, {hi:5.1%}] "
            f"{d['difference']:+6.1%} [{d['ci_low']:+6.1%}, {d['ci_high']:+6.1%}] {v['decision']}"
        )


if __name__ == "__main__":
    main()
