"""What a real engine renders for each of llama.cpp's official chat templates, against selfhost's render.

For every template in llama.cpp's models/templates (from llama-cpp-python's source archive, which `make test`
downloads) this starts llama-server (`make llama-server`) with the embedded model and `--jinja
--chat-template-file T`, sends each standard conversation (selfhost.template.conversations) to its
`/apply-template` endpoint, renders the same conversation with selfhost (the model's own BOS/EOS, as llama-server
uses them), and compares the two token by token with the model's tokenizer:

- identical: the same tokens;
- differs: the first differing token, both sides shown;
- engine refuses / selfhost refuses: an error on one side (both refusing counts as agreement). selfhost's
  render is byte-identical to transformers' on all of these (tests/template/test_parity.py), so "selfhost" below
  stands for transformers too.

llama-server treats a final assistant message as a prefill to continue, so selfhost renders those conversations
with continue_final_message (what the request means to llama-server).

With --engine vllm, one vLLM server (`make vllm`; the embedded model's HF export, `--trust-request-chat-template`)
renders every template through its chat /tokenize endpoint (the request's `chat_template`, `tools` and
`add_generation_prompt`, no special tokens added), turned back into text by its /detokenize; selfhost renders the
same request (vLLM continues a final assistant message only when asked, so nothing is continued on either side).

Run: .venv/bin/python benchmarks/template_parity_engines.py [--engine llama-server|vllm] [--markdown FILE]
(~2 min each on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from selfhost.backends.server import EngineProcess, free_port
from selfhost.backends.tokenizer import Tokenizer
from selfhost.errors import SelfhostError
from selfhost.models.embedded import embedded_path
from selfhost.models.gguf_spec import spec_from_gguf
from selfhost.serve.engines import find_llama_server
from selfhost.template.conversations import CONVERSATIONS
from selfhost.template.render import render_chat

REPO = Path(__file__).resolve().parents[1]


def official_templates() -> dict[str, str]:
    archive = sorted((REPO / ".venv" / "sdist").glob("llama_cpp_python-*.tar.gz"))[-1]
    out = {}
    with tarfile.open(archive) as tar:
        for m in tar.getmembers():
            if "/models/templates/" in m.name and m.name.endswith(".jinja") and m.isfile():
                f = tar.extractfile(m)
                assert f is not None
                out[Path(m.name).stem] = f.read().decode("utf-8")
    return out


def engine_render(url: str, conv: dict[str, Any]) -> tuple[str, str]:
    body: dict[str, Any] = {"messages": conv["messages"]}
    if conv.get("tools"):
        body["tools"] = conv["tools"]
    if "add_generation_prompt" in conv:
        body["add_generation_prompt"] = conv["add_generation_prompt"]
    req = urllib.request.Request(
        url + "/apply-template", json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return "ok", str(json.load(r)["prompt"])
    except urllib.error.HTTPError as exc:
        return "error", exc.read()[:200].decode("utf-8", errors="replace")


def _post(url: str, body: dict[str, Any]) -> tuple[str, Any]:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return "ok", json.load(r)
    except urllib.error.HTTPError as exc:
        return "error", exc.read()[:200].decode("utf-8", errors="replace")


def _wire_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool-call arguments as the OpenAI wire format carries them: a JSON string (vLLM decodes it to an object
    before rendering, as transformers' templates expect; it refuses an object)."""
    out = []
    for m in messages:
        if m.get("tool_calls"):
            calls = [
                {**c, "function": {**c["function"], "arguments": json.dumps(c["function"]["arguments"])}}
                if isinstance(c.get("function", {}).get("arguments"), dict)
                else c
                for c in m["tool_calls"]
            ]
            m = {**m, "tool_calls": calls}
        out.append(m)
    return out


def vllm_render(url: str, template: str, conv: dict[str, Any]) -> tuple[str, str]:
    messages = _wire_messages(conv["messages"])
    body: dict[str, Any] = {"messages": messages, "chat_template": template, "add_special_tokens": False}
    body["add_generation_prompt"] = conv.get("add_generation_prompt", False)
    if conv.get("tools"):
        body["tools"] = conv["tools"]
    status, out = _post(url + "/tokenize", body)
    if status == "error":
        return status, str(out)
    status, text = _post(url + "/detokenize", {"tokens": out["tokens"]})
    return (status, str(text["prompt"])) if status == "ok" else (status, str(text))


