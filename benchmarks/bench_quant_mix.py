"""The custom-mix search (`quant --max-bytes`) against the named quant of the same size, judged on text the search
never saw: the embedded model, budget = Q4_K_M's file size, search started from Q3_K_M/Q4_K_M made fresh.

Each search objective is mean KLD on 256 tokens: (a) the first 60 built-in suite prompts rendered with the chat
template (what `quant --max-bytes` searches on), (b) llama.cpp's README from character 5000 (llama-cpp-python's
source archive). Held out, 512 tokens each, three texts no search saw: the bundled Declaration text, the Apache-2.0
license text (Debian's /usr/share/common-licenses/Apache-2.0) and Python source (the standard library's
json/decoder.py). A hand-picked mix is measured the same way, to show what the search misses.

Run: .venv/bin/python benchmarks/bench_quant_mix.py
Prints, per row: the recipe, file size, and mean KLD on each held-out text, next to Q4_K_M's. One run.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_kld_vs_llama_perplexity import readme_text  # noqa: E402

from selfhost.evals.builtin_suite import builtin_suite  # noqa: E402
from selfhost.models.resolve import local_gguf_path, resolve_model  # noqa: E402
from selfhost.quant.imatrix import calibration_text  # noqa: E402
from selfhost.quant.kld import default_text  # noqa: E402
from selfhost.quant.mix import Mix, kld_meter, make_mix, search_mix  # noqa: E402
from selfhost.quant.variants import make_variants  # noqa: E402


def main() -> None:
    spec = resolve_model("embedded")
    with tempfile.TemporaryDirectory() as d:
        variants = make_variants(local_gguf_path(spec), Path(d) / "v", ["Q3_K_M", "Q4_K_M"], spec.file_type)
        reference = variants[0].path
        assert reference is not None
        named_paths = {v.name: v.path for v in variants[1:] if v.path is not None}
        q4 = named_paths["Q4_K_M"]
        budget = q4.stat().st_size
        meters = {name: kld_meter(reference, text, 512, None) for name, text in _held_out_texts().items()}

        def held_out(path: Path) -> str:
            return "  ".join(f"{name} {meter(path):.4f}" for name, meter in meters.items())

        print(f"budget {budget:,} bytes (Q4_K_M); Q4_K_M held-out mean KLD: {held_out(q4)}")
        objectives = {
            "suite prompts": calibration_text(spec, builtin_suite()[:60]),
            "llama.cpp README": readme_text(Path(d) / "README.md").read_text()[5000:],
        }
        for label, text in objectives.items():
            kld_of = kld_meter(reference, text, 256, None)
            named = {n: (p, kld_of(p)) for n, p in named_paths.items()}
            found = search_mix(reference, named, budget, kld_of, Path(d) / "mix")
            assert found is not None
            print(
                f"searched on {label}: {found.mix.describe()}  {found.file_bytes:,} bytes  "
                f"held-out: {held_out(found.path)}"
            )
        hand = Mix("Q4_K_M", (("token_embd", "q5_0"), ("attn_q", "q8_0"), ("attn_k", "q8_0"), ("attn_output", "q8_0")))
        path = make_mix(reference, hand, Path(d) / "mix")
        print(f"hand-picked: {hand.describe()}  {path.stat().st_size:,} bytes  held-out: {held_out(path)}")


def _held_out_texts() -> dict[str, str]:
    import json.decoder

    return {
        "Declaration": default_text(),
        "Apache-2.0": Path("/usr/share/common-licenses/Apache-2.0").read_text(),
        "json/decoder.py": Path(json.decoder.__file__).read_text(),
    }


if __name__ == "__main__":
    main()
