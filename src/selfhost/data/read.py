"""Rows of a dataset file with their line/row numbers: JSONL, JSON (a list), CSV, Parquet (needs pyarrow).
A malformed line is reported, not fatal: the rest of the file is still read."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfhost.errors import MissingDependencyError, ModelNotFoundError, UsageError

__all__ = ["Row", "read_rows"]


@dataclass
class Row:
    line: int  # 1-based line (JSONL), row (CSV/Parquet, header excluded) or index + 1 (JSON)
    data: dict[str, Any] | None
    error: str | None = None


def read_rows(path: Path) -> Iterator[Row]:
    if not path.exists():
        raise ModelNotFoundError(f"no such file: {path}", "check the path")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        with open(path, encoding="utf-8", errors="replace") as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    yield Row(i, None, f"not valid JSON ({exc.msg} at column {exc.colno})")
                    continue
                yield Row(i, obj, None) if isinstance(obj, dict) else Row(i, None, "not a JSON object")
    elif suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}: not valid JSON at line {exc.lineno} ({exc.msg})") from None
        if not isinstance(data, list):
            raise UsageError(f"{path} must hold a JSON list of examples")
        for i, obj in enumerate(data, 1):
            yield Row(i, obj, None) if isinstance(obj, dict) else Row(i, None, "not a JSON object")
    elif suffix == ".csv":
        with open(path, encoding="utf-8", newline="") as f:
            for i, rec in enumerate(csv.DictReader(f), 1):
                yield Row(i, dict(rec), None)
    elif suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise MissingDependencyError("reading Parquet needs pyarrow", "pip install pyarrow") from None
        for i, rec in enumerate(pq.read_table(path).to_pylist(), 1):
            yield Row(i, rec, None)
    else:
        raise UsageError(f"{path}: unknown dataset format {suffix!r}", "use .jsonl, .json, .csv or .parquet")
