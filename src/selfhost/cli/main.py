"""The `selfhost` command: a thin layer that parses options, calls one library function, prints."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence

import click

from selfhost import __version__
from selfhost.cli.guards import guard_commands
from selfhost.cli.output import print_json, printed_json
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
    from selfhost.cli import bench, check, context, cost, data, fit, info, quant, serve, template, tune

    cli.add_command(bench.bench)
    cli.add_command(serve.serve)
    cli.add_command(serve.mock_server)
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
    guard_commands(cli)


_register()


def _wants_json(argv: Sequence[str]) -> bool:
    args = list(argv)
    return "--json" in (args[: args.index("--")] if "--" in args else args)


def _fail(message: str, next_step: str | None, code: int, as_json: bool) -> int:
    sys.stderr.write(f"selfhost: error: {message}\n")
    if next_step:
        sys.stderr.write(f"  next: {next_step}\n")
    if as_json and not printed_json():  # --json promises one JSON object on stdout, failures included
        error = {"message": message, "next_step": next_step, "exit_code": code}
        print_json({"error": error, **({"interrupted": True} if code == 130 else {})})
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = list(argv) if argv is not None else sys.argv[1:]
    as_json = _wants_json(args)
    try:
        cli.main(args=args, prog_name="selfhost", standalone_mode=False)
        return 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:  # bad usage: the same one-line form as every other error
        ctx = getattr(exc, "ctx", None)
        where = f"selfhost {ctx.command_path.split(' ', 1)[1]} --help" if ctx and " " in ctx.command_path else None
        return _fail(exc.format_message(), f"see `{where or 'selfhost --help'}`", exc.exit_code, as_json)
    except click.exceptions.Abort:
        return _fail("interrupted", "results written so far are kept", 130, as_json)
    except BaseException as exc:  # the one place every failure becomes a message
        if isinstance(exc, SystemExit):
            return int(exc.code or 0) if not isinstance(exc.code, str) else 1
        msg = describe(exc)
        if debug_enabled():
            traceback.print_exc()
        return _fail(msg.message, msg.next_step, msg.exit_code, as_json)


if __name__ == "__main__":
    raise SystemExit(main())
