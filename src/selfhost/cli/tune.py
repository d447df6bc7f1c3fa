"""`selfhost tune MODEL DATA --out DIR` and `selfhost tune eval --base MODEL --adapter DIR --data FILE`."""

from __future__ import annotations

from pathlib import Path

import click

from selfhost.cli.output import print_json, print_rows, stderr
from selfhost.errors import UsageError


def _conversations(path: Path) -> list[list[dict]]:  # type: ignore[type-arg]
    from selfhost.data.check import Finding, load_examples

    findings: list[Finding] = []
    examples, _, _ = load_examples(path, findings)
    bad = [f for f in findings if f.code in ("malformed_line", "unknown_format")]
    if bad:
        raise UsageError(f"{path}:{bad[0].line}: {bad[0].message}", "run `selfhost data check` and fix the data")
    return [e.messages for e in examples]


@click.command(context_settings={"ignore_unknown_options": False})
@click.argument("model", required=False)
@click.argument("data_file", required=False, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Adapter directory (train).",
)
@click.option("--steps", type=int, default=60, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--rank", type=int, default=8, show_default=True)
@click.option("--alpha", type=int, default=16, show_default=True)
@click.option("--max-seq-len", type=int, default=256, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--checkpoint-every",
    type=int,
    default=50,
    show_default=True,
    help="Steps between checkpoints; a rerun with the same --out resumes, and Ctrl-C saves one.",
)
@click.option(
    "--merge",
    "merge_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write base + adapter merged into one HF model directory here.",
)
@click.option("--base", default=None, help="eval: the base MODEL.")
@click.option(
    "--adapter",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="eval: the adapter directory.",
)
@click.option(
    "--data",
    "eval_data",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="eval: held-out conversations.",
)
@click.option("--json", "as_json", is_flag=True)
def tune(
    model: str | None,
    data_file: Path | None,
    out_dir: Path | None,
    steps: int,
    lr: float,
    rank: int,
    alpha: int,
    max_seq_len: int,
    seed: int,
    checkpoint_every: int,
    merge_dir: Path | None,
    base: str | None,
    adapter: Path | None,
    eval_data: Path | None,
    as_json: bool,
) -> None:
    """LoRA fine-tune MODEL on DATA (loss on assistant tokens, the model's own template); `tune eval` compares
    base and tuned on held-out data."""
    from selfhost.models.resolve import resolve_model

    if model == "eval":
        if base is None or adapter is None or eval_data is None:
            raise UsageError("tune eval needs --base MODEL --adapter DIR --data FILE")
        from selfhost.tune.evaluate import evaluate_adapter

        r = evaluate_adapter(resolve_model(base), adapter, _conversations(eval_data))
        if as_json:
            print_json(r)
        else:
            print_rows(
                "base vs tuned",
                [(k, f"loss {r[k]['loss']:.3f}, pass rate {r[k]['pass_rate']:.0%}") for k in ("base", "tuned")]
                + [("significant improvement", str(r["improvement_significant"]))],
            )
        return
    if data_file is None or out_dir is None:
        raise UsageError("tune needs MODEL DATA --out DIR", "e.g. selfhost tune embedded train.jsonl --out adapter/")
    from selfhost.tune.train import TuneConfig, train_lora

    cfg = TuneConfig(
        steps=steps,
        learning_rate=lr,
        rank=rank,
        alpha=alpha,
        max_seq_len=max_seq_len,
        seed=seed,
        checkpoint_every=checkpoint_every,
    )

    def progress(step: int, total: int, loss: float) -> None:
        if step == total or step % 10 == 0:
            stderr.print(f"step {step}/{total} loss {loss:.4f}")

    spec = resolve_model(model)
    r = train_lora(spec, _conversations(data_file), out_dir, cfg, progress)
    if merge_dir is not None:
        from selfhost.tune.train import merge_adapter

        r["merge"] = merge_adapter(spec, out_dir, merge_dir)
    if as_json:
        print_json(r | {"adapter": str(out_dir)})
    else:
        print_rows(
            "tune",
            [
                ("adapter", str(out_dir)),
                ("examples", str(r["examples"])),
                ("trainable parameters", f"{r['trainable_parameters']:,}"),
                ("train time", f"{r['train_s']:.1f} s"),
            ],
        )
