"""`selfhost tune eval` in its two engines on the same adapter and held-out data: transformers + PEFT (the adapter
as trained, dequantized float32 weights) vs llama.cpp with the adapter converted to GGUF (as served, on the
quantized base). Prints each engine's seconds, the ratio, and how far their losses and pass rates agree.

Run: .venv/bin/python benchmarks/bench_tune_eval_engines.py --adapter DIR --data EVAL.jsonl
(`make tune-demo` leaves both: selfhost-runs/tune-demo/adapter and selfhost-runs/tune-demo/eval.jsonl)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from selfhost.models.resolve import resolve_model
from selfhost.tune.dataset import load_conversations
from selfhost.tune.evaluate import evaluate_adapter, evaluate_adapter_llamacpp


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--adapter", type=Path, default=Path("selfhost-runs/tune-demo/adapter"))
    ap.add_argument("--data", type=Path, default=Path("selfhost-runs/tune-demo/eval.jsonl"))
    ap.add_argument("--base", default=None, help="default: the base model the run directory records")
    args = ap.parse_args()
    base = args.base or json.loads((args.adapter / "selfhost-run.json").read_text())["base_model"]
    spec = resolve_model(base)
    examples = load_conversations(args.data)
    (args.adapter / "adapter.gguf").unlink(missing_ok=True)  # the llama.cpp side converts it inside its timing

    results = {}
    for name, evaluate in (("transformers", evaluate_adapter), ("llama.cpp", evaluate_adapter_llamacpp)):
        t0 = time.perf_counter()
        r = evaluate(spec, args.adapter, examples)
        results[name] = (time.perf_counter() - t0, r)
        b = r["base"]
        print(
            f"{name:>12}: {results[name][0]:6.1f} s  base loss {b['loss']:.4f} pass {b['pass_rate']:.0%}"
            f" | tuned loss {r['tuned']['loss']:.4f} pass {r['tuned']['pass_rate']:.0%}"
            f" | significant {r['improvement_significant']}"
        )
    (t_hf, hf), (t_cpp, cpp) = results["transformers"], results["llama.cpp"]
    print(f"llama.cpp / transformers time: {t_cpp / t_hf:.2f}x ({len(examples)} conversations, base + tuned)")
    for side in ("base", "tuned"):
        rel = abs(cpp[side]["loss"] - hf[side]["loss"]) / hf[side]["loss"]
        gap = cpp[side]["pass_rate"] - hf[side]["pass_rate"]
        print(f"{side} loss difference: {rel:.1%}; pass-rate difference {gap:+.0%}")


if __name__ == "__main__":
    main()
