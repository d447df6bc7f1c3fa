"""`selfhost bench` through the real command: JSON contract, bad targets, compare, Ctrl-C, a real server."""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from tests.cli.test_info_cli import _one_line_error, run
from tests.helpers import has_lines, interrupt_when

CONTRACT = ["requests", "ttft_s", "itl_s", "tpot_s", "e2e_s", "output_tokens_per_s", "requests_per_s", "records_path"]


def test_json_contract_and_records(mock_server: Callable[..., str], tmp_path: Path) -> None:
    url = mock_server("--ttft", "0.05", "--itl", "0.005")
    out = tmp_path / "req.jsonl"
    r = run(
        "bench", url, "--concurrency", "4", "--requests", "20", "--output-tokens", "8", "--records", str(out), "--json"
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert set(CONTRACT) <= set(d)
    for m in ("ttft_s", "itl_s", "tpot_s", "e2e_s"):
        assert set(d[m]) >= {"p50", "p90", "p99", "mean", "max"}
    assert d["requests"]["completed"] == 20 and set(d["requests"]["failed_by_class"]) == {
        "connect",
        "timeout",
        "http_4xx",
        "http_5xx",
        "stream_error",
        "in_band_error",
    }
    assert d["records_path"] == str(out) and len(out.read_text().splitlines()) == 20


def test_sweep_and_compare(mock_server: Callable[..., str], tmp_path: Path) -> None:
    url = mock_server("--ttft", "0.02", "--itl", "0.002")
    r = run(
        "bench",
        url,
        "--concurrency",
        "1,4",
        "--requests",
        "12",
        "--output-tokens",
        "4",
        "--records",
        str(tmp_path / "r.jsonl"),
        "--json",
    )
    d = json.loads(r.stdout)
    assert [x["load"]["concurrency"] for x in d["runs"]] == [1, 4]
    assert (tmp_path / "r-concurrency1.jsonl").exists() and (tmp_path / "r-concurrency4.jsonl").exists()
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(d["runs"][0]))
    b.write_text(json.dumps(d["runs"][1]))
    c = json.loads(run("bench", "compare", str(a), str(b), "--json").stdout)
    assert c["metrics"]["requests_per_s"] == [d["runs"][0]["requests_per_s"], d["runs"][1]["requests_per_s"]]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def html_server() -> Iterator[str]:
    """Any web server that is not an LLM server."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>hello</html>")

        def log_message(self, *args: object) -> None:
            pass

    srv = HTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_bad_targets(mock_server: Callable[..., str], html_server: str, tmp_path: Path) -> None:
    rec = ["--records", str(tmp_path / "r.jsonl"), "--requests", "2"]
    err = _one_line_error(run("bench", f"http://127.0.0.1:{_closed_port()}", *rec))
    assert "cannot connect" in err and "selfhost serve" in err
    url = mock_server("--api-key", "sekrit")
    err = _one_line_error(run("bench", url, *rec))
    assert "needs an API key" in err and "--api-key" in err
    assert json.loads(run("bench", url, "--api-key", "sekrit", "--json", *rec).stdout)["requests"]["completed"] == 2
    err = _one_line_error(run("bench", url + "/wrong/path", "--api-key", "sekrit", *rec))
    assert "404" in err and "base URL" in err
    err = _one_line_error(run("bench", html_server, *rec))
    assert "not an LLM server" in err
    assert "not a URL" in _one_line_error(run("bench", "localhost:8000", *rec))


def test_ctrl_c_keeps_every_finished_request(mock_server: Callable[..., str], tmp_path: Path) -> None:
    url = mock_server("--ttft", "0.05", "--itl", "0.01")
    out = tmp_path / "r.jsonl"
    partial = out.with_name(f".{out.name}.partial")  # records stream there until the run ends (files.py)
    p = interrupt_when(
        [
            sys.executable,
            "-m",
            "selfhost",
            "bench",
            url,
            "--concurrency",
            "4",
            "--requests",
            "100000",
            "--output-tokens",
            "8",
            "--records",
            str(out),
            "--json",
        ],
        has_lines(partial, 20),
        within_s=30,
        finish_s=30,
    )
    stdout, stderr = p.stdout, p.stderr
    assert p.returncode == 130, stderr
    assert "Traceback" not in stderr
    summary = json.loads(stdout)
    assert summary["interrupted"] is True
    lines = out.read_text().splitlines()
    assert summary["requests"]["total"] == len(lines) >= 20  # the summary covers exactly what was recorded


def test_slo_search_finds_the_knee(mock_server: Callable[..., str], tmp_path: Path) -> None:
    """Each request holds the server 0.1 + 9·0.01 ≈ 0.19 s and the client allows 4 in flight: ~21 req/s of
    capacity. Above it, requests wait for a slot, and TTFT (counted from the schedule) blows past 0.3 s."""
    url = mock_server("--ttft", "0.1", "--itl", "0.01")
    r = run(
        "bench",
        url,
        "--rate",
        "8",
        "--max-concurrency",
        "4",
        "--requests",
        "40",
        "--output-tokens",
        "10",
        "--slo",
        "ttft_p99=0.3",
        "--search-max",
        "64",
        "--records",
        str(tmp_path / "r.jsonl"),
        "--json",
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)["slo_search"]
    assert d["best_level"] is not None and 8 <= d["best_level"] <= 24, d
    assert d["first_failing_level"] is not None and d["first_failing_level"] > d["best_level"]


def test_multi_turn_and_shared_prefix_workloads(mock_server: Callable[..., str], tmp_path: Path) -> None:
    from selfhost.bench.workload import multi_turn_prompts, synthetic_prompts

    convs = multi_turn_prompts(6, turns=3, input_tokens=10, output_tokens=5)
    assert [len(p.content) for p in convs] == [1, 3, 5, 1, 3, 5]  # history grows by an exchange per turn
    assert convs[1].content[:1] == convs[0].content  # a turn starts with the previous one's messages
    shared = synthetic_prompts(3, input_tokens=40, output_tokens=4, shared_prefix_tokens=20)
    prefixes = {" ".join(str(p.content).split()[:20]) for p in shared}
    assert len(prefixes) == 1 and len({p.content for p in shared}) == 3
    url = mock_server("--ttft", "0.01", "--itl", "0.001")
    d = json.loads(
        run(
            "bench",
            url,
            "--multi-turn",
            "3",
            "--requests",
            "9",
            "--concurrency",
            "3",
            "--records",
            str(tmp_path / "r.jsonl"),
            "--json",
        ).stdout
    )
    assert d["requests"]["completed"] == 9 and d["workload"]["multi_turn"] == 3


def test_a_search_and_a_sweep_never_send_a_prompt_twice(mock_server: Callable[..., str], tmp_path: Path) -> None:
    """A server's prompt cache answers a repeated prompt without computing it: when an SLO search or a sweep sent
    the same synthetic prompts at every level, its later levels ran 2.5× faster than fresh traffic would (llama-server,
    the embedded model, 2026-12-02). Each run starts past the prompts the runs before it sent, warm-ups included."""
    import urllib.request

    url = mock_server("--ttft", "0.01", "--itl", "0.001")
    common = ["--output-tokens", "2", "--input-tokens", "16", "--records", str(tmp_path / "r.jsonl"), "--json"]
    r = run("bench", url, "--concurrency", "1,2,4", "--requests", "6", *common)
    assert r.returncode == 0, r.stderr
    r = run("bench", url, "--rate", "20", "--requests", "6", "--slo", "ttft_p99=5", "--search-max", "80", *common)
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["runs"]) == 3  # 20, 40, 80 requests/s
    with urllib.request.urlopen(url + "/mock/requests") as resp:
        sent = [x["prompt_sha1"] for x in json.loads(resp.read())]
    assert len(sent) >= 6 * 6  # six runs of six requests (and their warm-ups)
    # The sweep's prompts are all distinct, and so are the search's; the two commands are separate workloads that
    # start at the same place (the same seed), so each repeats the other's, never its own.
    assert len(set(sent)) == len(sent) // 2 and all(sent.count(h) == 2 for h in sent)
