"""The zoo's zero-shot tasks: multiple-choice questions built from held-out (test-split) stdlib files.

Three tasks, each a JSONL of ``{"context", "choices", "label", "source"}`` rows and an lm-eval task config
(``output_type: multiple_choice`` over a local ``json`` dataset), scored as continuations:

- ``zoo_nextline``: the true next line of code among 4; distractors are lines of similar length (any
  indentation) from *other* test files, so block structure and the names in the context are the cues.
- ``zoo_identifier``: the identifier that fills a masked slot in a line (choice = identifier + rest of the
  line); distractors are other identifiers of the same file.
- ``zoo_keyword``: the Python keyword (or ``self``/``None``/``True``/``False``) that fills a masked slot in a
  line (choice = keyword + rest of the line); distractors are 3 other keywords.

(A docstring-matching task, "pick a function's docstring summary given its signature", was tried and left
out: every zoo size scored at chance on it.)

Everything is derived from the sorted test files with seeded ``random.Random``, so a rebuild is identical.

    >>> items = build_tasks(test_docs)["zoo_nextline"]
"""

from __future__ import annotations

import keyword
import random
import re
import textwrap
from collections import defaultdict
from collections.abc import Sequence

TASKS = {
    "zoo_nextline": "pick the true next line of code among 4 (distractors: similar-length lines of other files)",
    "zoo_identifier": "fill a masked identifier among 4 (distractors: other identifiers of the same file)",
    "zoo_keyword": "fill a masked Python keyword among 4 (distractors: other keywords)",
}
N_ITEMS = 500
MAX_PER_FILE = 40
CONTEXT_LINES = 5
CONTEXT_CHARS = 320
LENGTH_TOLERANCE = 0.2  # distractors within +-20% of the answer's length: the sum log-likelihood is comparable
_IDENT = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")
_SKIP_IDENTS = set(keyword.kwlist) | {"self", "cls", "None", "True", "False"}

Docs = Sequence[tuple[str, str]]  # (relative path, text)


def _context(lines: list[str], i: int) -> str:
    """Up to CONTEXT_LINES lines before line ``i``, cut at a line boundary to at most CONTEXT_CHARS."""
    ctx = lines[max(0, i - CONTEXT_LINES):i]
    while ctx and len("\n".join(ctx)) > CONTEXT_CHARS:
        ctx = ctx[1:]
    return "\n".join(ctx)


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _item(rng: random.Random, context: str, answer: str, distractors: list[str], source: str) -> dict:
    choices = [answer, *distractors]
    rng.shuffle(choices)
    return {"context": context, "choices": choices, "label": choices.index(answer), "source": source}


def _take(rng: random.Random, candidates: list, make, n: int) -> list[dict]:
    """Shuffle candidates, keep at most MAX_PER_FILE per file, build items until ``n`` succeed."""
    rng.shuffle(candidates)
    per_file: dict[str, int] = defaultdict(int)
    out = []
    for cand in candidates:
        if len(out) >= n:
            break
        if per_file[cand[0]] >= MAX_PER_FILE:
            continue
        item = make(cand)
        if item is not None:
            out.append(item)
            per_file[cand[0]] += 1
    return out


def _similar_length(a: str, b: str, tol: float = LENGTH_TOLERANCE) -> bool:
    return abs(len(a) - len(b)) <= tol * len(a)


def nextline_items(docs: Docs, n: int = N_ITEMS, seed: int = 1) -> list[dict]:
    rng = random.Random(seed)
    files = {path: text.split("\n") for path, text in docs}
    pool: list[tuple[str, str]] = []  # (path, line) of every substantial line
    candidates = []
    for path, lines in files.items():
        for i, line in enumerate(lines):
            if len(line.strip()) >= 12:
                pool.append((path, line))
                if i >= 4 and sum(bool(s.strip()) for s in lines[i - 4:i]) >= 3:
                    candidates.append((path, i))

    def make(cand):
        path, i = cand
        line = files[path][i]
        context = _context(files[path], i)
        picked: list[str] = []
        for _ in range(400):
            p, other = pool[rng.randrange(len(pool))]
            if (p != path and other != line and other not in picked and other not in context
                    and _similar_length(line, other)):
                picked.append(other)
                if len(picked) == 3:
                    return _item(rng, context, "\n" + line, ["\n" + s for s in picked], f"{path}:{i + 1}")
        return None

    return _take(rng, candidates, make, n)


