"""`selfhost data clean` and `selfhost data split`: new files and a log; the input file is never modified."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from selfhost.data.check import CheckOptions, check_dataset
from selfhost.data.codes import DROP_CODES
from selfhost.data.read import read_rows
from selfhost.errors import UsageError
from selfhost.files import atomic_output, read_text, refuse_overwriting_inputs

__all__ = ["DROP_CODES", "clean_dataset", "split_dataset"]


def _raw_rows(path: Path) -> dict[int, Any]:
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return {i: line for i, line in enumerate(read_text(path).split("\n"), 1) if line.strip()}
    return {r.line: json.dumps(r.data, ensure_ascii=False) for r in read_rows(path) if r.data is not None}


def clean_dataset(
    path: Path,
    out: Path,
    log: Path,
    opts: CheckOptions | None = None,
    eval_path: Path | None = None,
    drop_codes: tuple[str, ...] = DROP_CODES,
    policy: str = "keep-one",
) -> dict[str, Any]:
    """policy 'keep-one' keeps the first row of each duplicate cluster; 'drop' removes every member."""
    inputs = {"FILE": path, "--eval": eval_path}
    refuse_overwriting_inputs({"--out": out, "--log": log}, inputs)
    if policy not in ("keep-one", "drop"):
        raise UsageError(f"unknown policy {policy!r}", "use keep-one or drop")
    report = check_dataset(path, opts, eval_path)
    reasons: dict[int, list[str]] = {}
    if policy == "drop":
        for cluster in report.clusters:
            reasons.setdefault(cluster[0], []).append(
                f"near_duplicate: first of a cluster of {len(cluster)} (policy drop)"
            )
        for first in set(report.duplicate_of.values()):
            reasons.setdefault(first, []).append("exact_duplicate: has duplicates (policy drop)")
    for f in report.findings:
        if f.code in drop_codes:
            reasons.setdefault(f.line, []).append(f"{f.code}: {f.message}")
    raw = _raw_rows(path)
    kept = 0
    with atomic_output(out) as fo, atomic_output(log) as fl:
        for line in sorted(set(raw) | set(reasons)):
            if line in reasons:
                fl.write(json.dumps({"line": line, "reasons": reasons[line]}, ensure_ascii=False) + "\n")
            elif line in raw:
                fo.write(raw[line] + "\n")
                kept += 1
    return {
        "policy": policy,
        "input_rows": report.rows,
        "kept": kept,
        "removed": len(reasons),
        "out": str(out),
        "log": str(log),
        "removed_by_code": {
            c: sum(1 for r in reasons.values() if any(x.startswith(c + ":") for x in r)) for c in drop_codes
        },
    }


def split_dataset(
    path: Path,
    train_out: Path,
    eval_out: Path,
    eval_fraction: float = 0.1,
    seed: int = 0,
    opts: CheckOptions | None = None,
) -> dict[str, Any]:
    """A split with no leakage: exact duplicates and near-duplicate clusters always land on the same side."""
    if not 0 < eval_fraction < 1:
        raise UsageError(f"eval fraction must be between 0 and 1, got {eval_fraction}")
    refuse_overwriting_inputs({"--train": train_out, "--eval": eval_out}, {"FILE": path})
    report = check_dataset(path, opts)
    raw = _raw_rows(path)
    group_of: dict[int, int] = {line: line for line in raw}
    for cluster in report.clusters:
        for line in cluster:
            group_of[line] = cluster[0]
    for line, first in report.duplicate_of.items():
        group_of[line] = group_of.get(first, first)
    groups: dict[int, list[int]] = {}
    for line, g in group_of.items():
        groups.setdefault(g, []).append(line)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    target = round(len(raw) * eval_fraction)
    eval_lines: set[int] = set()
    for k in keys:
        if len(eval_lines) >= target:
            break
        eval_lines.update(groups[k])
    with atomic_output(train_out) as ft, atomic_output(eval_out) as fe:
        for line in sorted(raw):
            (fe if line in eval_lines else ft).write(raw[line] + "\n")
    return {
        "rows": len(raw),
        "train": len(raw) - len(eval_lines),
        "eval": len(eval_lines),
        "groups_kept_together": sum(1 for g in groups.values() if len(g) > 1),
    }
