"""One streamed request, timed: every latency starts at the request's *scheduled* send time.

Definitions (DESIGN.md §3): TTFT is the first chunk carrying generated content (text, reasoning or a tool
call; role-only and empty chunks do not count); TTFAT the first non-reasoning content; ITL the gaps between
tokens, a chunk of k tokens splitting its gap over k; TPOT = (e2e − TTFT) / (output_tokens − 1); e2e ends
at the last byte. Output tokens come from the server's usage, else the model's tokenizer, else one per
chunk, and the record says which.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp

from selfhost.backends.wire import Api, Chunk, SSEDecoder, parse_ollama_line, parse_openai_event

__all__ = ["RequestRecord", "ERROR_CLASSES", "send_request", "allocate_tokens", "request_id"]

ERROR_CLASSES = ("connect", "timeout", "http_4xx", "http_5xx", "stream_error", "in_band_error")


@dataclass
class RequestRecord:
    id: int
    scheduled_t: float
    sent_t: float = 0.0
    first_t: float | None = None
    first_answer_t: float | None = None
    end_t: float = 0.0
    status: str = "ok"  # "ok" or one of ERROR_CLASSES
    error: str | None = None
    http_status: int | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    tokens_source: str | None = None
    output_chars: int = 0
    chunk_times: list[float] = field(default_factory=list)
    chunk_tokens: list[int] = field(default_factory=list)
    warmup: bool = False
    reconnects: int = 0  # sends retried because a pooled keep-alive connection had been closed by the server

    # -- derived (seconds, from the scheduled send time) -------------------------------------------
    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def queue_s(self) -> float:
        return self.sent_t - self.scheduled_t

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_t is None else self.first_t - self.scheduled_t

    @property
    def ttfat_s(self) -> float | None:
        return None if self.first_answer_t is None else self.first_answer_t - self.scheduled_t

    @property
    def e2e_s(self) -> float:
        return self.end_t - self.scheduled_t

    @property
    def tpot_s(self) -> float | None:
        n = self.output_tokens
        if not n or n < 2 or self.first_t is None:
            return None
        return (self.end_t - self.first_t) / (n - 1)

    def itl_s(self) -> list[float]:
        """One gap per token after the first output chunk; a chunk of k tokens contributes k × gap/k."""
        out: list[float] = []
        for i in range(1, len(self.chunk_times)):
            k = self.chunk_tokens[i]
            if k <= 0:
                continue
            gap = self.chunk_times[i] - self.chunk_times[i - 1]
            out.extend([gap / k] * k)
        return out

    def to_json(self, t0: float) -> dict[str, Any]:
        d = asdict(self)
        d["chunk_times"] = [round(t - t0, 6) for t in self.chunk_times]
        for k in ("scheduled_t", "sent_t", "first_t", "first_answer_t", "end_t"):
            d[k] = None if d[k] is None else round(d[k] - t0, 6)
        d.update(queue_s=self.queue_s, ttft_s=self.ttft_s, ttfat_s=self.ttfat_s, e2e_s=self.e2e_s, tpot_s=self.tpot_s)
        return d


def request_id(i: int) -> str:
    """A UUID4-shaped X-Request-Id (llama-cpp-python's server rejects any other shape with HTTP 400)."""
    return str(uuid.UUID(int=i, version=4))


def allocate_tokens(total: int, chars: list[int]) -> list[int]:
    """Split `total` tokens over chunks in proportion to their characters (largest remainder)."""
    n_chars = sum(chars)
    if not chars:
        return []
    if n_chars == 0:
        base = [total // len(chars)] * len(chars)
        base[-1] += total - sum(base)
        return base
    exact = [total * c / n_chars for c in chars]
    out = [int(x) for x in exact]
    order = sorted(range(len(chars)), key=lambda i: exact[i] - out[i], reverse=True)
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out


# A server may close an idle keep-alive connection without saying so (llama-server does, between streamed
# responses); aiohttp then hands the dead connection to the next request, which fails before any response byte.
# Such a send is retried on a fresh connection and counted in `reconnects`, not as a failure of the server.
# Each failed attempt discards the dead connection it drew, and the pool can hold one idle connection per earlier
# concurrent request: at concurrency 16 a send drew two dead ones in a row and failed with a limit of 2 (make test,
# 2026-12-02). A refused connection (ClientConnectorError) is never retried, so a dead server still fails at once.
_STALE_CONNECTION = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)
MAX_RECONNECTS = 64


async def _post_fresh_if_stale(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any], headers: dict[str, str], rec: RequestRecord
) -> aiohttp.ClientResponse:
    while True:
        try:
            return await session.post(url, json=body, headers=headers)
        except aiohttp.ClientConnectorError:
            raise  # nothing was ever connected: a real connect failure
        except _STALE_CONNECTION:
            if rec.reconnects >= MAX_RECONNECTS:
                raise
            rec.reconnects += 1


