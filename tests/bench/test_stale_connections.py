"""A server that drops each keep-alive connection after one response (as llama-server was seen to, half of
selfhost's requests then failing): every request must still complete, the retries counted as reconnects.

The server here is a few lines of asyncio speaking HTTP/1.1 and OpenAI's streaming format, standing in for the
behaviour, not for any engine: it answers one request per connection without `Connection: close`, so the client
keeps the connection, and closes it when a second request arrives on it."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_info_cli import run

_EVENTS = [
    {"choices": [{"index": 0, "delta": {"role": "assistant"}}]},
    {"choices": [{"index": 0, "delta": {"content": "hello"}}]},
    {"choices": [{"index": 0, "delta": {"content": " there"}, "finish_reason": "stop"}]},
    {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}},
]
_BODY = "".join(f"data: {json.dumps(e)}\n\n" for e in _EVENTS) + "data: [DONE]\n\n"


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    served = 0
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                0,
            )
            await reader.readexactly(length)
            if served:  # a second request on this connection: drop it unanswered
                break
            body = _BODY.encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
            served += 1
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()


@pytest.fixture()
def one_request_per_connection_server() -> Iterator[str]:
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, object] = {}

    async def start() -> None:
        server = await asyncio.start_server(_handle, "127.0.0.1", 0)
        holder["server"] = server
        holder["port"] = server.sockets[0].getsockname()[1]
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True)
    thread.start()
    ready.wait(10)
    yield f"http://127.0.0.1:{holder['port']}"

    async def stop() -> None:
        server = holder["server"]
        server.close()  # type: ignore[attr-defined]

    asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@pytest.mark.parametrize("concurrency", [1, 4])
def test_every_request_completes_and_reconnects_are_counted(
    one_request_per_connection_server: str, tmp_path: Path, concurrency: int
) -> None:
    r = run(
        "bench",
        one_request_per_connection_server,
        "--model",
        "m",
        "--requests",
        "12",
        "--concurrency",
        str(concurrency),
        "--records",
        str(tmp_path / "r.jsonl"),
        "--json",
    )
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["requests"]["completed"] == 12 and s["requests"]["failed"] == 0, s["requests"]
    assert s["requests"]["reconnects"] >= 12 - concurrency  # every reused connection was dead
