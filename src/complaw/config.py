"""Reading a YAML config with ``key=value`` overrides — one machinery for sweep specs (``complaw sweep``) and
experiment configs (``complaw run --config``), torchtune style.

    >>> tree, where = read_tree("exp.yaml")
    >>> apply_overrides(tree, ["ratio=0.4", "rft.rft_samples=64", "eval.tasks=[]"])

Values of overrides are YAML (``0.4``, ``[0.2,0.4]``, ``null``, ``true``); dotted keys reach into sections.
Every problem is one :class:`~complaw.errors.ComplawError` line naming the file or the override.

YAML is read by :func:`load_yaml`: ``yaml.safe_load`` with bounds checked *while* the document is composed,
before any object is built from it — the text's size (:data:`MAX_YAML_BYTES`), the nesting depth
(:data:`MAX_YAML_DEPTH`: 50,000 nested brackets would exhaust Python's stack) and the number of values with
every alias expanded (:data:`MAX_YAML_NODES`: a "billion laughs" of nested aliases is a few lines that expand
to 10^9 values once validated). An override value may not use anchors or aliases at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from complaw.errors import ComplawError

#: Largest YAML config or spec read (a spec is a few hundred bytes; 1 MiB is far beyond any).
MAX_YAML_BYTES = 1 << 20
#: Largest ``key=value`` override or option value (a list of a few hundred ratios fits).
MAX_VALUE_BYTES = 64 << 10
#: Deepest nesting of YAML collections (a spec nests three deep).
MAX_YAML_DEPTH = 64
#: Most values a YAML document may hold, every alias expanded (a spec holds tens).
MAX_YAML_NODES = 100_000


class _BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses, while composing (before constructing anything), a document nested
    deeper than :data:`MAX_YAML_DEPTH` or holding more than :data:`MAX_YAML_NODES` values with its aliases
    expanded; with ``aliases = False`` it refuses any alias."""

    aliases = True

    def __init__(self, stream):
        super().__init__(stream)
        self._depth, self._count, self._sizes = 0, 0, {}

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            if not self.aliases:
                raise _Refused(f"uses the alias *{event.anchor} (anchors and aliases are not accepted here); "
                               "write the value out")
            node = super().compose_node(parent, index)
            size = self._sizes.get(id(node))
            if size is None:  # the anchor is still being composed: the value would contain itself
                raise _Refused(f"the alias *{event.anchor} refers to a value that contains it; write it out")
            self._add(size)
            return node
        self._depth += 1
        if self._depth > MAX_YAML_DEPTH:
            raise _Refused(f"nested more than {MAX_YAML_DEPTH} levels deep; a config nests a few levels")
        start = self._count
        node = super().compose_node(parent, index)
        self._depth -= 1
        self._add(1)
        self._sizes[id(node)] = self._count - start
        return node

    def _add(self, n: int) -> None:
        self._count += n
        if self._count > MAX_YAML_NODES:
            raise _Refused(f"holds more than {MAX_YAML_NODES:,} values with its aliases expanded; a config "
                           "holds tens")


class _NoAliasLoader(_BoundedLoader):
    aliases = False


class _Refused(yaml.YAMLError):
    """A YAML document refused by the bounds of :class:`_BoundedLoader` (the reason is the message)."""


def load_yaml(text: str, where: str, *, aliases: bool = True, max_bytes: int = MAX_YAML_BYTES) -> Any:
    """``yaml.safe_load(text)`` within bounds on size, depth and expanded size; a refusal (or text that is not
    YAML) is one :class:`ComplawError` line starting with ``where``. ``aliases=False`` refuses aliases."""
    size = len(text.encode("utf-8", "surrogatepass")) if len(text) * 4 > max_bytes else len(text)
    if size > max_bytes:
        raise ComplawError(f"{where}: {size:,} bytes, more than {max_bytes:,}; a config is a few hundred bytes")
    try:
        return yaml.load(text, Loader=_BoundedLoader if aliases else _NoAliasLoader)  # noqa: S506 (a SafeLoader)
    except _Refused as err:
        raise ComplawError(f"{where}: {err}") from None
    except yaml.YAMLError as err:
        raise ComplawError(f"{where}: not valid YAML ({str(err).splitlines()[0]})") from None
    except (ValueError, OverflowError, RecursionError) as err:  # e.g. an integer of more than 4,300 digits
        raise ComplawError(f"{where}: a value cannot be read ({str(err).split(';')[0][:120]}); give numbers of "
                           "ordinary size") from None


def read_tree(source: str | Path, *, what: str = "config", text: str | None = None,
              where: str | None = None) -> tuple[dict, str]:
    """The mapping a YAML file holds (or ``text``, read from ``where``), and the name to report it by."""
    if text is None:
        path = Path(source)
        where = str(path)
        if path.is_dir():
            raise ComplawError(f"{what} {str(source)!r}: is a directory; give a YAML {what} file")
        if not path.is_file():
            raise ComplawError(f"{what} {str(source)!r}: no such file; give a YAML {what}")
        try:
            size = path.stat().st_size
            if size > MAX_YAML_BYTES:  # refused before it is read
                raise ComplawError(f"{where}: {size:,} bytes, more than {MAX_YAML_BYTES:,}; a YAML {what} is a "
                                   "few hundred bytes")
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ComplawError(f"{where}: not a text file (not UTF-8); give a YAML {what}") from None
        except OSError as err:
            raise ComplawError(f"{where}: cannot be read ({err.strerror or err})") from None
        if "\x00" in text:
            raise ComplawError(f"{where}: a binary file, not a YAML {what}")
    where = where or str(source)
    tree = load_yaml(text, where) or {}
    if not isinstance(tree, dict):
        raise ComplawError(f"{where}: the {what} must be a mapping of keys to values")
    return tree, where


def set_dotted(tree: dict, dotted: str, value: Any) -> None:
    """``tree["a"]["b"] = value`` for ``dotted = "a.b"``, creating sections as needed."""
    keys = dotted.split(".")
    node = tree
    for k in keys[:-1]:
        if not isinstance(node.get(k, {}), dict):
            raise ComplawError(f"override {dotted}: {k!r} is not a section")
        node = node.setdefault(k, {})
    node[keys[-1]] = value


def has_dotted(tree: dict, dotted: str) -> bool:
    """Whether ``tree`` sets ``dotted`` (``"a.b"``: ``tree["a"]["b"]``)."""
    node: Any = tree
    for k in dotted.split("."):
        if not isinstance(node, dict) or k not in node:
            return False
        node = node[k]
    return True


def apply_overrides(tree: dict, overrides: list[str] | None, *, example: str = "rft.lr=1e-3") -> dict:
    """Apply ``key=value`` overrides (values read as YAML) to ``tree`` in place; returns it."""
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ComplawError(f"override {_short(item)}: expected key=value, e.g. {example}")
        set_dotted(tree, key.strip(), override_value(value, f"override {_short(item)}"))
    return tree


def override_value(value: str, where: str) -> Any:
    """The value of a ``key=value`` override (or method option) read as YAML: at most
    :data:`MAX_VALUE_BYTES`, within the depth and size bounds, without anchors or aliases."""
    return load_yaml(value, where, aliases=False, max_bytes=MAX_VALUE_BYTES)


def _short(text: str, n: int = 60) -> str:
    """``text`` quoted, cut to ``n`` characters (an override may be a huge value)."""
    return repr(text if len(text) <= n else text[:n] + "…")
