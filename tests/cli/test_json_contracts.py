"""The key structure of every command's `--json` output, held against tests/cli/json_contracts.json.

A refactor must not change what scripts read: keys may be added (the test then says which, and
`SELFHOST_UPDATE_CONTRACTS=1` records them), never removed or renamed. Structure only: dict keys, list-ness, and
`*` for any scalar. Commands that take minutes here (tune, check, quant) are held by their own tests."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_info_cli import run
from tests.helpers import mock_server_process

GOLDEN = Path(__file__).with_name("json_contracts.json")


def shape(value: Any) -> Any:
    if isinstance(value, dict):
        # keys that are data (model names, tensor types, codes) rather than fields: one entry stands for all
        if value and all(isinstance(v, type(next(iter(value.values())))) for v in value.values()) and len(value) > 12:
            return {"<any>": shape(next(iter(value.values())))}
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return "*"


def missing(golden: Any, now: Any, path: str = "") -> list[str]:
    """Keys in the golden structure that the output no longer has."""
    out: list[str] = []
    if isinstance(golden, dict):
        if not isinstance(now, dict):
            return [path or "<root>"]
        if "<any>" in golden:
            return []
        for k, v in golden.items():
            out += [f"{path}.{k}"] if k not in now else missing(v, now[k], f"{path}.{k}")
    elif isinstance(golden, list) and golden:
        if not isinstance(now, list):
            return [path]
        if now:
            out += missing(golden[0], now[0], path + "[]")
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    d = tmp_path_factory.mktemp("contracts")
    conv = {"messages": [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4."}]}
    (d / "data.jsonl").write_text("".join(json.dumps(conv) + "\n" for _ in range(3)))
    (d / "chat.json").write_text(json.dumps(conv["messages"]))
    (d / "doc.txt").write_text("The cat sat on the mat. It was warm. " * 20)
    (d / "a.jinja").write_text("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}")
    (d / "b.jinja").write_text("{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}")
    yield {"d": d, "data": d / "data.jsonl", "chat": d / "chat.json", "doc": d / "doc.txt"}


def _commands(f: dict[str, Path], url: str) -> dict[str, list[str]]:
    d = f["d"]
    return {
        "info": ["info"],
        "models": ["models"],
        "models --catalog": ["models", "--catalog"],
        "fit": ["fit"],
        "fit catalog": ["fit", "llama-3.1-8b", "--gpu", "H100", "--engine", "vllm"],
        "context count": ["context", "count", "hello"],
        "context budget": ["context", "budget", "--ctx", "512", "--question", "q", "--chunk", str(f["doc"])],
        "context pack": [
            "context",
            "pack",
            "--ctx",
            "256",
            "--reserve",
            "64",
            "--question",
            "q",
            "--chunk",
            str(f["doc"]),
        ],
        "context chunk": ["context", "chunk", "--file", str(f["doc"]), "--size", "32", "--overlap", "8"],
        "template render": ["template", "render", "--messages", str(f["chat"])],
        "template lint": ["template", "lint"],
        "template diff": ["template", "diff", str(d / "a.jinja"), str(d / "b.jinja")],
        "data check": ["data", "check", str(f["data"])],
        "data clean": ["data", "clean", str(f["data"]), "--out", str(d / "c.jsonl")],
        "data split": ["data", "split", str(f["data"]), "--train", str(d / "t.jsonl"), "--eval", str(d / "e.jsonl")],
        "data mask": ["data", "mask", str(f["data"]), "--line", "1"],
        "bench": ["bench", url, "--requests", "4", "--records", str(d / "r.jsonl")],
        "cost": ["cost", "--bench", str(d / "bench.json"), "--price-per-hour", "1"],
        "bench compare": ["bench", "compare", str(d / "bench.json"), str(d / "bench.json")],
    }


def test_json_key_structure_holds(files: dict[str, Path]) -> None:
    golden: dict[str, Any] = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    now: dict[str, Any] = {}
    with mock_server_process("--ttft", "0.01", "--itl", "0.001", "--output-tokens", "8") as url:
        for name, argv in _commands(files, url).items():
            r = run(*argv, "--json")
            assert r.returncode == 0, f"{name}: {r.stderr}"
            doc = json.loads(r.stdout)
            if name == "bench":
                (files["d"] / "bench.json").write_text(r.stdout)
            now[name] = shape(doc)
    if os.environ.get("SELFHOST_UPDATE_CONTRACTS") or not golden:
        GOLDEN.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
        golden = now
    lost = {name: missing(golden[name], now[name]) for name in golden if name in now}
    assert not {k: v for k, v in lost.items() if v}, f"keys removed from --json output: {lost}"
    assert set(golden) <= set(now), f"commands no longer covered: {set(golden) - set(now)}"
