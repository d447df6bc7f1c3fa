"""Offline catalog of popular models: published config values, each with the URL it came from."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from selfhost.errors import UnknownModelError
from selfhost.models.hf import spec_from_hf_config
from selfhost.models.spec import ModelSpec

__all__ = ["CatalogEntry", "catalog_entries", "find_entry", "spec_from_catalog"]


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    aliases: tuple[str, ...]
    hf_repo: str
    source_url: str
    parameters: int
    parameters_source: str
    config: dict[str, Any]
    active_parameters: int | None = None
    vision_parameters: int | None = None
    note: str | None = None


@lru_cache(maxsize=1)
def catalog_entries() -> tuple[CatalogEntry, ...]:
    raw = json.loads(resources.files("selfhost.models").joinpath("data/catalog.json").read_text(encoding="utf-8"))
    return tuple(
        CatalogEntry(
            name=e["name"],
            aliases=tuple(e.get("aliases", ())),
            hf_repo=e["hf_repo"],
            source_url=e["source_url"],
            parameters=int(e["parameters"]),
            parameters_source=e["parameters_source"],
            config=e["config"],
            active_parameters=e.get("active_parameters"),
            vision_parameters=e.get("vision_parameters"),
            note=e.get("note"),
        )
        for e in raw["models"]
    )


def _key(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def find_entry(name: str) -> CatalogEntry:
    """Look up by name, alias or Hugging Face repo id; an unknown name lists the closest ones."""
    wanted = _key(name)
    index: dict[str, CatalogEntry] = {}
    for e in catalog_entries():
        for k in (e.name, e.hf_repo, e.hf_repo.split("/")[-1], *e.aliases):
            index.setdefault(_key(k), e)
    if wanted in index:
        return index[wanted]
    close = difflib.get_close_matches(wanted, list(index), n=4, cutoff=0.5)
    names = sorted({index[c].name for c in close})
    hint = f"did you mean {', '.join(names)}?" if names else "run `selfhost models --catalog` for the list"
    raise UnknownModelError(f"unknown model {name!r}: not a file, directory, ollama: tag or catalog name", hint)


def spec_from_catalog(name: str) -> ModelSpec:
    e = find_entry(name)
    spec = spec_from_hf_config(
        e.config,
        name=e.name,
        source="catalog",
        source_url=e.source_url,
        parameters=e.parameters,
        active_parameters=e.active_parameters,
    )
    spec.extra.update({"hf_repo": e.hf_repo, "parameters_source": e.parameters_source})
    if e.vision_parameters:
        spec.extra["vision_parameters"] = e.vision_parameters
    if e.note:
        spec.extra["note"] = e.note
    return spec
