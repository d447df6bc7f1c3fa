"""A tuned run turned into files llama.cpp and Ollama serve: the LoRA adapter as a GGUF adapter (used with the
unchanged base GGUF, `llama-server -m BASE --lora adapter.gguf`), and optionally the merged model as one GGUF.

The conversion is llama.cpp's own (convert_lora_to_gguf.py, convert_hf_to_gguf.py), not a reimplementation: the
scripts ship in llama-cpp-python's source archive, matching the llama.cpp that selfhost runs, and are taken from,
in order, $SELFHOST_LLAMA_CPP (a llama.cpp checkout), selfhost's cache, an archive that `make install-test`
downloaded, or PyPI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from selfhost.errors import BackendError, MissingDependencyError, UsageError
from selfhost.models.spec import ModelSpec
from selfhost.paths import cache_dir

__all__ = ["converters_dir", "export_adapter_gguf", "export_merged_gguf", "export_run"]

_NEEDED = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "conversion/", "gguf-py/")


def _extract(archive: Path, target: Path) -> None:
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".extract-"))
    with tarfile.open(archive) as tar:
        members = []
        for m in tar.getmembers():
            _, _, rest = m.name.partition("/vendor/llama.cpp/")
            if rest and rest.startswith(_NEEDED):
                m.name = rest
                members.append(m)
        if not members:
            raise BackendError(f"{archive} has no llama.cpp converters", "delete it and retry")
        tar.extractall(tmp, members=members, filter="data")
    tmp.replace(target)  # atomic: a half-extracted directory never looks complete


def converters_dir() -> Path:
    """A directory holding llama.cpp's convert_*_to_gguf.py scripts and their gguf-py."""
    env = os.environ.get("SELFHOST_LLAMA_CPP")
    if env:
        if not (Path(env) / "convert_lora_to_gguf.py").exists():
            raise UsageError(f"SELFHOST_LLAMA_CPP={env} is not a llama.cpp checkout (no convert_lora_to_gguf.py)")
        return Path(env)
    version = metadata.version("llama-cpp-python")
    target = cache_dir() / "llama.cpp-converters" / version
    if (target / "convert_lora_to_gguf.py").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    name = f"llama_cpp_python-{version}.tar.gz"
    archive = Path(sys.prefix) / "sdist" / name  # where `make install-test` puts it
    if not archive.exists():
        archive = target.parent / name
        if not archive.exists():
            got = subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:"]
                + ["-d", str(target.parent), f"llama-cpp-python=={version}"],
                capture_output=True,
                text=True,
                check=False,
            )
            if got.returncode != 0 or not archive.exists():
                raise MissingDependencyError(
                    f"could not fetch llama.cpp's converters (llama-cpp-python {version} source from PyPI)",
                    "set SELFHOST_LLAMA_CPP to a llama.cpp checkout",
                )
    _extract(archive, target)
    return target


def _convert(script: str, args: list[str]) -> None:
    where = converters_dir()
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(where / "gguf-py"), str(where)])}
    done = subprocess.run(
        [sys.executable, str(where / script), *args], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        tail = " | ".join(line for line in done.stderr.strip().splitlines()[-3:])
        if "No module named" in tail:
            raise MissingDependencyError(f"llama.cpp's {script} needs a module: {tail}", "pip install 'selfhost[tune]'")
        raise BackendError(f"llama.cpp's {script} failed: {tail}", "rerun with SELFHOST_DEBUG=1 for details")


def _base_config_dir(spec: ModelSpec, into: Path) -> Path:
    """A directory with the base model's config.json, which convert_lora_to_gguf.py reads (weights not needed)."""
    if spec.path is not None and spec.path.is_dir():
        return spec.path
    if spec.path is None:
        raise UsageError(f"{spec.name} has no local files")
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    config = AutoConfig.from_pretrained(str(spec.path.parent), gguf_file=spec.path.name)
    # The GGUF loader leaves `architectures` empty; the converter picks its tensor mapping by it.
    config.architectures = [MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[config.model_type]]
    config.save_pretrained(str(into))
    return into


def export_adapter_gguf(spec: ModelSpec, adapter: Path, out_file: Path) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        base = _base_config_dir(spec, Path(tmp))
        _convert(
            "convert_lora_to_gguf.py",
            ["--base", str(base), "--outtype", "f16", "--outfile", str(out_file), str(adapter)],
        )
    return out_file


def export_merged_gguf(merged_dir: Path, out_file: Path, outtype: str = "q8_0") -> Path:
    _convert("convert_hf_to_gguf.py", [str(merged_dir), "--outfile", str(out_file), "--outtype", outtype])
    return out_file


def export_run(spec: ModelSpec, adapter: Path, merged_dir: Path | None = None, outtype: str = "q8_0") -> dict[str, Any]:
    """adapter/adapter.gguf (+ merged_dir/tuned-OUTTYPE.gguf), an Ollama Modelfile, and the serving commands."""
    if not (adapter / "adapter_config.json").exists():
        raise UsageError(f"{adapter} holds no LoRA adapter (adapter_config.json)", "train one with `selfhost tune`")
    lora = export_adapter_gguf(spec, adapter, adapter / "adapter.gguf")
    base = spec.path
    out: dict[str, Any] = {"adapter_gguf": str(lora), "adapter_gguf_bytes": lora.stat().st_size}
    serve = {
        "vllm": f"vllm serve BASE_HF_DIR --enable-lora --lora-modules tuned={adapter}",
        # The template the adapter was trained with, whatever the base GGUF carries (serving parity).
        "llama.cpp": f"llama-server -m {base} --lora {lora} --jinja "
        f"--chat-template-file {adapter / 'chat_template.jinja'}",
        "ollama": f"ollama create tuned -f {adapter / 'Modelfile'}",
    }
    # Ollama applies a GGUF LoRA on top of its FROM model (docs/modelfile.md, ADAPTER).
    (adapter / "Modelfile").write_text(f"FROM {base}\nADAPTER {lora}\n", encoding="utf-8")
    if merged_dir is not None:
        from selfhost.tune.hf import merge_adapter

        merge_adapter(spec, adapter, merged_dir)
        merged = export_merged_gguf(merged_dir, merged_dir / f"tuned-{outtype}.gguf", outtype)
        out |= {"merged": str(merged_dir), "merged_gguf": str(merged), "merged_gguf_bytes": merged.stat().st_size}
        serve |= {"vllm": f"vllm serve {merged_dir}", "llama.cpp (merged)": f"llama-server -m {merged}"}
        (merged_dir / "Modelfile").write_text(f"FROM {merged}\n", encoding="utf-8")
    out["serve"] = serve
    (adapter / "export.json").write_text(json.dumps(out, indent=2), encoding="utf-8")
    return out
