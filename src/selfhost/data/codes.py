"""The one table of fine-tuning data defects: each code `data check` reports, what it means, whether `data clean`
drops the row by default, and whether `tune` stops on it before training (its preflight) or refuses the file
outright (the row cannot be read as a conversation at all). clean, tune and the README's table derive from it
(tests/data/test_codes.py holds them to it)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DefectCode", "DEFECT_CODES", "DROP_CODES", "PREFLIGHT_CODES", "UNREADABLE_CODES", "markdown_table"]


@dataclass(frozen=True)
class DefectCode:
    code: str
    meaning: str
    dropped_by_clean: bool
    blocks_tune: bool  # reported by tune's preflight (the run stops unless --no-data-check)
    unreadable: bool = False  # the row is no conversation: tune refuses the file whatever the flags
    tune_own_check: bool = False  # tune checks this itself during encoding (lengths)


DEFECT_CODES: tuple[DefectCode, ...] = (
    DefectCode("malformed_line", "the line is not valid JSON or not an object", True, True, unreadable=True),
    DefectCode(
        "unknown_format",
        "no known fields (messages, conversations, instruction/output, prompt/completion, text)",
        True,
        True,
        unreadable=True,
    ),
    DefectCode("schema_error", "a message of the wrong shape (no role, content not text)", True, True, unreadable=True),
    DefectCode("unknown_role", "a role other than system, user, assistant or tool", False, True),
    DefectCode(
        "role_order",
        "turns out of order (two of a role in a row, not starting with user or ending with assistant)",
        True,
        True,
    ),
    DefectCode("empty_answer", "an assistant turn with no text", True, True),
    DefectCode("short_answer", "an answer of one or two words", False, False),
    DefectCode("truncated_answer", "an answer cut off: mid-sentence, unclosed brackets or code fence", True, True),
    DefectCode("refusal", "refusal or AI-disclaimer boilerplate in the answer", False, True),
    DefectCode("answer_repeats_prompt", "the answer repeats the prompt", False, False),
    DefectCode("exact_duplicate", "the same conversation as an earlier row", True, True),
    DefectCode("near_duplicate", "MinHash similarity above the threshold to another row", True, True),
    # tune measures lengths itself, with the same template and tokenizer, and stops unless --on-long drop|truncate
    DefectCode(
        "too_long", "longer than --max-seq-len tokens after the chat template", True, False, tune_own_check=True
    ),
    DefectCode("control_token", "text that holds the model's control tokens (<|im_end|>, [INST], ...)", False, True),
    DefectCode("leakage_exact", "the same conversation is in the --eval file", True, True),
    DefectCode("leakage_near", "a near-duplicate of an --eval conversation", True, True),
)

DROP_CODES = tuple(c.code for c in DEFECT_CODES if c.dropped_by_clean)
PREFLIGHT_CODES = tuple(c.code for c in DEFECT_CODES if c.blocks_tune and not c.unreadable)
UNREADABLE_CODES = tuple(c.code for c in DEFECT_CODES if c.unreadable)


def markdown_table() -> str:
    """The README's table of codes."""
    rows = ["| code | meaning | dropped by `data clean` | stops `tune` |", "|---|---|---|---|"]
    for c in DEFECT_CODES:
        stops = (
            "always (unreadable)"
            if c.unreadable
            else "yes, unless `--on-long drop|truncate`"
            if c.tune_own_check
            else "yes"
            if c.blocks_tune
            else "no"
        )
        rows.append(f"| `{c.code}` | {c.meaning} | {'yes' if c.dropped_by_clean else 'no'} | {stops} |")
    return "\n".join(rows)
