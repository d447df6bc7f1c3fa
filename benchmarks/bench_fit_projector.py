"""fit's vision-projector plan (`--mmproj`, fit.projector) against what llama-server's mtmd logs for it: the
projector's weights ("model size") and its compute buffer (reserved at startup for the largest image), on the zoo's
two vision builds at the small and published widths. The compute estimate's per-patch rows were fitted on SmolVLM's
small projector; the other three rows are held out.

Run: .venv/bin/python benchmarks/bench_fit_projector.py   (builds the published vision models if not cached)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from selfhost.backends.llamacpp_log import parse_llama_log
from selfhost.fit import zoo
from selfhost.fit.projector import projector_plan
from selfhost.fit.run import FitOptions
from selfhost.serve import run as serve
from selfhost.serve.run import ServeOptions

MIB = 2**20


def main() -> None:
    logs = Path(tempfile.mkdtemp(prefix="selfhost-mmproj-"))
    print("| model | width | projector | patches | weights fit / log MiB | compute fit / log MiB | compute error |")
    print("|---|---|---|---|---|---|---|")
    for width in ("small", "published"):
        for a in zoo.architectures():
            if not a.is_vision:
                continue
            m = zoo.build(a.name, width)
            assert m.mmproj is not None
            log = logs / f"{a.name}-{width}.log"
            options = ServeOptions(engine="llama-server", port=0, log_path=log)
            launch = serve.prepare(str(m.path), FitOptions(ctx=2048, mmproj=m.mmproj), options)
            serve.start(launch, 300).stop()
            rep = parse_llama_log(log.read_text(errors="replace"))
            p = projector_plan(m.mmproj)
            err = (p.compute_bytes / MIB - rep.projector_compute_mib) / rep.projector_compute_mib
            print(
                f"| {a.name} | {width} | {p.projector_type} | {p.patches:,} | {p.weights_bytes / MIB:.2f} / "
                f"{rep.projector_model_mib:.2f} | {p.compute_bytes / MIB:.2f} / {rep.projector_compute_mib:.2f} "
                f"| {err:+.1%} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
