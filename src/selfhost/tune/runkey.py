"""What a training run was produced by (base model file, data, template, settings), so that a rerun resumes only
its own checkpoints."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from selfhost.errors import UsageError
from selfhost.models.spec import ModelSpec
from selfhost.tune.config import TuneConfig

__all__ = ["RUN_KEY_FILE", "run_key", "claim_out_dir"]


_CONTINUABLE = ("epochs", "steps", "checkpoint_every", "eval_every")
RUN_KEY_FILE = "selfhost-run-key.json"


def run_key(
    spec: ModelSpec,
    examples: list[list[dict[str, Any]]],
    eval_examples: list[list[dict[str, Any]]] | None,
    cfg: TuneConfig,
) -> dict[str, Any]:
    """What a run's checkpoints were produced by: the base model file, the data, the chat template, the settings."""
    from selfhost.quant.variants import file_identity

    def digest(value: Any) -> str:
        return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:24]

    settings = {k: v for k, v in asdict(cfg).items() if k not in _CONTINUABLE}
    base = file_identity(spec.path) if spec.path is not None and spec.path.is_file() else str(spec.path or spec.name)
    return {
        "base_model": base,
        "data": digest(examples),
        "eval_data": digest(eval_examples or []),
        "chat_template": digest(spec.chat_template or ""),
        "settings": digest(settings),
    }


def claim_out_dir(out_dir: Path, key: dict[str, Any]) -> None:
    """Resume only a run made by the same model, data and settings: another run's checkpoints are refused."""
    key_file = out_dir / RUN_KEY_FILE
    if any(out_dir.glob("checkpoint-*")) or (out_dir / "adapter_model.safetensors").exists():
        try:
            held = json.loads(key_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            held = None
        if held != key:
            what = [k for k in key if not isinstance(held, dict) or held.get(k) != key[k]]
            raise UsageError(
                f"{out_dir} holds a run of another {' / '.join(what) or 'origin'}: resuming it would mix the two",
                "pass a new --out (a run resumes only with the same model, data, template and settings)",
            )
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    from selfhost.files import write_text_atomic

    write_text_atomic(key_file, json.dumps(key, indent=2) + "\n")