def start_vllm(tmp: str) -> EngineProcess:
    from selfhost.fit.engines.vllm import VLLM_CPU_DEFAULT_KV_BYTES
    from selfhost.models.hf_export import hf_dir_for
    from selfhost.models.resolve import resolve_model
    from selfhost.serve.engines import find_vllm_python

    hf = hf_dir_for(resolve_model(None))
    port = free_port()
    argv = [find_vllm_python(), "-m", "vllm.entrypoints.openai.api_server", "--model", str(hf)]
    argv += ["--trust-request-chat-template", "--max-model-len", "2048", "--enforce-eager"]
    argv += ["--kv-cache-memory-bytes", str(VLLM_CPU_DEFAULT_KV_BYTES // 4), "--host", "127.0.0.1", "--port", str(port)]
    proc = EngineProcess(argv, port=port, log_path=Path(tmp) / "vllm.log")
    proc.name = "vllm"
    return proc.start(400)


def selfhost_render(
    template: str, conv: dict[str, Any], special: dict[str, str], engine: str = "llama-server"
) -> tuple[str, str]:
    # llama-server continues a final assistant message (a prefill) whatever the request says; render it so too
    prefill = engine == "llama-server" and conv["messages"][-1]["role"] == "assistant"
    try:
        return "ok", render_chat(
            template,
            conv["messages"],
            tools=conv.get("tools"),
            add_generation_prompt=False if prefill else conv.get("add_generation_prompt", False),
            continue_final_message=prefill,
            **special,
        )
    except SelfhostError as exc:
        return "error", exc.message


def compare(tok: Tokenizer, engine: tuple[str, str], ours: tuple[str, str]) -> dict[str, Any]:
    if engine[0] == "error" or ours[0] == "error":
        if engine[0] == ours[0]:
            return {"verdict": "identical", "note": "both refuse"}
        who = "engine refuses" if engine[0] == "error" else "selfhost refuses"
        return {"verdict": who, "note": (engine if engine[0] == "error" else ours)[1][:160]}
    a = tok.encode(engine[1], parse_special=True)
    b = tok.encode(ours[1], parse_special=True)
    if a == b:
        return {"verdict": "identical", "note": ""}
    i = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    shown = [repr(tok.decode(t[i : i + 1], special=True)) if i < len(t) else "(end)" for t in (a, b)]
    return {"verdict": "differs", "note": f"token {i}: engine {shown[0]} vs selfhost {shown[1]}"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--markdown", type=Path, help="also write the per-template table here")
    ap.add_argument("--engine", choices=("llama-server", "vllm"), default="llama-server")
    args = ap.parse_args()
    model = embedded_path()
    spec = spec_from_gguf(model)
    tok = Tokenizer(spec)
    special = {"bos_token": spec.tokenizer.bos_token or "", "eos_token": spec.tokenizer.eos_token or ""}
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    if args.engine == "vllm":
        with tempfile.TemporaryDirectory() as tmp:
            proc = start_vllm(tmp)
            try:
                for name, template in sorted(official_templates().items()):
                    for conv_name, conv in CONVERSATIONS.items():
                        theirs = vllm_render(proc.url, template, conv)
                        r = compare(tok, theirs, selfhost_render(template, conv, special, "vllm"))
                        rows.append({"template": name, "conversation": conv_name, **r})
            finally:
                proc.stop()
    else:
        rows = llama_server_rows(model, tok, special)
    report(rows, args.engine, time.perf_counter() - t0, args.markdown)


def llama_server_rows(model: Path, tok: Tokenizer, special: dict[str, str]) -> list[dict[str, Any]]:
    binary = find_llama_server()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, template in sorted(official_templates().items()):
            path = Path(tmp) / f"{name}.jinja"
            path.write_text(template, encoding="utf-8")
            port = free_port()
            argv = [binary, "-m", str(model), "--jinja", "--chat-template-file", str(path), "-c", "512"]
            argv += ["--host", "127.0.0.1", "--port", str(port)]
            proc = EngineProcess(argv, port=port, log_path=Path(tmp) / "server.log")
            proc.name = "llama-server"
            try:
                proc.start(60)
            except SelfhostError as exc:
                for conv_name in CONVERSATIONS:
                    rows.append(
                        {
                            "template": name,
                            "conversation": conv_name,
                            "verdict": "engine refuses",
                            "note": f"server did not start: {exc.message[:120]}",
                        }
                    )
                continue
            try:
                for conv_name, conv in CONVERSATIONS.items():
                    r = compare(tok, engine_render(proc.url, conv), selfhost_render(template, conv, special))
                    rows.append({"template": name, "conversation": conv_name, **r})
            finally:
                proc.stop()
    return rows


def report(rows: list[dict[str, Any]], engine: str, elapsed: float, markdown: Path | None) -> None:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
    n_templates = len({r["template"] for r in rows})
    print(
        f"{engine} vs selfhost: {n_templates} templates × {len(CONVERSATIONS)} conversations = {len(rows)} "
        f"renders in {elapsed:.0f} s (one run)"
    )
    for verdict, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"  {verdict}: {n}")
    by_conv: dict[str, dict[str, int]] = {}
    for r in rows:
        c = by_conv.setdefault(r["conversation"], {})
        c[r["verdict"]] = c.get(r["verdict"], 0) + 1
    for conv_name, c in by_conv.items():
        print(f"  {conv_name}: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
    if markdown:
        lines = ["| template | conversation | verdict | first difference / error |", "|---|---|---|---|"]
        for r in rows:
            if r["verdict"] != "identical":
                note = r["note"].replace("|", "/").replace("\n", " ")
                lines.append(f"| {r['template']} | {r['conversation']} | {r['verdict']} | {note} |")
        markdown.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
