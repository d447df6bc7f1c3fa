"""Where selfhost keeps files of its own."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


def cache_dir() -> Path:
    base = os.environ.get("SELFHOST_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache"), "selfhost"
    )
    p = Path(base)
    p.mkdir(parents=True, exist_ok=True)
    return p
