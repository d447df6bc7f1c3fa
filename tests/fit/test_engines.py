"""Engines are a registry: a new engine is one module plus its registration, and fit, its table and its launch
commands pick it up without another change."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfhost.errors import UsageError
from selfhost.fit.engines import base as engines_base
from selfhost.fit.engines import engine_names, get_engine
from selfhost.fit.plan import FitRequest
from selfhost.fit.solve import fit_answer
from selfhost.models.resolve import resolve_model

TOY = '''
from selfhost.fit.engines.base import register
from selfhost.fit.engines.llamacpp import LlamaCppEngine


class ToyEngine(LlamaCppEngine):
    """llama.cpp's memory rules under another name and launch command."""

    name = "toy"

    def launch_command(self, spec, p, req):
        return f"toy-serve --ctx {req.n_ctx}"


register(ToyEngine())
'''


def test_a_new_engine_is_one_module_and_its_registration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "toy_engine.py").write_text(TOY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(engines_base.ENGINE_MODULES, "toy", "toy_engine")
    spec = resolve_model("embedded")
    answer = fit_answer(spec, FitRequest(engine="toy", n_ctx=1024))
    assert answer["engine"] == "toy" and answer["fits"]
    assert answer["launch"]["toy"] == "toy-serve --ctx 1024"
    assert set(answer["launch"]) == set(engine_names()) and "toy" in engine_names()
    same = fit_answer(spec, FitRequest(engine="llama.cpp", n_ctx=1024))
    assert answer["total_bytes"] == same["total_bytes"]  # the same memory rules, inherited
    engines_base._REGISTRY.pop("toy", None)


def test_unknown_engine_lists_the_registry() -> None:
    with pytest.raises(UsageError) as err:
        get_engine("tgi")
    assert "llama.cpp, ollama, vllm" in (err.value.next_step or "")


def test_cli_choices_come_from_the_registry() -> None:
    from selfhost.cli.fit import fit

    engine = next(p for p in fit.params if p.name == "engine")
    assert tuple(engine.type.choices) == engine_names()  # type: ignore[attr-defined]
