"""The zoo's corpus: the Python standard library's own source, split by file.

Every machine with Python has this text offline, and the PSF licence allows shipping it. The file list is
deterministic (sorted relative paths under ``sysconfig.get_paths()["stdlib"]``, test suites and generated
tables left out) and each file's split depends only on its own relative path (a SHA-256 bucket), so a
slightly different stdlib changes only the files that differ. The manifest records every file with its hash.

    >>> files = collect_files()
    >>> docs = split_documents(files)["test"]       # [(relative path, text), ...]
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import sysconfig
from dataclasses import dataclass
from pathlib import Path

# Split by SHA-256 bucket of the relative path (0..99): [lo, hi) per split.
SPLIT_BUCKETS: dict[str, tuple[int, int]] = {
    "pretrain": (0, 78),
    "rft": (78, 88),
    "calibration": (88, 90),
    "test": (90, 100),
}
SHIPPED_SPLITS = ("rft", "calibration", "test")

# Directories (any path component) and file prefixes left out: test suites, the IDE, bundled wheels,
# generated tables (encodings' charmaps, pydoc's topic dump) and the machine-specific sysconfig data.
EXCLUDED_DIRS = frozenset({
    "test", "tests", "idlelib", "site-packages", "turtledemo", "ensurepip", "pydoc_data", "encodings",
    "lib-dynload", "__pycache__", "__phello__",
})
EXCLUDED_PREFIXES = ("test_", "_sysconfigdata", "config-")
MAX_FILE_BYTES = 400_000


@dataclass(frozen=True)
class SourceFile:
    """One stdlib file: its path relative to the stdlib root, its SHA-256 and its split."""

    path: str
    sha256: str
    bytes: int
    split: str
    text: str


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def split_of(rel_path: str) -> str:
    """The split a file belongs to, from the SHA-256 of its relative path alone."""
    bucket = int(hashlib.sha256(rel_path.encode()).hexdigest(), 16) % 100
    for name, (lo, hi) in SPLIT_BUCKETS.items():
        if lo <= bucket < hi:
            return name
    raise AssertionError(bucket)


def _excluded(rel: Path) -> bool:
    if any(part in EXCLUDED_DIRS or part.startswith("config-") for part in rel.parts[:-1]):
        return True
    return rel.name.startswith(EXCLUDED_PREFIXES)


def collect_files(root: Path | None = None) -> list[SourceFile]:
    """All corpus files under ``root`` (default: the running Python's stdlib), sorted by relative path."""
    root = Path(root) if root is not None else stdlib_root()
    out: list[SourceFile] = []
    for path in sorted(root.rglob("*.py"), key=lambda p: p.relative_to(root).as_posix()):
        rel = path.relative_to(root)
        if _excluded(rel) or not path.is_file():
            continue
        raw = path.read_bytes()
        if not raw.strip() or len(raw) > MAX_FILE_BYTES:
            continue
        text = raw.decode("utf-8", errors="replace").replace("\r\n", "\n")
        rel_s = rel.as_posix()
        out.append(SourceFile(rel_s, hashlib.sha256(raw).hexdigest(), len(raw), split_of(rel_s), text))
    return out


def split_documents(files: list[SourceFile]) -> dict[str, list[tuple[str, str]]]:
    """Group files by split, keeping the sorted file order: ``{split: [(path, text), ...]}``."""
    out: dict[str, list[tuple[str, str]]] = {name: [] for name in SPLIT_BUCKETS}
    for f in files:
        out[f.split].append((f.path, f.text))
    return out


def manifest(files: list[SourceFile]) -> dict:
    """The file list with hashes and splits, as recorded in ``assets/corpus_manifest.json``."""
    import platform

    return {
        "source": "CPython standard library (*.py), PSF licence",
        "python": platform.python_version(),
        "split_buckets": SPLIT_BUCKETS,
        "files": [{"path": f.path, "sha256": f.sha256, "bytes": f.bytes, "split": f.split} for f in files],
    }


def write_jsonl_gz(path: Path, rows: list[dict]) -> None:
    """Write rows as gzipped JSON lines, byte-identical across runs (gzip mtime fixed at 0)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as gz:
        for row in rows:
            gz.write((json.dumps(row, ensure_ascii=False) + "\n").encode())
    path.write_bytes(buf.getvalue())


def read_jsonl_gz(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
