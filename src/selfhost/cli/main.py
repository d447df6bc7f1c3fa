"""The `selfhost` command: a thin layer that parses options, calls one library function, prints."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence

import click

from selfhost import __version__
from selfhost.errors import debug_enabled, describe

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="selfhost")
def cli() -> None:
    """Measured answers for self-hosted LLMs: will it fit, which quantization, how fast, what it costs.

    MODEL is `embedded` (the default: SmolLM2-135M-Instruct shipped as a package), a path to a GGUF
    file, a Hugging Face model directory, `ollama:NAME[:TAG]` or a catalog name (`selfhost models --catalog`).
    """


def _register() -> None:
    from selfhost.cli import bench, check, context, cost, data, fit, info, quant, template, tune

    cli.add_command(bench.bench)
    cli.add_command(bench.serve)
    cli.add_command(bench.mock_server)
    cli.add_command(context.context)
    cli.add_command(data.data)
    cli.add_command(cost.cost)
    cli.add_command(fit.fit)
    cli.add_command(quant.quant)
    cli.add_command(tune.tune)
    cli.add_command(template.template)
    cli.add_command(info.info)
    cli.add_command(info.models)
    cli.add_command(check.check)


_register()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="selfhost", standalone_mode=False)
        return 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        sys.stderr.write("selfhost: interrupted\n")
        return 130
    except BaseException as exc:  # the one place every failure becomes a message
        if isinstance(exc, SystemExit):
            return int(exc.code or 0) if not isinstance(exc.code, str) else 1
        msg = describe(exc)
        if debug_enabled():
            traceback.print_exc()
        sys.stderr.write(f"selfhost: error: {msg.message}\n")
        if msg.next_step:
            sys.stderr.write(f"  next: {msg.next_step}\n")
        return msg.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
