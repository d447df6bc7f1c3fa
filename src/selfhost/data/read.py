"""Rows of a dataset file with their line/row numbers: JSONL, JSON (a list), CSV, Parquet (needs pyarrow).
A malformed line is reported, not fatal: the rest of the file is still read."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfhost.errors import MissingDependencyError, ModelNotFoundError, UsageError
from selfhost.files import BadInputError, parse_json, read_json, read_text

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
        for i, line in enumerate(read_text(path).split("\n"), 1):
            if not line.strip():
                continue
            try:
                obj = parse_json(line, f"{path}:{i}")
            except BadInputError as exc:
                yield Row(i, None, exc.reason)
                continue
            yield Row(i, obj, None) if isinstance(obj, dict) else Row(i, None, "not a JSON object")
    elif suffix == ".json":
        data = read_json(path)
        if not isinstance(data, list):
            raise UsageError(f"{path} must hold a JSON list of examples")
        for i, obj in enumerate(data, 1):
            yield Row(i, obj, None) if isinstance(obj, dict) else Row(i, None, "not a JSON object")
    elif suffix == ".csv":
        yield from _csv_rows(path)
    elif suffix == ".parquet":
        yield from _parquet_rows(path)
    else:
        raise UsageError(f"{path}: unknown dataset format {suffix!r}", "use .jsonl, .json, .csv or .parquet")


def _csv_rows(path: Path) -> Iterator[Row]:
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    try:
        header = next(reader, None)
        if header is None:
            return
        for rec in reader:
            if not rec:
                continue
            line = reader.line_num
            if len(rec) != len(header):
                raise BadInputError(
                    f"{path}:{line}", f"{len(rec)} fields where the header has {len(header)}", "fix the row's quoting"
                )
            yield Row(line, dict(zip(header, rec, strict=True)), None)
    except csv.Error as exc:
        raise BadInputError(f"{path}:{reader.line_num}", f"not valid CSV ({exc})") from None


def _parquet_rows(path: Path) -> Iterator[Row]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependencyError("reading Parquet needs pyarrow", "pip install pyarrow") from None
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PAR1":
        raise BadInputError(str(path), "not a Parquet file (no PAR1 magic bytes)", "check the file's extension")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises its own ArrowInvalid/OSError family for damaged files
        raise BadInputError(str(path), f"damaged Parquet file ({exc})") from None
    for i, rec in enumerate(table.to_pylist(), 1):
        yield Row(i, rec, None)
