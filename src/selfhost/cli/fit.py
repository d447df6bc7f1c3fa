"""`selfhost fit MODEL`: will it fit, at which quantization and context, for how many users."""

from __future__ import annotations

from typing import Any

import click

from selfhost.cli.options import config_from, config_options, json_option
from selfhost.cli.output import emit
from selfhost.fit.run import FitOptions


@click.command()
@click.argument("model", required=False)
@config_options(FitOptions)
@json_option
def fit(model: str | None, as_json: bool, **values: Any) -> None:
    """Memory plan for MODEL: weights + KV cache + buffers per device, max context per quantization,
    the recommended configuration, speed ceilings and launch commands."""
    from selfhost.fit.answer_section import fit_answer_sections
    from selfhost.fit.run import fit_model

    answer = fit_model(model, config_from(FitOptions, values))
    emit(answer, fit_answer_sections(answer), as_json)
