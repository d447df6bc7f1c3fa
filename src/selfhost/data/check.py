"""`selfhost data check`: every defect with its line and a code.

Codes: malformed_line, schema_error, unknown_format, unknown_role, role_order, empty_answer, exact_duplicate,
near_duplicate, too_long, truncated_answer, control_token, leakage_exact, leakage_near, short_answer,
refusal, answer_repeats_prompt.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from selfhost.data.formats import detect_format, to_messages
from selfhost.data.read import read_rows

__all__ = [
    "Finding",
    "Example",
    "CheckOptions",
    "load_examples",
    "check_dataset",
    "near_duplicate_clusters",
    "normalize",
]

KNOWN_ROLES = {"system", "user", "assistant", "tool"}
REFUSALS = re.compile(
    r"\b(as an ai( language model)?|i'm sorry,? but i can(no|')t|i cannot (help|assist) with|"
    r"i am unable to (help|assist|provide))\b",
    re.I,
)
CONTROL_TOKENS = (
    "<|im_start|>",
    "<|im_end|>",
    "<|eot_id|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<start_of_turn>",
    "<end_of_turn>",
    "[INST]",
    "[/INST]",
    "<|endoftext|>",
    "</s>",
    "<s>",
    "<|begin_of_text|>",
    "<|user|>",
    "<|assistant|>",
    "<|end|>",
)


@dataclass(frozen=True)
class Finding:
    line: int
    code: str
    message: str


@dataclass
class Example:
    line: int
    messages: list[dict[str, Any]]
    format: str

    def text(self, roles: tuple[str, ...] = ("system", "user", "assistant")) -> str:
        return "\n".join(str(m.get("content") or "") for m in self.messages if m.get("role") in roles)

    @property
    def prompt(self) -> str:
        return self.text(("system", "user"))

    @property
    def answer(self) -> str:
        return self.text(("assistant",))


@dataclass
class CheckOptions:
    max_seq_len: int | None = None
    near_threshold: float = 0.8
    short_answer_words: int = 2
    count_tokens: Callable[[list[dict[str, Any]]], int] | None = None  # tokens after the chat template
    control_tokens: tuple[str, ...] = CONTROL_TOKENS


@dataclass
class Report:
    rows: int
    format: str | None
    formats: dict[str, int]
    findings: list[Finding] = field(default_factory=list)
    clusters: list[list[int]] = field(default_factory=list)  # near-duplicate clusters (line numbers)
    token_lengths: list[int] = field(default_factory=list)
    turns: list[int] = field(default_factory=list)  # messages per example
    duplicate_of: dict[int, int] = field(default_factory=dict)  # exact duplicate line -> first line with that text

    @property
    def counts(self) -> dict[str, int]:
        return dict(Counter(f.code for f in self.findings))

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "format": self.format,
            "formats": self.formats,
            "findings": [asdict(f) for f in self.findings],
            "counts": self.counts,
            "near_duplicate_clusters": self.clusters,
            "token_lengths": {"max": max(self.token_lengths, default=0), "n": len(self.token_lengths)},
        }


def normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def load_examples(path: Path, findings: list[Finding]) -> tuple[list[Example], Counter[str], int]:
    examples: list[Example] = []
    formats: Counter[str] = Counter()
    rows = 0
    for row in read_rows(path):
        rows += 1
        if row.error or row.data is None:
            findings.append(Finding(row.line, "malformed_line", row.error or "unreadable"))
            continue
        fmt = detect_format(row.data)
        if fmt is None:
            findings.append(
                Finding(
                    row.line,
                    "unknown_format",
                    f"no known fields (keys: {', '.join(sorted(row.data)[:6])}); expected messages, "
                    "conversations, instruction/output, prompt/completion or text",
                )
            )
            continue
        formats[fmt] += 1
        msgs, problems = to_messages(row.data, fmt)
        for p in problems:
            findings.append(Finding(row.line, "schema_error", p))
        examples.append(Example(row.line, msgs, fmt))
    return examples, formats, rows


def _structure(ex: Example, out: list[Finding]) -> None:
    roles = [str(m.get("role")) for m in ex.messages]
    for r in roles:
        if r not in KNOWN_ROLES:
            out.append(Finding(ex.line, "unknown_role", f"unknown role {r!r}"))
    if ex.format == "text":
        return
    body = [r for r in roles if r != "system"]
    if "system" in roles[1:]:
        out.append(Finding(ex.line, "role_order", "a system message after the first message"))
    conv = [r for r in body if r in ("user", "assistant")]
    for a, b in zip(conv, conv[1:]):
        if a == b:
            out.append(Finding(ex.line, "role_order", f"two {a} turns in a row"))
            break
    if conv and conv[0] != "user":
        out.append(Finding(ex.line, "role_order", "the conversation does not start with a user turn"))
    if not body or body[-1] != "assistant":
        out.append(
            Finding(
                ex.line, "role_order", "the conversation does not end with an assistant turn: nothing to learn from it"
            )
        )


def _answers(ex: Example, opts: CheckOptions, out: list[Finding]) -> None:
    for m in ex.messages:
        content = m.get("content")
        if not isinstance(content, str):
            continue
        for tok in opts.control_tokens:
            if tok in content:
                out.append(Finding(ex.line, "control_token", f"{m.get('role')} content contains {tok!r}"))
                break
        if m.get("role") != "assistant":
            continue
        if not content.strip():
            out.append(Finding(ex.line, "empty_answer", "an assistant turn is empty or whitespace"))
            continue
        if content.count("```") % 2:
            out.append(Finding(ex.line, "truncated_answer", "unbalanced ``` code fence"))
        elif sum(content.count(o) - content.count(c) for o, c in ("()", "[]", "{}")) > 0:
            out.append(Finding(ex.line, "truncated_answer", "more opening than closing brackets"))
        elif len(content) > 40 and re.search(r"[A-Za-z0-9,]$", content.strip()) and "\n" not in content[-3:]:
            out.append(Finding(ex.line, "truncated_answer", f"ends mid-sentence: …{content.strip()[-30:]!r}"))
        if len(content.split()) <= opts.short_answer_words and ex.format != "text":
            out.append(Finding(ex.line, "short_answer", f"very short answer ({len(content.split())} words)"))
        if REFUSALS.search(content):
            out.append(Finding(ex.line, "refusal", "refusal or AI-disclaimer boilerplate in the answer"))
    prompt, answer = normalize(ex.prompt), normalize(ex.answer)
    if prompt and answer and (answer == prompt or (len(prompt) > 20 and prompt in answer)):
        out.append(Finding(ex.line, "answer_repeats_prompt", "the answer repeats the prompt"))


def _shingles(text: str, n: int = 3) -> set[str]:
    words = normalize(text).split()
    return {" ".join(words[i : i + n]) for i in range(max(1, len(words) - n + 1))} if words else set()


def _minhash(text: str | set[str], num_perm: int) -> Any:
    """MinHash of a text's word 3-grams (or of shingles already made)."""
    from datasketch import MinHash

    m = MinHash(num_perm=num_perm, seed=1)
    m.update_batch([s.encode("utf-8") for s in (text if isinstance(text, set) else _shingles(text))])
    return m


