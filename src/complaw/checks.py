"""Checks on what the user hands a command, done before any work starts.

Each check raises :class:`~complaw.errors.ComplawError` with one line naming the input, what is wrong and
what would be right, so the CLI prints it and exits 2:

- :func:`number` — finite and inside a range (``--b nan``, ``--r -1``, ``--seed 1e20``);
- :func:`work_bound` — an argument that sets how much work a command does stays under a stated bound
  (``--samples``, ``-B``, ``--r-step``);
- :func:`input_file` — a file to read exists, is a file and can be read;
- :func:`output_path` — a file or directory to write can be written, checked *before* the work;
- :func:`not_inside` — an output that would overwrite its own source (``compress DIR --out DIR``);
- :func:`not_the_input` — an output file that is the file being read (``results S --export S``);
- :func:`model_output_dir`, :func:`not_inside_checkpoint` — a model is never saved over another model's
  checkpoint (without ``--overwrite``) nor into its folder;
- :func:`write_or_keep` — write a result; when the place asked for cannot be written, write it next to a
  fallback (or to a temporary file) and say where, so a finished result is never lost.

    >>> number(0.3, "--ratio", lo=0, hi=1, hi_open=True)
    0.3
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from pathlib import Path

from complaw.errors import ComplawError

#: Largest seed torch, numpy and Python's random all accept.
MAX_SEED = 2**32 - 1


def number(value, name: str, *, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
           hi_open: bool = False, integer: bool = False, hint: str = "") -> float:
    """``value`` as a finite number within [lo, hi] (open ends with ``lo_open``/``hi_open``), else one line."""
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ComplawError(f"{name} {value!r}: not a number{_hint(hint)}") from None
    if not math.isfinite(x):
        raise ComplawError(f"{name} {value}: must be a finite number{_hint(hint)}")
    if integer and x != int(x):
        raise ComplawError(f"{name} {_fmt(x)}: must be a whole number{_hint(hint)}")
    low_bad = lo is not None and (x <= lo if lo_open else x < lo)
    high_bad = hi is not None and (x >= hi if hi_open else x > hi)
    if low_bad or high_bad:
        shown = str(value) if isinstance(value, int) else _fmt(x)
        where = _range(lo, hi, lo_open, hi_open)
        raise ComplawError(f"{name} {shown}: must {'be' if lo is None or hi is None else 'lie in'} {where}"
                           f"{_hint(hint)}")
    return int(x) if integer else x


def seed(value: int, name: str = "--seed") -> int:
    """A seed every RNG accepts: a whole number in [0, 2**32 - 1]."""
    return int(number(value, name, lo=0, hi=MAX_SEED, integer=True))


def work_bound(value: float, name: str, bound: float, *, what: str = "") -> float:
    """Refuse an amount of work above ``bound`` (the bound is stated in the command's --help too)."""
    if value > bound:
        raise ComplawError(f"{name} {_fmt(value)}: at most {_fmt(bound)}{' ' + what if what else ''}; "
                           f"use a smaller value")
    return value


def input_file(path: str | os.PathLike, what: str, *, directory: bool = False) -> Path:
    """``path`` exists, is a file (or a directory with ``directory``) and can be opened for reading."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ComplawError(f"{what} {p}: no such {'directory' if directory else 'file'}")
    if directory:
        if not p.is_dir():
            raise ComplawError(f"{what} {p}: not a directory")
        if not os.access(p, os.R_OK | os.X_OK):
            raise ComplawError(f"{what} {p}: directory cannot be read (permission denied)")
        return p
    if p.is_dir():
        raise ComplawError(f"{what} {p}: is a directory, expected a file")
    try:
        with open(p, "rb") as fh:
            fh.read(1)
    except OSError as err:
        raise ComplawError(f"{what} {p}: cannot be read ({err.strerror or err})") from None
    return p


def output_path(path: str | os.PathLike, what: str, *, directory: bool = False) -> Path:
    """``path`` can be written: its nearest existing ancestor is a writable directory, and the path itself
    is (or will be) a directory with ``directory``, a file otherwise. Nothing is created."""
    p = Path(path).expanduser()
    if p.exists():
        if directory and not p.is_dir():
            raise ComplawError(f"{what} {p}: exists and is not a directory")
        if not directory and p.is_dir():
            raise ComplawError(f"{what} {p}: is a directory, expected a file path")
        target = p if p.is_dir() else p.parent
        if not os.access(p, os.W_OK) or not os.access(target, os.W_OK | os.X_OK):
            raise ComplawError(f"{what} {p}: cannot be written (permission denied)")
        return p
    ancestor = p.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ComplawError(f"{what} {p}: {ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ComplawError(f"{what} {p}: cannot be created in {ancestor} (permission denied)")
    return p


def not_inside(out: str | os.PathLike, source: str | os.PathLike, what: str = "--out") -> None:
    """Refuse an output equal to or inside the source it is made from (it would overwrite the original)."""
    o, s = Path(out).expanduser().resolve(), Path(source).expanduser().resolve()
    if o == s or s in o.parents:
        raise ComplawError(f"{what} {out}: is (inside) the source {source}; it would overwrite the original — "
                           f"choose another directory")


def write_or_keep(write: Callable[[Path], None], path: str | os.PathLike, what: str, *,
                  fallback_dir: str | os.PathLike | None = None) -> Path:
    """Call ``write(path)``; if that fails with an OSError, write to ``fallback_dir`` (else a temporary
    directory) under the same name, print where it went on stderr, and return the path actually written."""
    p = Path(path)
    try:
        write(p)
        return p
    except OSError as err:
        reason = err.strerror or str(err)
    for base in ([Path(fallback_dir)] if fallback_dir else []) + [Path(tempfile.gettempdir())]:
        alt = base / p.name
        if alt.resolve() == p.resolve():
            continue
        try:
            base.mkdir(parents=True, exist_ok=True)
            write(alt)
        except OSError:
            continue
        print(f"warning: {what} {p}: cannot be written ({reason}); written to {alt} instead", file=sys.stderr)
        return alt
    raise ComplawError(f"{what} {p}: cannot be written ({reason}), nor in a temporary directory")


def _range(lo, hi, lo_open, hi_open) -> str:
    if hi is None:
        return f"{'>' if lo_open else '≥'} {_fmt(lo)}" if lo is not None else "finite"
    if lo is None:
        return f"{'<' if hi_open else '≤'} {_fmt(hi)}"
    return f"{'(' if lo_open else '['}{_fmt(lo)}, {_fmt(hi)}{')' if hi_open else ']'}"


def _fmt(x) -> str:
    """A number as a user would type it: ``4294967295``, ``0.0001``, ``1e+08`` only when it is huge."""
    x = float(x)
    if x.is_integer() and abs(x) < 1e16:
        return str(int(x))
    return f"{x:g}"


def _hint(hint: str) -> str:
    return f"; {hint}" if hint else ""


#: Most bootstrap resamples of a fit (the law commands' ``-B`` and a sweep's ``laws.bootstrap``).
MAX_BOOTSTRAP = 100_000


@dataclass(frozen=True)
class Bound:
    """The range of one numeric setting and why it has it, checked with :func:`bounded` before any work.

    ``lo``/``hi`` are inclusive unless ``lo_open``/``hi_open``; ``None`` leaves that side open-ended (the
    value must still be finite). ``why`` is said in the message, e.g. ``Bound(1, 1000, "timed repeats")``.
    """

    lo: float | None = None
    hi: float | None = None
    why: str = ""
    _: KW_ONLY
    lo_open: bool = False
    hi_open: bool = False
    integer: bool = False

    def __repr__(self) -> str:
        return f"Bound({range_text(self)})"


def bounded(value, name: str, bound: Bound) -> float:
    """``value`` checked against ``bound`` (finite, inside the range, whole when it says so), else one line
    naming ``name``, the value, the range and why."""
    if isinstance(value, bool):  # True is not the number 1 to a user
        raise ComplawError(f"{name} {value}: not a number{_hint(bound.why)}")
    return number(value, name, lo=bound.lo, hi=bound.hi, lo_open=bound.lo_open, hi_open=bound.hi_open,
                  integer=bound.integer, hint=bound.why)


def machine_cores() -> int:
    """The machine's CPU cores (``os.cpu_count()``): more torch threads than cores only contend."""
    return os.cpu_count() or 1


def not_the_input(out: str | os.PathLike, source: str | os.PathLike, what: str, source_what: str) -> None:
    """Refuse an output file that is the input it is made from (``results store.db --export store.db``,
    ``report out/comparison.csv --out out``): writing it would destroy what is being read."""
    o, s = Path(out).expanduser(), Path(source).expanduser()
    try:
        same = o.resolve() == s.resolve() or (o.exists() and s.exists() and os.path.samefile(o, s))
    except OSError:
        same = False
    if same:
        raise ComplawError(f"{what} {out}: is {source_what} ({source}); writing it would overwrite the input — "
                           "choose another file name")


#: The files a saved model consists of (``save_pretrained``, the tokenizer, ``complaw.json``).
CHECKPOINT_FILES = ("config.json", "complaw.json", "model.safetensors", "model.safetensors.index.json",
                    "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                    "pytorch_model.bin")


def _checkpoint_files(d: Path) -> list[str]:
    try:
        names = {p.name for p in d.iterdir()}
    except OSError:
        return []
    found = [n for n in CHECKPOINT_FILES if n in names]
    found += sorted(n for n in names if n.endswith(".safetensors") and n not in found)
    return found


def _is_checkpoint(d: Path) -> bool:
    """A model checkpoint folder: a config.json with weights, or complaw's metadata file."""
    found = _checkpoint_files(d)
    return "complaw.json" in found or ("config.json" in found and any(
        n.endswith((".safetensors", ".bin")) for n in found))


def model_output_dir(out: str | os.PathLike, what: str = "--out", *, overwrite: bool = False) -> Path:
    """A directory a model is saved into must not hold another model: refuse (without creating anything) an
    ``out`` that already holds checkpoint files (config.json, weights, complaw.json, tokenizer) unless
    ``overwrite``, and one inside another model's checkpoint folder always."""
    p = output_path(out, what, directory=True)
    not_inside_checkpoint(p, what, shown=out)
    if p.is_dir() and not overwrite:
        found = _checkpoint_files(p)
        if found:
            shown = ", ".join(found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
            raise ComplawError(f"{what} {out}: already holds a model checkpoint ({shown}); saving would overwrite "
                               "it — choose a new or empty directory, or pass --overwrite to replace it")
        if any(p.iterdir()):  # e.g. the working directory (an empty --out reads as "."): the model would mix in
            raise ComplawError(f"{what} {str(out) or repr('')}: is a folder that already holds other files; a model "
                               "is saved into a new or empty directory — name one, e.g. out/my-model")
    return p


def range_text(bound: Bound) -> str:
    """A bound's range as its messages write it: ``[1, 1000]``, ``(0, 1]``, ``≥ 1``."""
    return _range(bound.lo, bound.hi, bound.lo_open, bound.hi_open)


def not_inside_checkpoint(out: str | os.PathLike, what: str = "--out", *, shown=None) -> None:
    """Refuse an output (file or directory) inside a model checkpoint folder (``run M --out M/config.json``
    would replace the model's config with a record): it would mix with, or overwrite, that model's files."""
    for parent in Path(out).expanduser().absolute().parents:
        if parent.is_dir() and _is_checkpoint(parent):
            raise ComplawError(f"{what} {shown or out}: is inside the model checkpoint {parent}; saving there would "
                               "mix with (or overwrite) that model's files — choose a path outside it")


#: Multipliers a D unit's name may start with (``k-tokens``, ``M-tokens``, ``100-samples``).
_UNIT_PREFIX = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9}
STORE_UNITS = "samples, tokens, k-tokens, M-tokens, k-samples or N-samples (e.g. 100-samples)"


def unit_parts(name: str) -> tuple[float, str] | None:
    """``'k-tokens'`` → (1000, 'tokens'); ``'samples'`` → (1, 'samples'); None when the name is neither."""
    prefix, _, base = name.rpartition("-")
    if base not in ("samples", "tokens"):
        return None
    if prefix in _UNIT_PREFIX:
        return _UNIT_PREFIX[prefix], base
    try:
        mult = float(prefix)
    except ValueError:
        return None
    return (mult, base) if mult > 0 and math.isfinite(mult) else None
