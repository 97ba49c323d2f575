"""Reading a YAML config with ``key=value`` overrides — one machinery for sweep specs (``complaw sweep``) and
experiment configs (``complaw run --config``), torchtune style.

    >>> tree, where = read_tree("exp.yaml")
    >>> apply_overrides(tree, ["ratio=0.4", "rft.rft_samples=64", "eval.tasks=[]"])

Values of overrides are YAML (``0.4``, ``[0.2,0.4]``, ``null``, ``true``); dotted keys reach into sections.
Every problem is one :class:`~complaw.errors.ComplawError` line naming the file or the override.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from complaw.errors import ComplawError


def read_tree(source: str | Path, *, what: str = "config", text: str | None = None,
              where: str | None = None) -> tuple[dict, str]:
    """The mapping a YAML file holds (or ``text``, read from ``where``), and the name to report it by."""
    if text is None:
        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise ComplawError(f"{what} {str(source)!r}: no such file; give a YAML {what}")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ComplawError(f"{where}: not a text file (not UTF-8); give a YAML {what}") from None
        except OSError as err:
            raise ComplawError(f"{where}: cannot be read ({err.strerror or err})") from None
        if "\x00" in text:
            raise ComplawError(f"{where}: a binary file, not a YAML {what}")
    where = where or str(source)
    try:
        tree = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ComplawError(f"{where}: not valid YAML ({str(err).splitlines()[0]})") from None
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
            raise ComplawError(f"override {item!r}: expected key=value, e.g. {example}")
        try:
            set_dotted(tree, key.strip(), yaml.safe_load(value))
        except yaml.YAMLError:
            raise ComplawError(f"override {item!r}: the value is not valid YAML") from None
    return tree
