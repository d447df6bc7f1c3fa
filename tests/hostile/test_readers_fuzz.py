"""Every file reader, fed generated garbage in-process (hypothesis): it returns data or raises a SelfhostError
that names the file — never another exception, whatever the bytes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selfhost.bench.workload import jsonl_prompts, trace_prompts
from selfhost.data.read import read_rows
from selfhost.errors import SelfhostError
from selfhost.evals.suite import load_suite
from selfhost.files import parse_json, read_text
from selfhost.models.resolve import resolve_model
from selfhost.template.render import render_chat
from tests.hostile.inputs import _gguf

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
messy_bytes = st.one_of(
    st.binary(max_size=400),
    st.text(max_size=300).map(lambda t: t.encode("utf-8")),
    st.lists(
        st.sampled_from(
            [
                b"{",
                b"}",
                b"[",
                b"]",
                b'"',
                b":",
                b",",
                b"\n",
                b"\r\n",
                b"NaN",
                b"1e999",
                b"\xff",
                b'"timestamp"',
                b'"prompt"',
                b'"messages"',
                b'"checks"',
                b"0",
                b"-1",
            ]
        ),
        max_size=80,
    ).map(b"".join),
)


def _only_selfhost_errors(fn, *args):  # type: ignore[no-untyped-def]
    try:
        return fn(*args)
    except SelfhostError as exc:
        assert exc.message
        return None


@FUZZ
@given(data=messy_bytes)
def test_parse_json_never_raises_anything_else(data: bytes) -> None:
    _only_selfhost_errors(parse_json, data.decode("utf-8", "replace"), "fuzz")


@FUZZ
@given(data=messy_bytes, suffix=st.sampled_from([".jsonl", ".json", ".csv", ".parquet", ".txt"]))
def test_dataset_reader(tmp_path: Path, data: bytes, suffix: str) -> None:
    p = tmp_path / f"f{suffix}"
    p.write_bytes(data)
    _only_selfhost_errors(lambda: list(read_rows(p)))


@FUZZ
@given(data=messy_bytes)
def test_prompt_and_trace_readers(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "w.jsonl"
    p.write_bytes(data)
    _only_selfhost_errors(jsonl_prompts, p, 16)
    _only_selfhost_errors(trace_prompts, p)


@FUZZ
@given(rows=st.lists(json_like, max_size=4))
def test_suite_reader_on_json_values(tmp_path: Path, rows: list[object]) -> None:
    import json

    p = tmp_path / "s.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in rows))
    _only_selfhost_errors(load_suite, p)


@FUZZ
@given(data=messy_bytes)
def test_text_reader_keeps_bytes_or_names_the_offset(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "t.txt"
    p.write_bytes(data)
    text = _only_selfhost_errors(read_text, p)
    if text is not None:
        assert text.encode("utf-8") == data.removeprefix(b"\xef\xbb\xbf")  # CRLF and all, as written


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _gguf(tmp_path_factory.mktemp("g") / "tiny.gguf").read_bytes()


@FUZZ
@given(cuts=st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), min_size=1, max_size=6))
def test_damaged_gguf(tmp_path: Path, tiny_gguf: bytes, cuts: list[tuple[int, int]]) -> None:
    raw = bytearray(tiny_gguf)
    for pos, value in cuts:
        raw[pos % len(raw)] = value
    p = tmp_path / "m.gguf"
    p.write_bytes(bytes(raw))
    _only_selfhost_errors(resolve_model, str(p))


PIECES = [
    "{% for i in range(1000) %}",
    "{% endfor %}",
    "{{ i }}",
    "{{ messages[0]['content'] * 1000 }}",
    "{% if x %}",
    "{% endif %}",
    "{{ 'ab' ~ 'cd' }}",
    "{% set ns = namespace(v='x') %}",
    "{% set ns.v = ns.v ~ ns.v %}",
    "{{ ns.v|length }}",
    "{% macro m(n) %}{{ m(n) }}{% endmacro %}",
    "{{ m(1) }}",
    "{{ 9 ** 99999 }}",
    "{{ loop.index }}",
    "{{ raise_exception('no') }}",
    "{{ 'x'|center(100) }}",
    "{{ (messages|tojson) }}",
    "text",
]


@FUZZ
@given(parts=st.lists(st.sampled_from(PIECES), max_size=12))
def test_generated_templates_end_quickly(parts: list[str]) -> None:
    start = time.perf_counter()
    out = _only_selfhost_errors(lambda: render_chat("".join(parts), [{"role": "user", "content": "hello"}]))
    assert time.perf_counter() - start < 8.0
    assert out is None or len(out) <= 16 << 20
