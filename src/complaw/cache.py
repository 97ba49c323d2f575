"""complaw's cache directory: converted GGUF checkpoints, fetched real models, PruneNet policies, task files.

``$COMPLAW_CACHE`` if set, else ``$XDG_CACHE_HOME/complaw``, else ``~/.cache/complaw``.

A command that only *reads* the cache (``complaw policy list``, ``policy clear``) looks at it inside
:func:`reading`: nothing is created then, and a missing folder reads as empty. A cache root that is not a
directory (``COMPLAW_CACHE=/dev/null``, a plain file) is one :class:`~complaw.errors.ComplawError` line for the
commands that need the cache; the others never touch it.

    >>> cache_dir("gguf")            # PosixPath('/home/me/.cache/complaw/gguf'), created on demand
    >>> with reading():
    ...     cache_dir("prunenet")    # the same path, not created
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from complaw.errors import CacheUnusable

_reading = [False]  # inside reading(): cache_dir() creates nothing


def cache_root() -> Path:
    """The root of complaw's cache (not created)."""
    base = os.environ.get("COMPLAW_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "complaw")
    return Path(base)


def _where() -> str:
    """How the user set the cache root, for messages."""
    if os.environ.get("COMPLAW_CACHE"):
        return f"the cache COMPLAW_CACHE={os.environ['COMPLAW_CACHE']}"
    return f"the cache {cache_root()}"


def check_usable(path: Path) -> None:
    """Refuse, without creating anything, a cache path under a non-directory (``COMPLAW_CACHE=/dev/null``)."""
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    if p.exists() and not p.is_dir():
        raise CacheUnusable(f"{_where()}: {p} is not a directory; set COMPLAW_CACHE to a writable directory "
                           "(or unset it for ~/.cache/complaw)")


def cache_dir(*parts: str) -> Path:
    """``cache_root()/parts…``, created if missing (not inside :func:`reading`).

    Raises:
        ComplawError: the cache cannot hold it (its root is a file or a device, or cannot be written)."""
    path = cache_root().joinpath(*parts)
    check_usable(path)
    if _reading[0]:
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CacheUnusable(f"{_where()}: {path} cannot be created ({err.strerror or err}); set COMPLAW_CACHE to "
                           "a writable directory") from None
    return path


@contextlib.contextmanager
def reading() -> Iterator[None]:
    """Within: :func:`cache_dir` returns paths without creating them (for commands that only read)."""
    before = _reading[0]
    _reading[0] = True
    try:
        yield
    finally:
        _reading[0] = before


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
