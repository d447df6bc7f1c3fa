"""A training run written down for `accelerate launch`: the run config, an accelerate config and a launch script.

`selfhost tune` uses this when more than one GPU is present (one process per GPU, data parallel), and
`selfhost tune --launch-only` writes it for another machine, e.g. a CUDA host that will run QLoRA.
`python -m selfhost.tune.launch RUN.json` is what each launched process runs.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from selfhost.errors import BackendError, MissingDependencyError
from selfhost.tune.config import TuneConfig
from selfhost.tune.dataset import load_conversations, load_labeled

__all__ = ["write_launch", "run_launch", "main"]


def _accelerate_yaml(processes: int, mixed_precision: str) -> str:
    import yaml  # a dependency of accelerate and transformers

    # Keys as `accelerate config` writes them (accelerate 1.x, commands/config/cluster.py).
    config: dict[str, Any] = {
        "compute_environment": "LOCAL_MACHINE",
        # One process per GPU through torch.distributed (NCCL); on a machine without one the same file runs the
        # processes on the CPU (gloo), which is how the tests run it.
        "distributed_type": "MULTI_GPU" if processes > 1 else "NO",
        "num_machines": 1,
        "machine_rank": 0,
        "num_processes": processes,
        "mixed_precision": mixed_precision,
        "use_cpu": False,
        "gpu_ids": "all",
        "main_training_function": "main",
        "rdzv_backend": "static",
        "same_network": True,
    }
    return str(yaml.safe_dump(config, sort_keys=False))


def write_launch(
    model: str,
    data: Path,
    out_dir: Path,
    cfg: TuneConfig,
    processes: int,
    eval_file: Path | None = None,
    record_extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write out_dir/launch/{run.json, accelerate.yaml, launch.sh}; the command that runs it."""
    if processes < 1:
        raise ValueError("processes must be at least 1")
    where = out_dir / "launch"
    where.mkdir(parents=True, exist_ok=True)
    run = {
        "model": model,
        "data": str(data.resolve()),
        "eval": str(eval_file.resolve()) if eval_file else None,
        "out": str(out_dir.resolve()),
        "config": asdict(cfg),
        "record_extra": record_extra,
    }
    (where / "run.json").write_text(json.dumps(run, indent=2), encoding="utf-8")
    mixed = "no" if cfg.qlora else "bf16"  # QLoRA sets its compute dtype in its own quantization config
    (where / "accelerate.yaml").write_text(_accelerate_yaml(processes, mixed), encoding="utf-8")
    command = [
        "accelerate",
        "launch",
        "--config_file",
        str((where / "accelerate.yaml").resolve()),
        "-m",
        "selfhost.tune.launch",
        str((where / "run.json").resolve()),
    ]
    script = "#!/bin/sh\n# Written by selfhost tune; run it on the training host.\nexec " + shlex.join(command) + "\n"
    (where / "launch.sh").write_text(script, encoding="utf-8")
    (where / "launch.sh").chmod(0o755)
    return {"processes": processes, "command": command, "script": str(where / "launch.sh"), "out": run["out"]}


def _has_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def run_launch(plan: dict[str, Any]) -> dict[str, Any]:
    """Run the launch script (accelerate starts one process per device) and return the run record."""
    accelerate = Path(sys.executable).with_name("accelerate")
    if not accelerate.exists():
        raise MissingDependencyError("a multi-process run needs accelerate", "pip install 'selfhost[tune]'")
    command = [str(accelerate), *plan["command"][1:]]
    if not _has_cuda():
        # The written config asks for bf16 autocast, which is right on the GPUs it is written for. Run here on a
        # CPU, bf16 autocast trained a 3-step run 8x slower than float32 (67 s vs 8.6 s on 2 cores), and
        # single-process CPU training uses float32 too.
        command[2:2] = ["--mixed_precision", "no"]
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    done = subprocess.run(command, env=env, stdout=sys.stderr, check=False)
    if done.returncode == 130:
        raise KeyboardInterrupt
    if done.returncode != 0:
        raise BackendError(
            f"accelerate launch exited with status {done.returncode}",
            f"its output is above; rerun by hand: sh {plan['script']}",
        )
    record: dict[str, Any] = json.loads((Path(plan["out"]) / "selfhost-run.json").read_text(encoding="utf-8"))
    return record


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    try:
        return _main(Path(args[0]))
    except BaseException as e:  # each launched process reports like the CLI does: one line, no traceback
        from selfhost.errors import debug_enabled, describe

        if debug_enabled():
            raise
        m = describe(e)
        print(f"selfhost tune (launched): error: {m.message}" + (f"\n  next: {m.next_step}" if m.next_step else ""))
        return m.exit_code


def _main(run_file: Path) -> int:
    from selfhost.models.resolve import resolve_model
    from selfhost.tune.report import write_tune_report
    from selfhost.tune.train import train_lora

    run = json.loads(run_file.read_text(encoding="utf-8"))
    c = run["config"]
    cfg = TuneConfig(**(c | {"target_modules": tuple(c["target_modules"])}))
    out = Path(run["out"])
    examples, sources = load_labeled(Path(run["data"]))
    record = train_lora(
        resolve_model(run["model"]),
        examples,
        out,
        cfg,
        eval_examples=load_conversations(Path(run["eval"])) if run["eval"] else None,
        sources=sources,
        record_extra=run.get("record_extra"),
    )
    if record["rank"] == 0:
        write_tune_report(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
