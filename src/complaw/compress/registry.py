"""The compression-method registry and the record every compression returns.

A method is a function ``fn(model, ratio, *, seed, **options) -> (model, details)`` registered by name;
:func:`compress` validates the ratio, times the call, counts parameters before and after, and returns
the compressed model with a :class:`CompressionRecord`. Adding a method is one new module plus one
``@register_method("name")`` line, never a branch in the pipeline.

    >>> model, record = compress(model, "prunenet", ratio=0.3, seed=0)
    >>> record.ratio, record.param_reduction   # the method's own setting vs the measured fraction removed
"""

from __future__ import annotations

import hashlib
import inspect
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from complaw.errors import ComplawError

MethodFn = Callable[..., tuple[nn.Module, dict[str, Any]]]


@dataclass(frozen=True)
class MethodSpec:
    """A registered compression method."""

    name: str
    fn: MethodFn
    needs_calibration: bool
    description: str
    pre_norm_only: bool = False  # relies on computational invariance: pure pre-norm families only


@dataclass
class CompressionRecord:
    """What a compression did, measured.

    ``ratio`` is the method's own compression setting; ``param_reduction`` is the measured fraction of
    parameters removed, (params_before - params_after) / params_before, which can differ a lot from
    ``ratio`` (and be negative, e.g. SliceGPT on tied-embedding models at low ratios).
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


_METHODS: dict[str, MethodSpec] = {}


def register_method(name: str, *, needs_calibration: bool = False, description: str = "",
                    pre_norm_only: bool = False):
    """Decorator registering ``fn`` as compression method ``name``.

    ``pre_norm_only=True`` marks a method that needs every norm before its block (SliceGPT's rotations):
    :func:`compress` refuses it on families with post-norms (Gemma-3) with one line saying why.
    """

    def deco(fn: MethodFn) -> MethodFn:
        _METHODS[name] = MethodSpec(name, fn, needs_calibration, description or (fn.__doc__ or "").strip(),
                                    pre_norm_only)
        return fn

    return deco


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
    """All registered methods by name (importing :mod:`complaw.compress` registers the built-ins)."""
    return dict(sorted(_METHODS.items()))


def get_method(name: str) -> MethodSpec:
    if name not in _METHODS:
        raise ComplawError(
            f"method {name!r}: unknown compression method; available: {', '.join(sorted(_METHODS))}"
        )
    return _METHODS[name]


def check_options(method: str, options: dict[str, Any]) -> None:
    """Fail with one line on an option ``method`` does not take, or a value of the wrong kind.

    A value must match the kind of the option's default (bool, int, float, str); a number where a
    string is expected, or a string where a number is, is a user error, not a crash deep in the method.
    """
    spec = get_method(method)
    params = {k: p for k, p in inspect.signature(spec.fn).parameters.items() if k not in ("model", "ratio", "seed")}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for key, value in options.items():
        p = params.get(key)
        if p is None:
            if takes_any:
                continue
            named = [k for k, q in params.items() if q.kind is not inspect.Parameter.VAR_KEYWORD]
            raise ComplawError(f"option {key}: method {method!r} takes no such option; it takes "
                               f"{', '.join(named) or 'none'}")
        default = p.default
        if isinstance(default, bool):
            ok, kind = isinstance(value, bool), "true or false"
        elif isinstance(default, int):
            ok, kind = isinstance(value, int) and not isinstance(value, bool), "an integer"
        elif isinstance(default, float):
            ok, kind = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
        elif isinstance(default, str):
            ok, kind = isinstance(value, str), "a string"
        else:
            continue
        if not ok:
            raise ComplawError(f"option {key}={value!r}: method {method!r} needs {kind} here, e.g. {key}={default}")


def count_parameters(model: nn.Module) -> int:
    """Number of distinct parameters (tied weights counted once)."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


def tensor_fingerprint(tensors, salt: str = "") -> str:
    """A short hash of tensors: their shapes, a strided sample of ~64k values each and their row sums.

    Two different checkpoints (even a fine-tune of one another) do not collide, while hashing a 7B
    model stays cheap. Methods use it to key in-memory caches (a PruneNet policy, ShortGPT block
    influences) so that a sweep over ratios does the ratio-independent work once.
    """
    h = hashlib.sha256(salt.encode())
    for t in tensors:
        flat = t.detach().flatten()
        step = max(1, flat.numel() // 65536)
        h.update(str(tuple(t.shape)).encode())
        h.update(flat[::step].float().cpu().numpy().tobytes())
        rows = t.detach().float().reshape(t.shape[0], -1) if t.dim() else t.detach().float().reshape(1, 1)
        h.update(rows.sum(dim=1).cpu().numpy().tobytes())
    return h.hexdigest()[:16]


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
    check_options(method, options)
    check_family(method, model)
    before = count_parameters(model)
    start = time.perf_counter()
    model, details = spec.fn(model, ratio, seed=seed, **options)
    wall = time.perf_counter() - start
    after = count_parameters(model)
    kept = details.pop("kept_per_layer", [])
    record = CompressionRecord(
        method=method,
        ratio=ratio,
        seed=seed,
        options={k: _jsonable(v) for k, v in options.items()},
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
