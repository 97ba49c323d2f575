"""The compression-method registry, each method's typed options, and the record every compression returns.

A method is a function ``fn(model, ratio, *, seed, **options) -> (model, details)`` registered by name with
``@register_method("name")`` in its own module (the built-in modules are imported on the registry's first
use; plugins come through :mod:`complaw.registry`). Its keyword options, with their type annotations,
defaults and the ``Args:`` of its docstring, become a pydantic model (:attr:`MethodSpec.options`): every
option has a type, a default and a help string, is validated before any work, printed by
``complaw methods METHOD`` and stored, resolved, in the compression record. :func:`compress` validates the
ratio and the options, times the call, counts parameters before and after, and returns the compressed model
with a :class:`CompressionRecord`. Adding a method is one new module, never a branch in the pipeline.

    >>> model, record = compress(model, "prunenet", ratio=0.3, seed=0)
    >>> record.ratio, record.param_reduction   # the method's own setting vs the measured fraction removed
"""

from __future__ import annotations

import inspect
import math
import re
import time
import types
import typing
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from torch import nn

from complaw.checks import Bound, bounded, range_text
from complaw.errors import CacheUnusable, ComplawError
from complaw.models.params import count_parameters
from complaw.registry import Registry

MethodFn = Callable[..., tuple[nn.Module, dict[str, Any]]]

#: The range of a ``round_to`` option, shared by the methods that round kept sizes.
ROUND_TO = Bound(1, 65_536, "kept sizes are rounded to multiples of it (8 or 64 suit GPU kernels; 1: no rounding)",
                 integer=True)

#: Options that carry objects made at run time (not settings): validated as anything, kept out of records.
RUNTIME_OPTIONS = ("tokenizer",)


class MethodOptions(BaseModel):
    """Base of every method's options model: strict types, unknown options refused."""

    model_config = ConfigDict(strict=True, extra="forbid", arbitrary_types_allowed=True, frozen=True)


@dataclass(frozen=True)
class MethodSpec:
    """A registered compression method.

    Attributes:
        options: the pydantic model of its options (field types, defaults and help strings).
    """

    name: str
    fn: MethodFn
    needs_calibration: bool
    description: str
    pre_norm_only: bool = False  # relies on computational invariance: pure pre-norm families only
    options: type[MethodOptions] = MethodOptions
    #: the range of each numeric option (and why), checked with the options before any work
    bounds: dict[str, Bound] = field(default_factory=dict)
    #: the method's own check of its resolved options (choices, options that go together), before any work
    check: Callable[[MethodOptions], None] | None = None

    def option_rows(self) -> list[dict[str, str]]:
        """One row per option: name, type, default and help (what ``complaw methods METHOD`` prints), the
        help ending with the option's range where it has one."""
        return [{"option": name, "type": _type_name(f.annotation), "default": repr(f.default),
                 "help": _plain(f.description or "") + (f" (range {range_text(self.bounds[name])})"
                                                        if name in self.bounds else "")}
                for name, f in self.options.model_fields.items()]


@dataclass
class CompressionRecord:
    """What a compression did, measured.

    ``ratio`` is the method's own compression setting; ``param_reduction`` is the measured fraction of
    parameters removed, (params_before - params_after) / params_before, which can differ a lot from
    ``ratio`` (and be negative, e.g. SliceGPT on tied-embedding models at low ratios). ``options`` are the
    method's options as resolved (defaults included; run-time objects such as a tokenizer left out).
    """

    method: str
    ratio: float
    seed: int
    options: dict[str, Any]
    params_before: int
    params_after: int
    param_reduction: float
    wall_time_s: float
    kept_per_layer: list[int] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


METHODS: Registry[MethodSpec] = Registry(
    "method", unknown="method {name!r}: unknown compression method; available: {available}",
    builtins=("complaw.compress.ffn", "complaw.compress.layerdrop", "complaw.compress.prunenet",
              "complaw.compress.quant", "complaw.compress.slicegpt"))


