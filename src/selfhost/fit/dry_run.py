"""llama.cpp's own answer for a local GGUF, without loading it: the memory-fit mode llama.cpp's `--fit` uses
(`no_alloc` model params). Only the file's metadata is read; the context is created and its graphs reserved by the
same allocator that sizes a real run, and nothing is allocated. fit takes the compute buffer from it, where its
formula (fit/compute.py) is an estimate checked on a zoo; the KV cache and recurrent state it reports are compared
with fit's own (exact) rules.

It runs in a child process: a hostile or broken file can crash llama.cpp, and fit must then answer with its formula
and say why, not die. The answer is for the llama.cpp that llama-cpp-python bundles, on the CPU backend; another
build of llama-server may differ slightly, and GPU backends size their buffers themselves (not simulated here)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from selfhost.fit.kv import LlamaCppKVConfig

__all__ = ["DryRun", "llamacpp_dry_run", "DRY_RUN_SOURCE"]

DRY_RUN_SOURCE = "llama.cpp's allocator, dry run (no_alloc: metadata read, nothing allocated)"
_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class DryRun:
    compute_bytes: int
    kv_cache_bytes: int
    recurrent_state_bytes: int
    output_bytes: int
    llama_cpp: str  # which build answered (llama-cpp-python's version)


_cache: dict[tuple[object, ...], DryRun | str] = {}


def llamacpp_dry_run(path: Path, cfg: LlamaCppKVConfig, flash_attn: bool, n_outputs_max: int | None) -> DryRun | str:
    """llama.cpp's buffers for CFG on the GGUF at PATH, or why they could not be had (one line). Cached per file
    version and settings for the life of the process."""
    try:
        st = path.stat()
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, cfg, flash_attn, n_outputs_max)
    if key not in _cache:
        _cache[key] = _run(path, cfg, flash_attn, n_outputs_max)
    return _cache[key]


def _run(path: Path, cfg: LlamaCppKVConfig, flash_attn: bool, n_outputs_max: int | None) -> DryRun | str:
    job = json.dumps({"path": str(path), "cfg": asdict(cfg), "flash_attn": flash_attn, "n_outputs_max": n_outputs_max})
    try:
        r = subprocess.run(
            [sys.executable, "-m", "selfhost.fit.dry_run"],
            input=job,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return f"llama.cpp's dry run took over {_TIMEOUT_S:.0f} s"
    if r.returncode != 0:
        last = (r.stdout.strip().splitlines() or r.stderr.strip().splitlines() or [f"exit code {r.returncode}"])[-1]
        return f"llama.cpp's dry run failed: {last[:300]}"
    try:
        return DryRun(**json.loads(r.stdout.strip().splitlines()[-1]))
    except (ValueError, TypeError, IndexError):
        return "llama.cpp's dry run answered something unreadable"


def _child() -> None:
    """Child process: one dry run, one JSON line on stdout (or a reason and exit code 1)."""
    from importlib.metadata import version

    from selfhost.backends.llamacpp_log import MIB
    from selfhost.backends.llamacpp_probe import llamacpp_probe
    from selfhost.errors import SelfhostError

    job = json.loads(sys.stdin.read())
    cfg = LlamaCppKVConfig(**job["cfg"])
    try:
        with llamacpp_probe(job["path"], dry_run=True) as probe:
            rep = probe.context_report(cfg, job["flash_attn"], n_outputs_max=job["n_outputs_max"])
    except SelfhostError as exc:
        print(str(exc).splitlines()[0])
        sys.exit(1)
    if not rep.compute_buffers_mib:
        print("llama.cpp logged no compute buffer")
        sys.exit(1)
    out = DryRun(
        compute_bytes=round(rep.compute_mib * MIB),
        kv_cache_bytes=round(rep.kv_mib * MIB),
        recurrent_state_bytes=round(rep.recurrent_mib * MIB),
        output_bytes=round(rep.output_mib * MIB),
        llama_cpp=f"llama-cpp-python {version('llama_cpp_python')}",
    )
    print(json.dumps(asdict(out)))


if __name__ == "__main__":
    _child()
