"""One table of data defect codes: every code `data check` can report is in it, and clean, tune and the README
follow it."""

from __future__ import annotations

import re
from pathlib import Path

import selfhost.data.check as check_module
from selfhost.data.clean import DROP_CODES
from selfhost.data.codes import DEFECT_CODES, PREFLIGHT_CODES, UNREADABLE_CODES, markdown_table
from selfhost.tune import dataset

REPO = Path(__file__).resolve().parents[2]


def test_every_reported_code_is_in_the_table() -> None:
    source = Path(check_module.__file__).read_text()
    emitted = set(re.findall(r'Finding\(\s*[\w.]+,\s*"([a-z_]+)"', source))
    assert emitted, "no Finding(...) calls found: the pattern no longer matches data/check.py"
    assert emitted <= {c.code for c in DEFECT_CODES}, emitted - {c.code for c in DEFECT_CODES}


def test_clean_and_tune_follow_the_table() -> None:
    assert set(DROP_CODES) == {c.code for c in DEFECT_CODES if c.dropped_by_clean}
    assert dataset.PREFLIGHT_CODES is PREFLIGHT_CODES
    assert set(UNREADABLE_CODES) <= set(DROP_CODES)
    assert not set(UNREADABLE_CODES) & set(PREFLIGHT_CODES)


def test_readme_shows_the_table() -> None:
    assert markdown_table() in (REPO / "README.md").read_text()
