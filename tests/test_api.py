"""The Python API: `__all__` is what it says, and the README's examples run as written (the bench example
against selfhost's mock server, its URL put in place of the README's)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import selfhost.api as sh
from selfhost.errors import SelfhostError
from tests.helpers import mock_server_process

README = Path(__file__).resolve().parents[1] / "README.md"


def _examples() -> list[str]:
    text = README.read_text()
    section = text[text.index("### Python API") :]
    section = section[: section.index("\n### ", 4)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_all_names_are_callable() -> None:
    assert sh.__all__ == ["info", "fit", "count_tokens", "render", "check_data", "bench", "cost"]
    assert all(callable(getattr(sh, name)) for name in sh.__all__)


def test_readme_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    examples = _examples()
    assert len(examples) == 3
    monkeypatch.chdir(tmp_path)
    with mock_server_process("--ttft", "0.01", "--itl", "0.001", "--output-tokens", "32") as url:
        for code in examples:
            exec(compile(code.replace('"http://127.0.0.1:8080"', repr(url)), "README.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("True ") and "llama-server -m" in out[0]
    assert out[1].endswith(" prompt tokens") and int(out[1].split()[0]) > 5
    assert float(out[2].split()[0]) > 0 and (tmp_path / "requests.jsonl").exists()
    assert float(out[3]) > 0


def test_api_matches_the_cli_and_raises_selfhost_errors() -> None:
    import json

    from tests.cli.test_info_cli import run

    cli = json.loads(run("fit", "embedded", "--ctx", "2048", "--json").stdout)
    api = sh.fit("embedded", ctx=2048)
    assert {k: api[k] for k in ("total_bytes", "kv_cache_bytes", "weights_bytes")} == {
        k: cli[k] for k in ("total_bytes", "kv_cache_bytes", "weights_bytes")
    }
    assert sh.info()["architecture"] == "llama"
    with pytest.raises(SelfhostError) as err:
        sh.fit("/no/such/model.gguf")
    assert err.value.exit_code == 2
