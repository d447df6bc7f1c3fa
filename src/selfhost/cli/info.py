"""`selfhost info MODEL` and `selfhost models`."""

from __future__ import annotations

import click

from selfhost.cli.options import json_option
from selfhost.cli.output import print_json, print_rows, stdout
from selfhost.units import fmt_bytes, fmt_count


@click.command()
@click.argument("model", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (the info contract).")
@click.option("--tensors", is_flag=True, help="Also list every tensor with its type and exact bytes.")
def info(model: str | None, as_json: bool, tensors: bool) -> None:
    """What a model is: architecture, attention facts, tensor types and bytes, tokenizer, template."""
    from selfhost.models.resolve import resolve_model
    from selfhost.models.section import model_section

    spec = resolve_model(model)
    if as_json:
        d = spec.to_dict()
        if tensors:
            d["tensors"] = [vars(t) for t in spec.tensors]
        print_json(d)
        return
    section = model_section(spec)
    rows = list(section.rows)
    for ttype, n in spec.tensor_types.items():
        rows.append((f"tensors {ttype}", f"{n} tensors, {spec.tensor_bytes_by_type[ttype]:,} bytes"))
    rows.extend(("note", n) for n in section.notes)
    print_rows(f"{spec.name}", rows)
    if tensors:
        for t in spec.tensors:
            stdout.print(f"{t.name:48} {t.type:8} {str(t.shape):24} {t.n_bytes:>14,}")


@click.command()
@click.option("--catalog", is_flag=True, help="List the offline catalog of published model configs.")
@json_option
def models(catalog: bool, as_json: bool) -> None:
    """Models available locally (embedded, Ollama store), or the catalog with --catalog."""
    from selfhost.models.listing import list_local_models

    if catalog:
        from selfhost.models.catalog import catalog_entries

        entries = [
            {
                "name": e.name,
                "aliases": list(e.aliases),
                "hf_repo": e.hf_repo,
                "parameters": e.parameters,
                "source_url": e.source_url,
            }
            for e in catalog_entries()
        ]
        if as_json:
            print_json({"catalog": entries})
        else:
            print_rows("catalog", [(e.name, f"{fmt_count(e.parameters)}  {e.hf_repo}") for e in catalog_entries()])
        return
    local = list_local_models()
    if as_json:
        print_json({"models": local})
        return
    if not local:
        stdout.print("no local models found (install the embedded model with `make install`)")
        return
    print_rows("local models", [(m["model"], f"{m['kind']}  {fmt_bytes(m['file_bytes'])}  {m['path']}") for m in local])
