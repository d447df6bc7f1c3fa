"""JSON as selfhost writes it (stdout with --json, report.json, records): never NaN or Infinity, which are not
JSON and which strict parsers (jq, JavaScript, Go) reject; a value that is not finite is written as null."""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["finite", "dumps"]


def finite(value: Any) -> Any:
    """`value` with every NaN or infinite float replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def dumps(value: Any, indent: int | None = None) -> str:
    return json.dumps(finite(value), indent=indent, default=str, allow_nan=False)
