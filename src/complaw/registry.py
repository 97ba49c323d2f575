"""One small registry class for everything complaw looks up by name: compression methods, law forms, model
families (adapters), checkpoint loaders, sweep executors.

An entry is registered once: a second registration of a name raises (the last write never silently wins).
An entry may be *lazy*, ``"module:object"``: the module is imported the first time the entry is used, so a
registry can list Ray's executor or SliceGPT's loader without importing Ray or torch. A registry may name
*built-in modules* that register their entries when imported; they are imported on the registry's first use,
so no package ``__init__`` has to remember to import them.

Plugins: every module named by the ``complaw.plugins`` entry-point group, or listed (comma-separated module
names or ``.py`` paths) in the ``COMPLAW_PLUGINS`` environment variable, is imported on the first use of any
registry — so a method in your own package appears in ``complaw methods``, sweeps and ``complaw run``. A plugin
that cannot be imported is one ``warning:`` line on stderr, once, and is left out; commands that do not need
it work as before.

    >>> METHODS = Registry("method", unknown="method {name!r}: unknown compression method; available: {available}")
    >>> @METHODS.register("my-method", help="what it does")
    ... def my_method(model, ratio, *, seed, options): ...
    >>> FORMS.lazy("my-form", "my_package.laws:MY_FORM", help="L = ...")
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from complaw.errors import ComplawError

T = TypeVar("T")

#: The environment variable naming plugin modules (comma-separated module names or .py files).
PLUGINS_ENV = "COMPLAW_PLUGINS"
#: The entry-point group of plugin modules.
PLUGINS_GROUP = "complaw.plugins"


@dataclass
class _Entry:
    obj: Any = None
    target: str | None = None  # "module:object" while not yet imported
    help: str = ""
    where: str = ""  # the module that registered it (named in the duplicate error)


class Registry(Generic[T]):
    """Named entries of one kind.

    Args:
        kind: what an entry is, for messages ("method", "law form", …).
        unknown: the one-line error for an unknown name, formatted with ``name`` and ``available``.
        builtins: modules whose import registers the built-in entries (imported on first use).
        ordered: list the names in registration order (default: sorted).
    """

    def __init__(self, kind: str, *, unknown: str | None = None, builtins: Sequence[str] = (),
                 ordered: bool = False):
        self.kind = kind
        self.ordered = ordered
        self.unknown = unknown or (kind + " {name!r}: unknown; available: {available}")
        self.builtins = tuple(builtins)
        self._entries: dict[str, _Entry] = {}
        self._loaded = not self.builtins

    # --- registering -------------------------------------------------------------------------------------
    def register(self, name: str, obj: T | None = None, *, help: str = "") -> Any:
        """Register ``obj`` under ``name``; without ``obj``, a decorator registering what it decorates."""
        if obj is None:
            def deco(fn):
                self._add(name, _Entry(obj=fn, help=help or _doc(fn), where=getattr(fn, "__module__", "")))
                return fn

            return deco
        self._add(name, _Entry(obj=obj, help=help or _doc(obj), where=_caller()))
        return obj

    def lazy(self, name: str, target: str, *, help: str = "") -> None:
        """Register ``"module:object"``, imported the first time the entry is used."""
        module, sep, attr = target.partition(":")
        if not sep or not module or not attr:
            raise ValueError(f"{self.kind} {name!r}: lazy target {target!r} must read 'module:object'")
        self._add(name, _Entry(target=target, help=help, where=_caller()))

    def unregister(self, name: str) -> None:
        """Remove an entry (tests that register a throw-away entry remove it again)."""
        self._entries.pop(name, None)

    def _add(self, name: str, entry: _Entry) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{self.kind} name {name!r}: must be a non-empty string")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered (by {self._entries[name].where or '?'}); "
                             f"a second registration from {entry.where or '?'} would silently replace it — "
                             "pick another name, or unregister the first")
        self._entries[name] = entry

    # --- looking up --------------------------------------------------------------------------------------
    def _ensure(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self.builtins:
                importlib.import_module(module)
        load_plugins()

    def get(self, name: str) -> T:
        """The entry ``name`` (importing it if lazy); an unknown name is one :class:`ComplawError` line."""
        self._ensure()
        entry = self._entries.get(name)
        if entry is None:
            shown = name if len(str(name)) <= 80 else str(name)[:77] + "…"  # one readable line, whatever was typed
            raise ComplawError(self.unknown.format(name=shown, available=", ".join(self.names()) or "none"))
        if entry.target is not None:
            module, _, attr = entry.target.partition(":")
            entry.obj = getattr(importlib.import_module(module), attr)
            entry.target = None
            entry.help = entry.help or _doc(entry.obj)
        return entry.obj

    def names(self) -> list[str]:
        """Registered names, sorted or in registration order (lazy entries are not imported)."""
        self._ensure()
        return list(self._entries) if self.ordered else sorted(self._entries)

    def help(self, name: str) -> str:
        self._ensure()
        if name not in self._entries:
            self.get(name)  # raises the unknown-name line
        return self._entries[name].help

    def entries(self) -> list[tuple[str, str]]:
        """``(name, help)`` of every entry, in :meth:`names` order, without importing lazy ones."""
        return [(n, self._entries[n].help) for n in self.names()]

    def items(self) -> list[tuple[str, T]]:
        """``(name, entry)`` of every entry, in :meth:`names` order (imports the lazy ones)."""
        return [(n, self.get(n)) for n in self.names()]

    def __contains__(self, name: object) -> bool:
        self._ensure()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries)"


def _doc(obj: Any) -> str:
    doc = getattr(obj, "help", None) or getattr(obj, "description", None)
    if isinstance(doc, str) and doc:
        return doc
    text = (getattr(obj, "__doc__", None) or "").strip() if callable(obj) else ""
    return text.split("\n\n")[0].replace("\n", " ") if text else ""


def _caller() -> str:
    frame = sys._getframe(2)
    return frame.f_globals.get("__name__", "?")


_plugins_loaded: set[str] = set()
_plugins_failed: dict[str, str] = {}  # plugin → why it could not be imported (warned about once)
_entry_points: list = []  # read once: the complaw.plugins entry points not yet imported
_entry_points_read = False


def _read_entry_points() -> list:
    """The entry points of group :data:`PLUGINS_GROUP` (tests replace this to fake a broken one)."""
    from importlib.metadata import entry_points

    return list(entry_points(group=PLUGINS_GROUP))


def load_plugins() -> list[str]:
    """Import the plugin modules (entry points of group ``complaw.plugins`` and ``$COMPLAW_PLUGINS``) not yet
    imported; returns the names imported now.

    A plugin that cannot be imported (a missing module, an error at import) is reported once, as one
    ``warning:`` line on stderr naming it, and left out: its entries are missing, every other command works."""
    global _entry_points_read
    if not _entry_points_read:
        _entry_points_read = True
        try:
            eps = _read_entry_points()
        except Exception as err:  # noqa: BLE001 - broken package metadata must not break every command
            eps = []
            _warn_plugin(f"entry points {PLUGINS_GROUP}", err, "reinstall the package that declares them")
        _entry_points.extend((f"entry point {ep.name} ({ep.value})", ep.load) for ep in eps)
    wanted: list[tuple[str, Callable[[], Any], str]] = [
        (item, lambda item=item: _import_plugin(item), f"fix it or remove it from ${PLUGINS_ENV}")
        for item in filter(None, (s.strip() for s in os.environ.get(PLUGINS_ENV, "").split(",")))]
    wanted += [(key, load, "fix or uninstall the package that declares it") for key, load in _entry_points]
    done = []
    for key, load, hint in wanted:
        if key in _plugins_loaded or key in _plugins_failed:
            continue
        _plugins_loaded.add(key)
        try:
            load()
        except Exception as err:  # noqa: BLE001 - whatever a plugin raises on import, the others still work
            _plugins_loaded.discard(key)
            _warn_plugin(key, err, hint)
            continue
        done.append(key)
    return done


def _warn_plugin(key: str, err: BaseException, hint: str) -> None:
    why = (str(err).strip().splitlines() or [""])[0][:200]
    _plugins_failed[key] = f"{type(err).__name__}: {why}"
    print(f"warning: plugin {key}: cannot be imported ({_plugins_failed[key]}); left out — {hint}",
          file=sys.stderr)


def _import_plugin(item: str) -> None:
    """Import a plugin by module name, or a ``.py`` file by path (as module ``complaw_plugin_<stem>``)."""
    if item.endswith(".py"):
        path = Path(item).expanduser()
        if not path.is_file():
            raise OSError(f"no such file: {path}")
        name = "complaw_plugin_" + "".join(c if c.isalnum() else "_" for c in path.stem)
        if name in sys.modules:
            return
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
    else:
        importlib.import_module(item)