def register_method(name: str, *, needs_calibration: bool = False, description: str = "",
                    pre_norm_only: bool = False, help_from: tuple[type, ...] = (),
                    bounds: dict[str, Bound] | None = None, check: Callable[[Any], None] | None = None):
    """Decorator registering ``fn`` as compression method ``name`` (a second method of the same name raises).

    The options model is built from ``fn``'s keyword parameters after ``seed``: their annotations are the
    types, their defaults the defaults, and the ``Args:`` entries of ``fn``'s docstring (or the
    ``Attributes:`` of the classes in ``help_from``, which take precedence) the help strings.
    ``pre_norm_only=True`` marks a method that needs every norm before its block (SliceGPT's rotations):
    :func:`compress` refuses it on families with post-norms (Gemma-3) with one line saying why.
    ``bounds`` gives numeric options a range and the reason for it (:class:`~complaw.checks.Bound`), e.g.
    ``{"episodes": Bound(1, 1000, "REINFORCE episodes (the paper: 10-20)", integer=True)}``: a value outside
    is refused before any work, in one line that says why. Every numeric option must be finite. ``check``
    is called with the resolved options (attributes by name) before any work, to refuse, with a
    :class:`ComplawError` line, what a type and a range cannot say (one of a few names, options that go together).
    """

    def deco(fn: MethodFn) -> MethodFn:
        model = options_model(name, fn, help_from)
        unknown = set(bounds or {}) - set(model.model_fields)
        if unknown:
            raise TypeError(f"method {name!r}: bounds for options it does not take: {', '.join(sorted(unknown))}")
        spec = MethodSpec(name, fn, needs_calibration, description or (fn.__doc__ or "").strip(), pre_norm_only,
                          model, dict(bounds or {}), check)
        METHODS.register(name, spec, help=spec.description)
        return fn

    return deco


def options_model(name: str, fn: Callable, help_from: tuple[type, ...] = ()) -> type[MethodOptions]:
    """The pydantic model of ``fn``'s options (every keyword parameter but ``model``, ``ratio``, ``seed``)."""
    hints = typing.get_type_hints(fn)
    helps = _doc_entries(fn.__doc__ or "", "Args")
    for cls in help_from:
        helps.update(_doc_entries(cls.__doc__ or "", "Attributes"))
    fields: dict[str, Any] = {}
    for key, p in inspect.signature(fn).parameters.items():
        if key in ("model", "ratio", "seed") or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        if p.default is inspect.Parameter.empty:
            raise TypeError(f"method {name!r}: option {key!r} needs a default (options are keyword settings)")
        annotation = Any if key in RUNTIME_OPTIONS else hints.get(key, Any)
        fields[key] = (annotation, Field(p.default, description=helps.get(key, "")))
    model_name = "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", name) if part) + "Options"
    return create_model(model_name, __base__=MethodOptions, **fields)


def _doc_entries(doc: str, section: str) -> dict[str, str]:
    """``name: text`` entries of a Google-style docstring section (``a, b: text`` gives both the text)."""
    lines = inspect.cleandoc(doc).splitlines()
    out: dict[str, str] = {}
    try:
        start = next(i for i, ln in enumerate(lines) if ln.strip() == section + ":")
    except StopIteration:
        return out
    indent, names = None, []
    for ln in lines[start + 1:]:
        if not ln.strip():
            continue
        depth = len(ln) - len(ln.lstrip())
        if depth == 0:
            break
        if indent is None:
            indent = depth
        m = re.match(r"\s*([\w, ]+?):\s*(.*)", ln) if depth == indent else None
        if m:
            names = [n.strip() for n in m.group(1).split(",") if n.strip()]
            for n in names:
                out[n] = m.group(2).strip()
        elif depth > indent and names:
            for n in names:
                out[n] = (out[n] + " " + ln.strip()).strip()
        elif depth < indent:
            break
    return out


def _plain(text: str) -> str:
    """A docstring fragment as plain text: ``:func:`x``` and ````x```` become ``x``."""
    return re.sub(r":\w+:`~?([^`]+)`", r"\1", text).replace("``", "")


def _type_name(annotation: Any) -> str:
    if annotation is Any:
        return "any"
    text = getattr(annotation, "__name__", None) if not typing.get_args(annotation) else None
    return text or str(annotation).replace("typing.", "").replace("NoneType", "None")


def unsupported_reason(method: str, model_or_config) -> str | None:
    """Why ``method`` cannot compress this model's family, or None when it can."""
    from complaw.models.adapters import get_adapter

    spec = get_method(method)
    adapter = get_adapter(model_or_config)  # an unknown family: one line naming the supported ones
    if spec.pre_norm_only and not adapter.pre_norm_only:
        return (f"method {method!r} needs a pure pre-norm model, and model_type {adapter.model_type!r} has "
                f"post-norms ({', '.join(adapter.post_norms)}) that break its computational invariance (an "
                "RMSNorm of a block's output cannot be rotated through); use an FFN method (prunenet, "
                "random-ffn, magnitude-ffn, maxabs-ffn) or layer-drop on this family")
    return None


def check_family(method: str, model_or_config) -> None:
    """Raise :class:`ComplawError` when ``method`` does not support the model's family."""
    reason = unsupported_reason(method, model_or_config)
    if reason:
        raise ComplawError(reason)


