"""Every defect code on a dataset built for the purpose; formats; clean and split."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from selfhost.backends.tokenizer import Tokenizer
from selfhost.data.check import CheckOptions, check_dataset
from selfhost.data.clean import clean_dataset, split_dataset
from selfhost.models.gguf_spec import spec_from_gguf
from tests.cli.test_info_cli import _one_line_error, run

LONG = (
    "Photosynthesis converts light energy into chemical energy stored in glucose molecules inside plant cells. "
    "It takes place in the chloroplasts, where chlorophyll absorbs mostly red and blue light, and it releases "
    "oxygen as a by-product that most living things on Earth depend on."
)


def chat(user: str, answer: str, system: str | None = None) -> dict:  # type: ignore[type-arg]
    msgs = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": user},
        {"role": "assistant", "content": answer},
    ]
    return {"messages": msgs}


def write_jsonl(path: Path, rows: list) -> Path:  # type: ignore[type-arg]
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    rows = [
        chat("What is photosynthesis?", LONG),  # 1 clean
        "{broken json",  # 2 malformed_line
        {"foo": "bar"},  # 3 unknown_format
        chat("Say hi", "   "),  # 4 empty_answer
        chat("What is photosynthesis?", LONG),  # 5 exact_duplicate
        chat("What is photosynthesis?", LONG.replace("depend on.", "rely on.")),  # 6 near_duplicate
        {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]},  # 7 role_order
        {"messages": [{"role": "wizard", "content": "x"}, {"role": "assistant", "content": "Fine answer here."}]},
        chat("Explain recursion", "A function that calls itself until a base case stops it and the stack"),  # 9
        chat("Write code", "```python\nprint('hi')\n"),  # 10 truncated (fence)
        chat("Hello", "Ok"),  # 11 short_answer
        chat("Tell me a secret", "I'm sorry, but I can't help with that request at all."),  # 12 refusal
        chat("Repeat after me: the sky is blue today", "Repeat after me: the sky is blue today"),  # 13 repeats
        chat("Use tokens", "Here is <|im_end|> inside an answer, which breaks the format."),  # 14 control_token
        {"conversations": [{"from": "human", "value": "Hi there"}, {"from": "gpt", "value": "Hello! How can I help?"}]},
        {"instruction": "Add 2 and 2", "input": "", "output": "The answer is 4."},
        {"prompt": "Capital of France?", "completion": "Paris is the capital of France."},
    ]
    return write_jsonl(tmp_path / "train.jsonl", rows)


def codes_by_line(report) -> dict[int, set[str]]:  # type: ignore[no-untyped-def]
    out: dict[int, set[str]] = {}
    for f in report.findings:
        out.setdefault(f.line, set()).add(f.code)
    return out


def test_every_defect_is_found_on_its_line(dataset: Path) -> None:
    r = check_dataset(dataset)
    c = codes_by_line(r)
    assert 1 not in c  # the clean example stays clean
    expected = {
        2: "malformed_line",
        3: "unknown_format",
        4: "empty_answer",
        5: "exact_duplicate",
        6: "near_duplicate",
        7: "role_order",
        8: "unknown_role",
        9: "truncated_answer",
        10: "truncated_answer",
        11: "short_answer",
        12: "refusal",
        13: "answer_repeats_prompt",
        14: "control_token",
    }
    for line, code in expected.items():
        assert code in c.get(line, set()), (line, code, c.get(line))
    assert r.formats == {"openai": 12, "sharegpt": 1, "alpaca": 1, "prompt_completion": 1}
    assert [1, 6] in r.clusters
    assert not ({15, 16, 17} & set(c))  # the other formats' clean rows are clean


def test_too_long_after_the_chat_template(dataset: Path, smollm2_path: Path) -> None:
    tok = Tokenizer(spec_from_gguf(smollm2_path))
    r = check_dataset(dataset, CheckOptions(max_seq_len=40, count_tokens=tok.count_chat))
    long_lines = {f.line for f in r.findings if f.code == "too_long"}
    # SmolLM2's template adds its default system prompt, so even short rows pass 40 tokens; line 1's count is
    # exactly what the tokenizer gives the rendered conversation.
    assert 1 in long_lines and max(r.token_lengths) > 40


def test_leakage_between_train_and_eval(dataset: Path, tmp_path: Path) -> None:
    ev = write_jsonl(
        tmp_path / "eval.jsonl",
        [chat("What is photosynthesis?", LONG), chat("Capital of Peru?", "Lima is the capital of Peru.")],
    )
    c = codes_by_line(check_dataset(dataset, eval_path=ev))
    assert "leakage_exact" in c[1] and "leakage_exact" in c[5]
    assert "leakage_near" in c[6]


def test_clean_keeps_one_per_cluster_and_logs_why(dataset: Path, tmp_path: Path) -> None:
    before = dataset.read_text()
    out, log = tmp_path / "clean.jsonl", tmp_path / "removed.jsonl"
    r = clean_dataset(dataset, out, log)
    assert dataset.read_text() == before  # the input is never modified
    kept = out.read_text().splitlines()
    assert r["kept"] == len(kept) and json.loads(kept[0]) == chat("What is photosynthesis?", LONG)
    removed = {json.loads(x)["line"]: json.loads(x)["reasons"] for x in log.read_text().splitlines()}
    assert {2, 3, 4, 5, 6, 7, 9, 10} <= set(removed)
    assert any("exact_duplicate" in reason for reason in removed[5])
    with pytest.raises(Exception, match="never modified"):
        clean_dataset(dataset, dataset, log)


def test_split_keeps_duplicates_together(tmp_path: Path) -> None:
    rows = [chat(f"Question number {i} about topic {i % 7}?", f"Answer {i}: " + LONG) for i in range(40)]
    rows += [chat("Question number 3 about topic 3?", "Answer 3: " + LONG)] * 3  # duplicates of row 4
    src = write_jsonl(tmp_path / "all.jsonl", rows)
    r = split_dataset(src, tmp_path / "train.jsonl", tmp_path / "eval.jsonl", eval_fraction=0.25, seed=3)
    assert r["train"] + r["eval"] == 43 and r["eval"] >= 10
    train = set((tmp_path / "train.jsonl").read_text().splitlines())
    evals = set((tmp_path / "eval.jsonl").read_text().splitlines())
    assert not train & evals  # no example, nor any duplicate of one, on both sides
    assert (
        check_dataset(tmp_path / "train.jsonl", eval_path=tmp_path / "eval.jsonl").counts.get("leakage_exact", 0) == 0
    )


def test_csv_and_cli(tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    with open(f, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["prompt", "completion"])
        w.writeheader()
        w.writerow({"prompt": "Capital of Spain?", "completion": "Madrid is the capital of Spain."})
        w.writerow({"prompt": "Capital of Spain?", "completion": "Madrid is the capital of Spain."})
    d = json.loads(run("data", "check", str(f), "--json").stdout)
    assert d["format"] == "prompt_completion" and d["counts"] == {"exact_duplicate": 1}
    assert {"line", "code", "message"} == set(d["findings"][0])
    (tmp_path / "x.txt").write_text("hello")
    assert "unknown dataset format" in _one_line_error(run("data", "check", str(tmp_path / "x.txt")))


def test_mask_preview_trains_only_assistant_turns(smollm2_path: Path, tmp_path: Path) -> None:
    from selfhost.data.mask import mask_preview

    tok = Tokenizer(spec_from_gguf(smollm2_path))
    msgs = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello there!"},
        {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": "Goodbye!"},
    ]
    r = mask_preview(tok, msgs)
    trained = "".join(t["text"] for t in r["masked"] if t["trained"])
    assert "Hello there!" in trained and "Goodbye!" in trained
    assert "Hi" not in trained.replace("Hello", "") and "Bye" not in trained.replace("Goodbye", "")
    assert r["assistant_turns"] == 2 and r["end_of_turn_trained"] is True and "<|im_end|>" in trained
    assert 0 < r["trained_tokens"] < r["tokens"]
    f = write_jsonl(tmp_path / "m.jsonl", [{"messages": msgs}])
    d = json.loads(run("data", "mask", str(f), "--line", "1", "--json").stdout)
    assert d["trained_tokens"] == r["trained_tokens"]


def test_check_html_has_length_histogram(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "d.html"
    d = json.loads(run("data", "check", str(dataset), "--max-seq-len", "200", "--html", str(out), "--json").stdout)
    html = out.read_text()
    assert "Tokens per example after the chat template (max_seq_len 200)" in html
    assert "Near-duplicate clusters by size" in html and d["token_lengths"]["n"] > 10


def test_clean_policy_drop_removes_whole_clusters(dataset: Path, tmp_path: Path) -> None:
    r = json.loads(
        run("data", "clean", str(dataset), "--out", str(tmp_path / "c.jsonl"), "--policy", "drop", "--json").stdout
    )
    removed = {json.loads(x)["line"] for x in (tmp_path / "c.removed.jsonl").read_text().splitlines()}
    assert r["policy"] == "drop" and {1, 5, 6} <= removed  # the first of the cluster goes too
    assert "turns" not in r and r["kept"] == len((tmp_path / "c.jsonl").read_text().splitlines())


def test_turns_per_example_plot(dataset: Path) -> None:
    from selfhost.data.check import report_section

    rep = check_dataset(dataset)
    assert len(rep.turns) == 15 and max(rep.turns) == 2
    assert any("Turns per example" in p for p in report_section(rep, dataset, None).plots)