def _code_lines(files: dict[str, list[str]]) -> list[tuple[str, int]]:
    """(path, line index) of every non-blank code line after a file's first three (no comments, no strings)."""
    out = []
    for path, lines in files.items():
        for i, line in enumerate(lines):
            s = line.strip()
            if i >= 3 and s and not s.startswith(("#", '"', "'")):
                out.append((path, i))
    return out


def identifier_items(docs: Docs, n: int = N_ITEMS, seed: int = 2) -> list[dict]:
    rng = random.Random(seed)
    files = {path: text.split("\n") for path, text in docs}
    vocab = {path: sorted({m.group() for m in _IDENT.finditer(text)
                           if len(m.group()) >= 4 and m.group() not in _SKIP_IDENTS})
             for path, text in docs}
    candidates = _code_lines(files)

    def make(cand):
        path, i = cand
        line = files[path][i]
        # only identifiers in code, not inside a string or comment on this line
        code = re.split(r"#|\"|'", line, maxsplit=1)[0]
        spans = [m for m in _IDENT.finditer(code) if len(m.group()) >= 4 and m.group() not in _SKIP_IDENTS]
        if not spans:
            return None
        m = spans[rng.randrange(len(spans))]
        in_line = set(_IDENT.findall(line))
        pool = [w for w in vocab[path] if w not in in_line]
        if len(pool) < 10:
            return None
        distractors = rng.sample(pool, 3)
        context = _context(files[path], i) + "\n" + line[: m.start()]
        rest = line[m.end():]
        return _item(rng, context, m.group() + rest, [d + rest for d in distractors], f"{path}:{i + 1}")

    return _take(rng, candidates, make, n)


KEYWORDS = ("if", "for", "while", "return", "def", "class", "import", "from", "in", "not", "and", "or", "is",
            "None", "True", "False", "self", "with", "as", "else", "elif", "try", "except", "raise", "yield",
            "lambda", "pass", "break", "continue", "assert", "del", "global")
_KEYWORD = re.compile(r"\b(" + "|".join(KEYWORDS) + r")\b")


def keyword_items(docs: Docs, n: int = N_ITEMS, seed: int = 4) -> list[dict]:
    """Fill a masked keyword (or ``self``/``None``/``True``/``False``) in a line of code among 4."""
    rng = random.Random(seed)
    files = {path: text.split("\n") for path, text in docs}
    candidates = _code_lines(files)

    def make(cand):
        path, i = cand
        line = files[path][i]
        code = re.split(r"#|\"|'", line, maxsplit=1)[0]
        spans = list(_KEYWORD.finditer(code))
        if not spans:
            return None
        m = spans[rng.randrange(len(spans))]
        distractors = rng.sample([k for k in KEYWORDS if k != m.group()], 3)
        context = _context(files[path], i) + "\n" + line[: m.start()]
        rest = line[m.end():]
        return _item(rng, context, m.group() + rest, [d + rest for d in distractors], f"{path}:{i + 1}")

    return _take(rng, candidates, make, n)


def build_tasks(test_docs: Docs, n: int = N_ITEMS) -> dict[str, list[dict]]:
    """All zoo tasks from the test split's documents."""
    return {
        "zoo_nextline": nextline_items(test_docs, n),
        "zoo_identifier": identifier_items(test_docs, n),
        "zoo_keyword": keyword_items(test_docs, n),
    }


def task_yaml(name: str, data_file: str) -> str:
    """The lm-eval config of task ``name`` over the local JSONL ``data_file`` (an absolute path)."""
    return textwrap.dedent(f"""\
        task: {name}
        dataset_path: json
        dataset_kwargs:
          data_files:
            test: {data_file}
        test_split: test
        output_type: multiple_choice
        doc_to_text: context
        doc_to_choice: choices
        doc_to_target: label
        target_delimiter: ""
        metric_list:
          - metric: acc
            aggregation: mean
            higher_is_better: true
          - metric: acc_norm
            aggregation: mean
            higher_is_better: true
        metadata:
          version: 1.0
          description: "{TASKS[name]}"
        """)