def available_methods() -> dict[str, MethodSpec]:
    """All registered methods by name (the built-in modules and plugins are imported on first use)."""
    return dict(METHODS.items())


def get_method(name: str) -> MethodSpec:
    return METHODS.get(name)


def check_options(method: str, options: dict[str, Any]) -> MethodOptions:
    """The method's validated options; an option it does not take, or a value of the wrong type, is one line.

    Types are strict (a string where a number is expected, a number where a string is, is a user error, not a
    crash deep in the method); an integer is accepted for a float option.
    """
    spec = get_method(method)
    model = spec.options
    for key in options:
        if key not in model.model_fields:
            raise ComplawError(f"option {key}: method {method!r} takes no such option; it takes "
                               f"{', '.join(model.model_fields) or 'none'} (complaw methods {method})")
    try:
        resolved = model(**options)
    except ValidationError as err:
        e = err.errors()[0]
        key = str(e["loc"][0]) if e["loc"] else "?"
        f = model.model_fields.get(key)
        kind = _kind_words(f.annotation) if f is not None else "another value"
        raise ComplawError(f"option {key}={options.get(key)!r}: method {method!r} needs {kind} here, e.g. "
                           f"{key}={f.default if f is not None else ''} (complaw methods {method})") from None
    for key in options:  # ranges, checked on what was given (the defaults lie inside them)
        value = getattr(resolved, key)
        bound = spec.bounds.get(key)
        if bound is not None and value is not None:
            try:
                bounded(value, f"option {key}", replace(bound, why=f"{bound.why} (complaw methods {method})"))
            except ComplawError as err:  # "option episodes 1e9: …" as the option was written: episodes=1e9
                raise ComplawError(str(err).replace(f"option {key} ", f"option {key}=", 1)) from None
        elif isinstance(value, float) and not math.isfinite(value):
            raise ComplawError(f"option {key}={value}: must be a finite number (complaw methods {method})")
    if spec.check is not None:
        try:
            spec.check(resolved)
        except CacheUnusable:
            raise
        except ComplawError as err:
            raise ComplawError(f"option {err} (complaw methods {method})") from None
    return resolved


def _kind_words(annotation: Any) -> str:
    """``int`` → "an integer", ``float | None`` → "a number or null", … for one-line errors."""
    words = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    parts = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) \
        else (annotation,)
    return " or ".join(words.get(a, _type_name(a)) for a in parts)


def check_ratio(ratio: float) -> float:
    try:
        ratio = float(ratio)
    except (TypeError, ValueError):
        raise ComplawError(f"ratio {ratio!r}: not a number; give a value in [0, 1), e.g. 0.3") from None
    if not 0.0 <= ratio < 1.0:
        raise ComplawError(f"ratio {ratio}: must lie in [0, 1), e.g. 0.3")
    return ratio


def compress(model: nn.Module, method: str, ratio: float, *, seed: int = 0, **options: Any):
    """Compress ``model`` in place with a registered method.

    Args:
        model: a Hugging Face causal LM of a supported family.
        method: registered method name (see :func:`available_methods`).
        ratio: the method's own compression setting in [0, 1).
        seed: seed for every random choice the method makes.
        **options: method-specific options (recorded in the result).

    Returns:
        ``(model, record)``: the compressed model and its :class:`CompressionRecord`.
    """
    spec = get_method(method)
    ratio = check_ratio(ratio)
    resolved = check_options(method, options)
    check_family(method, model)
    before = count_parameters(model)
    start = time.perf_counter()
    model, details = spec.fn(model, ratio, seed=seed, **dict(resolved))
    wall = time.perf_counter() - start
    after = count_parameters(model)
    kept = details.pop("kept_per_layer", [])
    record = CompressionRecord(
        method=method,
        ratio=ratio,
        seed=seed,
        options={k: _jsonable(v) for k, v in dict(resolved).items() if k not in RUNTIME_OPTIONS},
        params_before=before,
        params_after=after,
        param_reduction=(before - after) / before,
        wall_time_s=wall,
        kept_per_layer=[int(k) for k in kept],
        details=details,
    )
    return model, record


def _jsonable(value: Any) -> Any:
    """A compact JSON-able description of an option value (tokenizers by name, big data by size)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "name_or_path"):  # a tokenizer
        return f"<{type(value).__name__} {value.name_or_path}>"
    if hasattr(value, "shape") and hasattr(value, "dtype"):  # a tensor of calibration data
        return f"<{type(value).__name__} {tuple(value.shape)} {value.dtype}>"
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value] if len(value) <= 16 else f"<{len(value)} items>"
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return f"<{type(value).__name__}>"
