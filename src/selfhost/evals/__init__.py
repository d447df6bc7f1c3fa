"""Evaluation shared by quant and tune: checked cases and suites (suite.py), the checks themselves and how one
case is scored (checks.py), interval statistics (stats.py) and log-probabilities from logits (logits.py)."""
