"""A deterministic mock LLM server for proving a benchmark client right (`selfhost mock-server`).

It stands for vLLM, SGLang, llama-server or Ollama, none of which a test can run here: it speaks the
OpenAI SSE wire format (/v1/chat/completions, /v1/completions, /v1/models) and Ollama's NDJSON
(/api/chat, /api/generate, /api/tags) and sends chunks on an absolute schedule measured from the moment
the request arrived: chunk j (of `tokens_per_chunk` tokens) leaves at arrival + ttft + j·tokens_per_chunk·itl,
so the client's measured TTFT and ITL can be compared with a known truth. It never sends early.

Faults, chosen per request with a seeded generator so a run is reproducible: `http_500`, `stall` (stops
sending mid-stream until the client gives up), `disconnect` (drops the connection mid-stream), `malformed`
(a broken SSE event mid-stream), `in_band_error` (an error event mid-stream). GET /mock/stats reports what
was served and which faults were injected.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.client_exceptions import ClientConnectionResetError

__all__ = ["MockConfig", "make_app", "serve"]

FAULTS = ("http_500", "stall", "disconnect", "malformed", "in_band_error")
TOKEN = "tok "  # every token is the same text, so clients can split chunks by characters exactly


@dataclass
class MockConfig:
    ttft_s: float = 0.2
    itl_s: float = 0.02
    output_tokens: int | None = None  # None: the request's max_tokens
    tokens_per_chunk: int = 1
    role_chunk: bool = True  # OpenAI chat: a role-only first chunk, as vLLM and llama-server send
    reasoning_tokens: int = 0  # the first N tokens are sent as reasoning (reasoning_content / thinking)
    faults: dict[str, float] = field(default_factory=dict)  # fault -> probability
    api_key: str | None = None  # when set, requests without `Authorization: Bearer <key>` get 401
    # Ollama's behaviour past its context: evaluate only the last num_ctx prompt tokens and say so only in
    # prompt_eval_count (ollama#3839). Tokens here are whitespace-separated words.
    ollama_num_ctx: int | None = None
    seed: int = 0
    model: str = "mock-llm"
    stall_s: float = 3600.0


class _State:
    def __init__(self, cfg: MockConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.stats: Counter[str] = Counter()
        # How late each chunk left relative to its schedule (s): the server's own error, for calibration.
        self.lateness: list[float] = []
        # Per request (by X-Request-Id): perf_counter times on this machine's monotonic clock, which the
        # client's time.perf_counter shares, so tests can compare client timings with the server's truth.
        self.requests: list[dict[str, Any]] = []

    def pick_fault(self) -> str | None:
        r = self.rng.random()
        acc = 0.0
        for name in FAULTS:
            acc += self.cfg.faults.get(name, 0.0)
            if r < acc:
                return name
        return None


async def _sleep_until(t: float) -> None:
    delay = t - time.perf_counter()
    if delay > 0:
        await asyncio.sleep(delay)
    # asyncio may wake a little early relative to perf_counter: never send before the schedule.
    while time.perf_counter() < t:
        await asyncio.sleep(0)


def make_app(cfg: MockConfig) -> web.Application:
    state = _State(cfg)
    app = web.Application()

    @web.middleware
    async def auth(request: web.Request, handler: Any) -> web.StreamResponse:
        if (
            cfg.api_key
            and request.path.startswith(("/v1/", "/api/"))
            and request.headers.get("Authorization") != f"Bearer {cfg.api_key}"
        ):
            return web.json_response({"error": {"message": "invalid api key"}}, status=401)
        return await handler(request)

    app.middlewares.append(auth)

    async def models(_: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": cfg.model, "object": "model"}]})

    async def tags(_: web.Request) -> web.Response:
        return web.json_response({"models": [{"name": cfg.model, "model": cfg.model}]})

    async def requests(_: web.Request) -> web.Response:
        return web.json_response(state.requests)

    async def stats(_: web.Request) -> web.Response:
        late = sorted(state.lateness)
        pct = {f"p{p}": late[min(len(late) - 1, int(len(late) * p / 100))] for p in (50, 90, 99)} if late else {}
        return web.json_response(dict(state.stats) | {"chunk_lateness_s": pct})

    async def generate(request: web.Request) -> web.StreamResponse:
        try:
            return await _generate(request)
        except (ConnectionResetError, ClientConnectionResetError):
            state.stats["client_disconnects"] += 1  # the client went away; nothing to send it
            return web.Response(status=499)

    async def _generate(request: web.Request) -> web.StreamResponse:
        arrived = time.perf_counter()
        body = await request.json()
        path = request.path
        ollama = path.startswith("/api/")
        chat = path.endswith("/chat") or path.endswith("/chat/completions")
        n = cfg.output_tokens or int((body.get("options") or {}).get("num_predict") or body.get("max_tokens") or 16)
        raw_prompt = body.get("prompt")
        prompt = raw_prompt if isinstance(raw_prompt, str) else json.dumps(body.get("messages") or "")
        prompt_tokens = max(1, len(prompt.split()))
        if ollama and cfg.ollama_num_ctx:
            prompt_tokens = min(prompt_tokens, cfg.ollama_num_ctx)
        state.stats["requests"] += 1
        fault = state.pick_fault()
        log: dict[str, Any] = {
            "id": request.headers.get("X-Request-Id"),
            "prompt_sha1": hashlib.sha1(prompt.encode()).hexdigest()[:16],  # which prompts were sent, and repeats
            "arrived": arrived,
            "fault": fault,
            "chunks": [],
        }
        state.requests.append(log)
        if fault:
            state.stats[fault] += 1
        if fault == "http_500":
            return web.json_response({"error": {"message": "mock: injected server error"}}, status=500)
        if body.get("stream") is False or (not ollama and "stream" not in body):
            await _sleep_until(arrived + cfg.ttft_s + max(0, n - 1) * cfg.itl_s)
            text = TOKEN * n
            state.stats["completed"] += 1
            if ollama:
                reply: dict[str, Any] = {
                    "model": cfg.model,
                    "done": True,
                    "done_reason": "length",
                    "prompt_eval_count": prompt_tokens,
                    "eval_count": n,
                }
                reply.update({"message": {"role": "assistant", "content": text}} if chat else {"response": text})
                return web.json_response(reply)
            choice: dict[str, Any] = {"index": 0, "finish_reason": "length"}
            choice.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
            return web.json_response(
                {
                    "id": "mock",
                    "object": "chat.completion" if chat else "text_completion",
                    "model": cfg.model,
                    "choices": [choice],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": n,
                        "total_tokens": prompt_tokens + n,
                    },
                }
            )
        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson" if ollama else "text/event-stream"})
        await resp.prepare(request)
        cid = f"mock-{state.stats['requests']}"

        def sse(obj: Any) -> bytes:
            return b"data: " + json.dumps(obj).encode() + b"\n\n"

        def openai_chunk(text: str, reasoning: bool) -> bytes:
            if chat:
                delta = {"reasoning_content": text} if reasoning else {"content": text}
                choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": None}
            else:
                choice = {"index": 0, "text": text, "finish_reason": None}
            return sse({"id": cid, "object": "chat.completion.chunk", "model": cfg.model, "choices": [choice]})

        def ollama_line(text: str, reasoning: bool) -> bytes:
            if chat:
                msg = {"role": "assistant", "content": "" if reasoning else text}
                if reasoning:
                    msg["thinking"] = text
                obj: dict[str, Any] = {"model": cfg.model, "message": msg, "done": False}
            else:
                obj = {"model": cfg.model, "response": text, "done": False}
            return json.dumps(obj).encode() + b"\n"

        if chat and not ollama and cfg.role_chunk:
            await resp.write(
                sse(
                    {
                        "id": cid,
                        "object": "chat.completion.chunk",
                        "model": cfg.model,
                        "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}],
                    }
                )
            )
        k = max(1, cfg.tokens_per_chunk)
        # Chunks are identical but for reasoning vs content: encode each kind once per request.
        encoded: dict[tuple[int, bool], bytes] = {}

        def chunk_bytes(take: int, reasoning: bool) -> bytes:
            key = (take, reasoning)
            if key not in encoded:
                text = TOKEN * take
                encoded[key] = ollama_line(text, reasoning) if ollama else openai_chunk(text, reasoning)
            return encoded[key]

        sent = 0
        j = 0
        fault_at = n // 2
        while sent < n:
            take = min(k, n - sent)
            due = arrived + cfg.ttft_s + j * k * cfg.itl_s
            await _sleep_until(due)
            state.lateness.append(time.perf_counter() - due)
            if fault and sent >= fault_at:
                if fault == "stall":
                    await asyncio.sleep(cfg.stall_s)
                elif fault == "disconnect":
                    assert request.transport is not None
                    request.transport.close()
                    return resp
                elif fault == "malformed":
                    await resp.write(b"data: {not json\n\n")
                    break
                elif fault == "in_band_error":
                    err = (
                        {"error": "mock: injected error"} if ollama else {"error": {"message": "mock: injected error"}}
                    )
                    await resp.write(json.dumps(err).encode() + b"\n" if ollama else sse(err))
                    break
            await resp.write(chunk_bytes(take, sent < cfg.reasoning_tokens))
            log["chunks"].append(time.perf_counter())
            sent += take
            j += 1
        else:
            if ollama:
                done: dict[str, Any] = {
                    "model": cfg.model,
                    "done": True,
                    "done_reason": "length",
                    "prompt_eval_count": prompt_tokens,
                    "eval_count": n,
                }
                if chat:
                    done["message"] = {"role": "assistant", "content": ""}
                await resp.write(json.dumps(done).encode() + b"\n")
            else:
                finish: dict[str, Any] = {"index": 0, "finish_reason": "length"}
                if chat:
                    finish["delta"] = {}
                else:
                    finish["text"] = ""
                await resp.write(
                    sse({"id": cid, "object": "chat.completion.chunk", "model": cfg.model, "choices": [finish]})
                )
                if (body.get("stream_options") or {}).get("include_usage"):
                    await resp.write(
                        sse(
                            {
                                "id": cid,
                                "choices": [],
                                "usage": {
                                    "prompt_tokens": prompt_tokens,
                                    "completion_tokens": n,
                                    "total_tokens": prompt_tokens + n,
                                },
                            }
                        )
                    )
                await resp.write(b"data: [DONE]\n\n")
            state.stats["completed"] += 1
        await resp.write_eof()
        return resp

    app.router.add_get("/v1/models", models)
    app.router.add_get("/api/tags", tags)
    app.router.add_get("/mock/stats", stats)
    app.router.add_get("/mock/requests", requests)
    for p in ("/v1/chat/completions", "/v1/completions", "/api/chat", "/api/generate"):
        app.router.add_post(p, generate)
    return app


def serve(cfg: MockConfig, host: str = "127.0.0.1", port: int = 0) -> None:
    """Run until interrupted; prints `listening on http://HOST:PORT` once the socket is bound."""

    async def main() -> None:
        runner = web.AppRunner(make_app(cfg), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port, backlog=4096)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        bound = sockets[0].getsockname()[1] if sockets else port
        print(f"listening on http://{host}:{bound}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    try:
        try:
            import uvloop
        except ImportError:
            asyncio.run(main())
        else:
            uvloop.run(main())
    except KeyboardInterrupt:
        pass
