"""complaw's cache directory: converted GGUF checkpoints, fetched real models, PruneNet policies, task files.

``$COMPLAW_CACHE`` if set, else ``$XDG_CACHE_HOME/complaw``, else ``~/.cache/complaw``.

    >>> cache_dir("gguf")            # PosixPath('/home/me/.cache/complaw/gguf'), created on demand
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def cache_root() -> Path:
    """The root of complaw's cache (not created)."""
    base = os.environ.get("COMPLAW_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "complaw")
    return Path(base)


def cache_dir(*parts: str) -> Path:
    """``cache_root()/parts…``, created if missing."""
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