def near_duplicate_clusters(texts: dict[int, str], threshold: float, num_perm: int = 64) -> list[list[int]]:
    """Groups of lines whose word-3-gram Jaccard similarity is at least `threshold`. MinHash LSH (datasketch)
    proposes candidates at a looser threshold; each candidate pair is then verified on its exact shingle sets,
    so LSH's misses near the threshold do not become missed duplicates, nor its false hits false findings."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=max(0.3, threshold - 0.2), num_perm=num_perm)
    shingles: dict[int, set[str]] = {}
    hashes = {}
    with lsh.insertion_session() as session:
        for line, t in texts.items():
            sh = _shingles(t)
            if not sh:
                continue
            shingles[line] = sh
            hashes[line] = _minhash(sh, num_perm)
            session.insert(str(line), hashes[line])
    parent = {line: line for line in hashes}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for line, h in hashes.items():
        for other in map(int, lsh.query(h)):
            if other == line:
                continue
            a_set, b_set = shingles[line], shingles[other]
            if len(a_set & b_set) / len(a_set | b_set) < threshold:
                continue
            a, b = find(line), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for line in hashes:
        groups.setdefault(find(line), []).append(line)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


def check_dataset(path: Path, opts: CheckOptions | None = None, eval_path: Path | None = None) -> Report:
    opts = opts or CheckOptions()
    findings: list[Finding] = []
    examples, formats, rows = load_examples(path, findings)
    report = Report(rows, formats.most_common(1)[0][0] if formats else None, dict(formats), findings)
    for ex in examples:
        report.turns.append(len(ex.messages))
        _structure(ex, findings)
        _answers(ex, opts, findings)
        if opts.count_tokens is not None:
            n = opts.count_tokens(ex.messages)
            report.token_lengths.append(n)
            if opts.max_seq_len and n > opts.max_seq_len:
                findings.append(
                    Finding(
                        ex.line,
                        "too_long",
                        f"{n} tokens after the chat template > max_seq_len "
                        f"{opts.max_seq_len}: it would be truncated in training",
                    )
                )
    # Exact duplicates after normalisation, then near-duplicate clusters among the rest.
    first_seen: dict[str, int] = {}
    unique: dict[int, str] = {}
    for ex in examples:
        text = ex.text()
        key = hashlib.sha256(normalize(text).encode()).hexdigest()
        if key in first_seen:
            report.duplicate_of[ex.line] = first_seen[key]
            findings.append(Finding(ex.line, "exact_duplicate", f"same as line {first_seen[key]} (after normalising)"))
        else:
            first_seen[key] = ex.line
            unique[ex.line] = text
    report.clusters = near_duplicate_clusters(unique, opts.near_threshold)
    for cluster in report.clusters:
        for line in cluster[1:]:
            findings.append(
                Finding(
                    line,
                    "near_duplicate",
                    f"near-duplicate of line {cluster[0]} (cluster of {len(cluster)}, Jaccard ≥ {opts.near_threshold})",
                )
            )
    if eval_path is not None:
        _leakage(examples, eval_path, opts, findings)
    findings.sort(key=lambda f: (f.line, f.code))
    return report


def _leakage(train: list[Example], eval_path: Path, opts: CheckOptions, out: list[Finding]) -> None:
    from datasketch import MinHashLSH

    eval_findings: list[Finding] = []
    evals, _, _ = load_examples(eval_path, eval_findings)
    exact = {hashlib.sha256(normalize(e.text()).encode()).hexdigest(): e.line for e in evals}
    lsh = MinHashLSH(threshold=opts.near_threshold, num_perm=128)
    for e in evals:
        if _shingles(e.text()):
            lsh.insert(str(e.line), _minhash(e.text(), 128))
    for ex in train:
        key = hashlib.sha256(normalize(ex.text()).encode()).hexdigest()
        if key in exact:
            out.append(Finding(ex.line, "leakage_exact", f"also in the eval set ({eval_path.name} line {exact[key]})"))
        elif _shingles(ex.text()):
            hits = lsh.query(_minhash(ex.text(), 128))
            if hits:
                out.append(
                    Finding(
                        ex.line,
                        "leakage_near",
                        f"near-duplicate of eval line(s) {', '.join(sorted(hits, key=int)[:3])} in {eval_path.name}",
                    )
                )


def report_section(report: Report, path: Path, max_seq_len: int | None) -> Any:
    """A report section with the findings, a token-length histogram against max_seq_len, turns per example
    and duplicate clusters."""
    from selfhost.report.plots import bar_chart
    from selfhost.report.section import Section

    plots = []
    if report.token_lengths:
        top = max(report.token_lengths)
        width = max(1, -(-top // 10))
        buckets = Counter(min(n // width, 9) for n in report.token_lengths)
        labels = [f"{i * width}–{(i + 1) * width - 1}" for i in range(10)]
        title = "Tokens per example after the chat template" + (f" (max_seq_len {max_seq_len})" if max_seq_len else "")
        plots.append(bar_chart(labels, [buckets.get(i, 0) for i in range(10)], title=title, unit="examples"))
    if report.turns:
        turns = Counter(min(t, 10) for t in report.turns)
        plots.append(
            bar_chart(
                [f"{k}{'+' if k == 10 else ''} turns" for k in sorted(turns)],
                [turns[k] for k in sorted(turns)],
                title="Turns per example",
                unit="examples",
            )
        )
    if report.clusters:
        sizes = Counter(len(c) for c in report.clusters)
        plots.append(
            bar_chart(
                [f"{k} rows" for k in sorted(sizes)],
                [sizes[k] for k in sorted(sizes)],
                title="Near-duplicate clusters by size",
                unit="clusters",
            )
        )
    rows = [(code, str(n)) for code, n in sorted(report.counts.items())]
    return Section(
        "data",
        f"Data check: {path.name}",
        report.to_dict(),
        rows,
        plots,
        [f"{report.rows} rows, format {report.format}"],
    )
