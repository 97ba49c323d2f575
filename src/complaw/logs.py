"""Library warnings go to a log file, not the console.

torch, transformers, lm-eval, numpy and statsmodels warn freely (``FutureWarning: past_key_values is
deprecated``, ``RuntimeWarning: divide by zero``); a ``make demo`` log used to be mostly those lines. The CLI
calls :func:`capture` once: Python warnings and the libraries' loggers are written, each warning once, to
:func:`log_path` (``complaw.log`` in complaw's cache; created only when something is written) instead of
stderr — or, when the cache cannot hold it (``COMPLAW_CACHE=/dev/null``), to :func:`fallback_log_path` in the
temporary directory, else nowhere: logging never fails a command. ``complaw --verbose …`` leaves them on the console.

    >>> capture(verbose=False)      # what `complaw` does before running a command
"""

from __future__ import annotations

import importlib.abc
import logging
import os
import sys
from pathlib import Path

#: Loggers of the libraries complaw drives; their records go to the log file.
LIBRARY_LOGGERS = ("py.warnings", "transformers", "peft", "lm-eval", "lm_eval", "datasets", "accelerate",
                   "huggingface_hub", "torch", "urllib3", "filelock", "fsspec")
_state: dict[str, object] = {}


def log_path() -> Path:
    """Where captured warnings go: ``complaw.log`` in complaw's cache directory."""
    from complaw.cache import cache_root

    return cache_root() / "complaw.log"


def fallback_log_path() -> Path:
    """Where captured warnings go when the cache cannot hold :func:`log_path`: the temporary directory."""
    import getpass
    import tempfile

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid
        user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"complaw-{user}.log"


def capture(verbose: bool = False) -> None:
    """Send library warnings to :func:`log_path` (or, with ``verbose``, leave them on stderr)."""
    release()
    if verbose:
        return
    path = log_path()
    handler = _LazyFileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    handler.setLevel(logging.WARNING)
    saved: list = []
    _state.update(handler=handler, saved=saved)
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.propagate))
        logger.addHandler(handler)
        logger.propagate = False
    logging.captureWarnings(True)
    finder = _AfterImport("transformers.utils.logging", _route_transformers)
    sys.meta_path.insert(0, finder)
    _state["finder"] = finder
    if "transformers.utils.logging" in sys.modules:  # already imported (tests, notebooks)
        _route_transformers(sys.modules["transformers.utils.logging"])


def release() -> None:
    """Undo :func:`capture` (the console gets warnings again)."""
    if not _state:
        return
    handler = _state["handler"]
    for logger, propagate in _state["saved"]:
        logger.removeHandler(handler)
        logger.propagate = propagate
    logging.captureWarnings(False)
    if _state["finder"] in sys.meta_path:
        sys.meta_path.remove(_state["finder"])
    tlog = sys.modules.get("transformers.utils.logging")
    if tlog is not None and _state.get("transformers"):
        tlog.enable_default_handler()  # ours left with the loop above (it is the same "transformers" logger)
    handler.close()
    _state.clear()


def _route_transformers(module) -> None:
    """transformers logs through its own stderr handler: swap it for ours while capturing."""
    handler = _state.get("handler")
    if handler is None:
        return
    try:
        module.disable_default_handler()
        module.add_handler(handler)
    except Exception:  # noqa: BLE001 - an older or newer transformers without these: leave its logging alone
        return
    _state["transformers"] = True


class _LazyFileHandler(logging.FileHandler):
    """A file handler that creates its directory and file only when the first record arrives. When the cache
    cannot hold the log (``COMPLAW_CACHE`` names a file or a device, or cannot be written), the records go to
    ``complaw-<user>.log`` in the temporary directory instead, else nowhere: logging never fails a command."""

    def __init__(self, path: Path):
        super().__init__(path, encoding="utf-8", delay=True)
        self._dead = False

    def _open_somewhere(self) -> bool:
        for path in (Path(self.baseFilename), fallback_log_path()):
            try:
                if path.parent.exists() and not path.parent.is_dir():
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                if path.exists() and not path.is_file():
                    continue  # a directory or a device where the log should be
                self.baseFilename = os.path.abspath(path)
                self.stream = self._open()
                return True
            except OSError:
                continue
        self._dead = True
        return False

    def emit(self, record: logging.LogRecord) -> None:
        if self._dead:
            return
        if self.stream is None and not self._open_somewhere():
            return  # an unusable cache and temporary directory: drop the warning rather than fail the command
        try:
            super().emit(record)
        except OSError:
            pass

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        """A write that fails (a full disk) drops the record: no "--- Logging error ---" on the console."""


class _AfterImport(importlib.abc.MetaPathFinder):
    """Run ``hook(module)`` right after ``name`` is first imported (transformers is imported lazily)."""

    def __init__(self, name: str, hook):
        self.name, self.hook = name, hook

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # once: the module is imported once
        spec = next((s for f in sys.meta_path if hasattr(f, "find_spec")
                     and (s := f.find_spec(fullname, path, target)) is not None), None)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module, hook = spec.loader.exec_module, self.hook

        def exec_then_hook(module):
            exec_module(module)
            hook(module)

        spec.loader.exec_module = exec_then_hook
        return spec

