"""A generated dataset with every defect class planted at known rows: data check must find each class with
precision and recall ≥ 0.95, and report malformed lines without stopping."""

from __future__ import annotations

import json
import random
from pathlib import Path

from selfhost.data.check import CheckOptions, check_dataset

TOPICS = [
    "volcanoes",
    "tides",
    "bees",
    "glaciers",
    "comets",
    "coral reefs",
    "deserts",
    "owls",
    "rainbows",
    "bridges",
    "lighthouses",
    "tea",
    "salt",
    "silk",
    "clocks",
    "maps",
    "kites",
    "whales",
    "moss",
    "fog",
]
WORDS = (
    "alpha bravo cedar delta ember fable garnet harbor indigo juniper kelp lumen meadow nectar opal prairie "
    "quartz river sierra timber umber violet willow xenon yarrow zephyr"
).split()


def clean_row(i: int, rng: random.Random) -> dict:  # type: ignore[type-arg]
    topic = TOPICS[i % len(TOPICS)]
    words = " ".join(rng.choice(WORDS) for _ in range(14))
    return {
        "messages": [
            {"role": "user", "content": f"Row {i}: tell me something about {topic} and {words}."},
            {"role": "assistant", "content": f"Row {i} answer about {topic}: {words} {rng.randint(0, 10**9)}."},
        ]
    }


PLANTS = {  # code -> function(row index, rng, previous clean rows) -> raw line
    "malformed_line": lambda i, rng, rows: '{"messages": [broken',
    "unknown_format": lambda i, rng, rows: json.dumps({"question": "x", "reply": "y"}),
    "unknown_role": lambda i, rng, rows: json.dumps(
        {
            "messages": [
                {"role": "narrator", "content": f"Row {i} setting the scene with {rng.choice(WORDS)}."},
                {"role": "user", "content": f"Row {i} question {rng.random()}?"},
                {"role": "assistant", "content": f"Row {i} is answered plainly {rng.random()}."},
            ]
        }
    ),
    "role_order": lambda i, rng, rows: json.dumps(
        {
            "messages": [
                {"role": "user", "content": f"Row {i} first {rng.random()}"},
                {"role": "user", "content": f"Row {i} second {rng.random()}"},
            ]
        }
    ),
    "empty_answer": lambda i, rng, rows: json.dumps(
        {
            "messages": [
                {"role": "user", "content": f"Row {i} asks {rng.random()}?"},
                {"role": "assistant", "content": "  "},
            ]
        }
    ),
    "exact_duplicate": lambda i, rng, rows: json.dumps(rows[rng.randrange(len(rows))]),
    "near_duplicate": lambda i, rng, rows: json.dumps(_near(rows[rng.randrange(len(rows))])),
    "truncated_answer": lambda i, rng, rows: json.dumps(
        {
            "messages": [
                {"role": "user", "content": f"Row {i} code please {rng.random()}"},
                {"role": "assistant", "content": f"Row {i}:\n```python\nprint({rng.randint(0, 99)})\n"},
            ]
        }
    ),
    "control_token": lambda i, rng, rows: json.dumps(
        {
            "messages": [
                {"role": "user", "content": f"Row {i} with <|im_start|> inside {rng.random()}"},
                {"role": "assistant", "content": f"Row {i} answer that is fine {rng.random()}."},
            ]
        }
    ),
    "refusal": lambda i, rng, rows: json.dumps(
        {
            "messages": [
                {"role": "user", "content": f"Row {i} request {rng.random()}"},
                {"role": "assistant", "content": f"I'm sorry, but I can't help with row {i} today."},
            ]
        }
    ),
    "short_answer": lambda i, rng, rows: json.dumps(
        {
            "messages": [
                {"role": "user", "content": f"Row {i} yes or no {rng.random()}?"},
                {"role": "assistant", "content": "Yes."},
            ]
        }
    ),
    "answer_repeats_prompt": lambda i, rng, rows: json.dumps(
        {
            "messages": [
                {"role": "user", "content": f"Row {i} please echo this sentence back."},
                {"role": "assistant", "content": f"Row {i} please echo this sentence back."},
            ]
        }
    ),
}


def _near(row: dict) -> dict:  # type: ignore[type-arg]
    msgs = [dict(m) for m in row["messages"]]
    msgs[-1]["content"] = msgs[-1]["content"].rstrip(".") + " indeed."  # one word more
    return {"messages": msgs}


def test_planted_defects_precision_and_recall(tmp_path: Path) -> None:
    rng = random.Random(11)
    lines: list[str] = []
    planted: dict[str, set[int]] = {code: set() for code in PLANTS}
    clean_rows: list[dict] = []  # type: ignore[type-arg]
    for i in range(1, 601):
        if i > 40 and i % 4 == 0:
            code = list(PLANTS)[(i // 4) % len(PLANTS)]
            lines.append(PLANTS[code](i, rng, clean_rows))
            planted[code].add(i)
        else:
            row = clean_row(i, rng)
            clean_rows.append(row)
            lines.append(json.dumps(row))
    f = tmp_path / "planted.jsonl"
    f.write_text("\n".join(lines) + "\n")
    report = check_dataset(f, CheckOptions())
    assert report.rows == 600  # malformed lines are reported, reading goes on
    for code, rows in planted.items():
        found = {x.line for x in report.findings if x.code == code}
        tp = len(found & rows)
        precision = tp / len(found) if found else 0.0
        recall = tp / len(rows)
        assert precision >= 0.95 and recall >= 0.95, (
            code,
            precision,
            recall,
            sorted(found - rows)[:5],
            sorted(rows - found)[:5],
        )
