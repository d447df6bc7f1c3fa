"""The `selfhost` command: a thin layer that parses options, calls one library function, prints."""

from __future__ import annotations

import importlib
import sys
import traceback
from collections.abc import Sequence

import click

from selfhost import __version__
from selfhost.cli.guards import guard_commands
from selfhost.cli.output import print_json, printed_json
from selfhost.errors import debug_enabled, describe

__all__ = ["cli", "main"]


# Each command's module is imported only when that command runs (or help lists them all): a command pays for its
# own imports, not for every other command's: a rejected option exits in 0.13 s instead of 0.30 s here.
COMMANDS: dict[str, tuple[str, str]] = {
    "bench": ("selfhost.cli.bench", "bench"),
    "check": ("selfhost.cli.check", "check"),
    "context": ("selfhost.cli.context", "context"),
    "cost": ("selfhost.cli.cost", "cost"),
    "data": ("selfhost.cli.data", "data"),
    "fit": ("selfhost.cli.fit", "fit"),
    "info": ("selfhost.cli.info", "info"),
    "mock-server": ("selfhost.cli.serve", "mock_server"),
    "models": ("selfhost.cli.info", "models"),
    "plan": ("selfhost.cli.plan", "plan"),
    "quant": ("selfhost.cli.quant", "quant"),
    "serve": ("selfhost.cli.serve", "serve"),
    "template": ("selfhost.cli.template", "template"),
    "tune": ("selfhost.cli.tune", "tune"),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attr = COMMANDS[cmd_name]
            cmd: click.Command = getattr(importlib.import_module(module), attr)
            guard_commands(cmd, cmd_name)
            self.add_command(cmd, cmd_name)
        return self.commands.get(cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="selfhost")
def cli() -> None:
    """Measured answers for self-hosted LLMs: will it fit, which quantization, how fast, what it costs.

    MODEL is `embedded` (the default: SmolLM2-135M-Instruct shipped as a package), a path to a GGUF
    file, a Hugging Face model directory, `ollama:NAME[:TAG]` or a catalog name (`selfhost models --catalog`).
    """


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
