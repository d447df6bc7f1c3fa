"""Every command fed hostile input as a user would: a real `selfhost` process per case, run concurrently.

Each case runs in its own process, forked from a server that has already imported selfhost (tests/hostile/forked.py).
Each case must: finish within 10 s, print no traceback, exit with its documented code (never 1 or 70 for bad
input), leave every input file byte-for-byte unchanged, and with --json print exactly one JSON object (with
`error` and the exit code on failure, and no NaN or Infinity)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from selfhost.cli.guards import numeric_params, range_for
from selfhost.cli.main import cli
from tests.hostile.cases import BASE, Case, fixed_cases, option_cases
from tests.hostile.forked import context, run_case
from tests.hostile.inputs import make_inputs

CASE_TIMEOUT_S = 10.0


def _numeric_options() -> list[tuple[str, str, float, float, bool]]:
    out = []
    for path, _cmd, param in numeric_params(cli):
        found = range_for(path, param)
        assert found is not None, f"{path} {param.opts}: numeric option without a range in cli/guards.py"
        rng, _ = found
        inner = getattr(param.type, "inner", param.type)
        out.append((path, max(param.opts, key=len), rng.lo, rng.hi, isinstance(inner, click.types.IntParamType)))
    return out


CASES: list[Case] = [*option_cases(_numeric_options()), *fixed_cases()]


@dataclass
class Outcome:
    rc: int | None
    stdout: str
    stderr: str
    seconds: float
    changed: list[str]
    argv: list[str]


def _digest(p: Path) -> str:
    if p.is_dir():
        return "|".join(f"{q.name}:{_digest(q)}" for q in sorted(p.iterdir()) if q.is_file())
    return hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else "missing"


class _ClosingServer:
    """Accepts every connection and hangs up at once: a server that died mid-request."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.stop = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            try:
                conn.recv(65536)
            except OSError:
                pass
            conn.close()


def _fill(arg: str, values: dict[str, str]) -> str:
    return re.sub(r"\{([^{}]+)\}", lambda m: values[m.group(1)], arg)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Outcome]]:
    root = tmp_path_factory.mktemp("hostile")
    inputs = make_inputs(root / "in")
    closing = _ClosingServer()
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    values = {
        **{k: str(v) for k, v in inputs.items()},
        "refused": f"http://127.0.0.1:{_free_port()}",
        "closing": f"http://127.0.0.1:{closing.port}",
        "busy_port": str(busy.getsockname()[1]),
    }
    env = {**os.environ, "SELFHOST_CACHE": str(root / "cache"), "COLUMNS": "200"}
    env.pop("SELFHOST_DEBUG", None)

    def run(case: Case) -> Outcome:
        out = root / "out" / case.id.replace(":", "_").replace("/", "_")
        out.mkdir(parents=True)
        if case.setup:
            how, src, name = case.setup.split(":")
            {"hardlink": os.link, "symlink": os.symlink, "copy": shutil.copyfile}[how](inputs[src], out / name)
        argv = [_fill(a, {**values, "out": str(out)}) for a in case.argv]
        used = [inputs[k] for k in inputs if any("{" + k + "}" in a for a in case.argv)]
        used += [p for p in out.iterdir()]
        before = {str(p): _digest(p) for p in used}
        start = time.perf_counter()
        # Its own session, so a case that hangs is killed with everything it started (servers included).
        so_path, se_path, rc_path = (out.parent / f"{out.name}.{x}" for x in ("stdout", "stderr", "rc"))
        proc = ctx.Process(target=run_case, args=(argv, env, str(so_path), str(se_path), str(rc_path)))
        proc.start()
        proc.join(CASE_TIMEOUT_S)
        rc: int | None = int(rc_path.read_text()) if rc_path.exists() else proc.exitcode
        if rc is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.join()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything it left running
        proc.close()
        so = so_path.read_text(errors="replace")
        se = se_path.read_text(errors="replace")
        seconds = time.perf_counter() - start
        changed = [p for p, h in before.items() if _digest(Path(p)) != h]
        return Outcome(rc, so, se, seconds, changed, argv)

    ctx = context()
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = dict(zip([c.id for c in CASES], pool.map(run, CASES), strict=True))
    closing.stop = True
    time.sleep(0.3)
    closing.sock.close()
    busy.close()
    yield results


def test_enough_cases_over_every_command() -> None:
    assert len(CASES) >= 300
    assert len({c.id for c in CASES}) == len(CASES), "case ids must be unique"
    commands = {" ".join(a for a in c.argv[:2] if not a.startswith(("{", "-"))) for c in CASES}
    for cmd in BASE:
        assert any(x.startswith(cmd.split()[0]) for x in commands), cmd


def _json_strict(text: str) -> object:
    def refuse(name: str) -> None:
        raise ValueError(f"{name} in JSON output")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case: Case, outcomes: dict[str, Outcome]) -> None:
    o = outcomes[case.id]
    where = f"selfhost {' '.join(o.argv)}\nstdout: {o.stdout[-800:]}\nstderr: {o.stderr[-800:]}"
    assert o.rc is not None, f"did not finish within {CASE_TIMEOUT_S} s: {where}"
    assert "Traceback" not in o.stderr + o.stdout, where
    assert not o.changed, f"inputs changed: {o.changed}\n{where}"
    assert o.rc == case.exit, f"exit {o.rc}, expected {case.exit}: {where}"
    assert o.rc not in (1, 70), where
    if o.rc != 0:
        assert "error" in o.stderr.lower(), where
    if "--json" in case.argv:
        doc = _json_strict(o.stdout)
        assert isinstance(doc, dict), where
        if o.rc != 0:
            assert doc["error"]["exit_code"] == o.rc and doc["error"]["message"], where


def test_cases_are_quick(outcomes: dict[str, Outcome]) -> None:
    slow = {k: round(o.seconds, 1) for k, o in outcomes.items() if o.seconds > CASE_TIMEOUT_S}
    assert not slow
