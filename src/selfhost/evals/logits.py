"""Log-probabilities from raw logits, the one implementation behind quant's KL divergence and tune's losses."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["log_softmax"]


def log_softmax(logits: Any) -> Any:
    """Row-wise log-probabilities of a (positions × vocabulary) float64 array, in place and stable."""
    logits -= logits.max(axis=1, keepdims=True)
    logits -= np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return logits