async def send_request(
    session: aiohttp.ClientSession,
    base_url: str,
    api: Api,
    path: str,
    body: dict[str, Any],
    rec: RequestRecord,
    headers: dict[str, str] | None = None,
    count_tokens: Callable[[str], int] | None = None,
) -> RequestRecord:
    """Stream one request into `rec`; never raises for a failed request, it is classified instead."""
    texts: list[str] = []
    chunk_known: list[int | None] = []
    usage: dict[str, Any] | None = None
    saw_end = False
    perf = time.perf_counter
    is_ollama = api.startswith("ollama")

    def take(ch: Chunk, t: float) -> bool:
        nonlocal usage, saw_end
        if ch.error:
            rec.status = "stream_error" if ch.error.startswith("malformed") else "in_band_error"
            rec.error = ch.error
            return False
        if ch.usage and any(v is not None for v in ch.usage.values()):
            usage = ch.usage
        if ch.done:
            saw_end = True
        if ch.has_output:
            if rec.first_t is None:
                rec.first_t = t
            if ch.content and rec.first_answer_t is None:
                rec.first_answer_t = t
            rec.chunk_times.append(t)
            texts.append(ch.content + ch.reasoning)
            chunk_known.append(ch.n_tokens)
        return True

    hdrs = {"X-Request-Id": request_id(rec.id), **(headers or {})}
    rec.sent_t = perf()
    try:
        async with await _post_fresh_if_stale(session, base_url + path, body, hdrs, rec) as resp:
            rec.http_status = resp.status
            if resp.status >= 400:
                detail = (await resp.text())[:200]
                rec.status = "http_5xx" if resp.status >= 500 else "http_4xx"
                rec.error = f"HTTP {resp.status}: {detail}"
                rec.end_t = perf()
                return rec
            if is_ollama:
                buf = b""
                async for raw in resp.content.iter_any():
                    t = perf()
                    buf += raw
                    *lines, buf = buf.split(b"\n")
                    for line in lines:
                        if not take(parse_ollama_line(line.decode("utf-8", errors="replace")), t):
                            rec.end_t = perf()
                            return rec
                if buf.strip() and not take(parse_ollama_line(buf.decode("utf-8", errors="replace")), perf()):
                    rec.end_t = perf()
                    return rec
            else:
                dec = SSEDecoder()
                async for raw in resp.content.iter_any():
                    t = perf()
                    for data in dec.feed(raw):
                        if not take(parse_openai_event(data), t):
                            rec.end_t = perf()
                            return rec
                for data in dec.flush():
                    take(parse_openai_event(data), perf())
            rec.end_t = perf()
    except aiohttp.ClientConnectorError as exc:
        rec.status, rec.error, rec.end_t = "connect", str(exc), perf()
        return rec
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        rec.status, rec.error, rec.end_t = "timeout", f"timed out: {exc}", perf()
        return rec
    except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
        rec.status, rec.error, rec.end_t = "stream_error", f"{type(exc).__name__}: {exc}", perf()
        return rec
    if not saw_end:
        rec.status, rec.error = "stream_error", "stream ended before its terminator ([DONE] / done:true)"
        return rec
    rec.output_chars = sum(len(t) for t in texts)
    if usage:
        rec.prompt_tokens = usage.get("prompt_tokens")
        rec.output_tokens = usage.get("completion_tokens")
    if rec.output_tokens is not None:
        rec.tokens_source = "usage"
    elif count_tokens is not None:
        rec.output_tokens, rec.tokens_source = count_tokens("".join(texts)), "tokenizer"
    else:
        rec.output_tokens, rec.tokens_source = len(texts), "chunks"
    if all(k is not None for k in chunk_known) and chunk_known:
        rec.chunk_tokens = [int(k or 0) for k in chunk_known]
    else:
        rec.chunk_tokens = allocate_tokens(rec.output_tokens or 0, [len(t) for t in texts])
    return rec
