"""Depth pruning: remove whole decoder layers by block influence (ShortGPT; Men et al., 2024).

The block influence of layer ``l`` is ``BI_l = 1 − mean_t cos(h_in_t, h_out_t)`` over calibration tokens
``t``, with ``h_in``/``h_out`` the residual stream entering and leaving the layer. A layer that barely
turns the residual stream (low BI) is the cheapest to lose. ``ratio`` here is the *fraction of layers
removed*: the ``floor(ratio · L)`` lowest-BI layers go. The config (``num_hidden_layers`` and the v5
per-layer ``layer_types``) is rewritten and every remaining attention module gets its new ``layer_idx``,
so KV caching and ``from_pretrained`` keep working.

    >>> model, record = compress(model, "layer-drop", ratio=0.25, calibration=texts, tokenizer=tok)
    >>> record.details["removed_layers"]

Calibration (``calibration=``): as for every calibration-based method (:mod:`complaw.compress.calibration`)
— ``zoo:SPLIT``, a text/JSONL file, a dataset id, a list of texts or token ids; default the zoo's
calibration split. Texts are tokenised with ``tokenizer=`` or the one saved with the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from complaw.checks import Bound
from complaw.compress.calibration import calibration_windows
from complaw.compress.registry import register_method
from complaw.errors import ComplawError, require
from complaw.models.adapters import get_adapter
from complaw.models.params import tensor_fingerprint


def calibration_batches(calibration: Any = None, *, tokenizer: Any = None, model: nn.Module | None = None,
                        max_batches: int = 8, batch_size: int = 4, seq_len: int = 256) -> list[dict[str, torch.Tensor]]:
    """``calibration`` (see :mod:`complaw.compress.calibration`) as ``input_ids``/``attention_mask`` batches:
    at most ``max_batches`` batches of ``batch_size`` windows of ``seq_len`` tokens (a fixed draw)."""
    require(max_batches >= 1 and batch_size >= 1,
            f"max_batches={max_batches}, batch_size={batch_size}: both must be >= 1")
    ids, masks, _ = calibration_windows(model, calibration, tokenizer=tokenizer, samples=max_batches * batch_size,
                                        seqlen=seq_len)
    return [{"input_ids": ids[i:i + batch_size], "attention_mask": masks[i:i + batch_size]}
            for i in range(0, len(ids), batch_size)]


@torch.no_grad()
def block_influence(model: nn.Module, batches: list[dict[str, torch.Tensor]]) -> list[float]:
    """ShortGPT block influence ``1 − mean cos(h_in, h_out)`` of every decoder layer, over non-padding tokens."""
    adapter = get_adapter(model)
    layers = adapter.layers_of(model)
    device = next(model.parameters()).device
    sums = torch.zeros(len(layers), dtype=torch.float64)
    count = 0
    captured: dict[int, torch.Tensor] = {}
    handles = []

    def pre_hook(index):
        def hook(_module, args, kwargs):
            captured[index] = args[0] if args else kwargs["hidden_states"]
        return hook

    def post_hook(index):
        def hook(_module, _args, _kwargs, output):
            h_out = output[0] if isinstance(output, (tuple, list)) else output
            cos = torch.nn.functional.cosine_similarity(captured.pop(index).float(), h_out.float(), dim=-1)
            sums[index] += cos[current_mask].double().sum().cpu()
        return hook

    for i, layer in enumerate(layers):
        handles.append(layer.register_forward_pre_hook(pre_hook(i), with_kwargs=True))
        handles.append(layer.register_forward_hook(post_hook(i), with_kwargs=True))
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            input_ids = batch["input_ids"].to(device)
            mask = batch["attention_mask"].to(device)
            current_mask = mask.bool()
            model(input_ids=input_ids, attention_mask=mask, use_cache=False)
            count += int(mask.sum())
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    require(count > 0, "calibration: no tokens to measure block influence on")
    return [float(1.0 - s / count) for s in sums]


_BI_CACHE: dict[str, list[float]] = {}


def cached_block_influence(model: nn.Module, batches: list[dict[str, torch.Tensor]]) -> tuple[list[float], bool]:
    """:func:`block_influence`, from an in-memory cache keyed by the model's weights and the calibration
    tokens, so that a sweep over ratios measures it once per model. Returns ``(bi, computed_now)``."""
    calibration = [b[name] for b in batches for name in ("input_ids", "attention_mask")]
    key = tensor_fingerprint([*model.parameters(), *calibration], salt=str(getattr(model.config, "model_type", "")))
    if key in _BI_CACHE:
        return list(_BI_CACHE[key]), False
    bi = block_influence(model, batches)
    _BI_CACHE[key] = list(bi)
    return bi, True


def clear_block_influence_cache() -> None:
    _BI_CACHE.clear()


def drop_layers(model: nn.Module, remove: Sequence[int]) -> nn.Module:
    """Remove decoder layers ``remove`` in place; rewrite the config and renumber ``layer_idx``."""
    adapter = get_adapter(model)
    layers = adapter.layers_of(model)
    drop = set(int(i) for i in remove)
    keep = [i for i in range(len(layers)) if i not in drop]
    require(len(keep) >= 1, "layer-drop: would remove every layer; use a smaller ratio")
    config = model.config
    layer_types = getattr(config, "layer_types", None)
    new_layers = nn.ModuleList([layers[i] for i in keep])
    for new_idx, layer in enumerate(new_layers):
        for module in layer.modules():  # attention (and any submodule) indexes the KV cache by layer_idx
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_idx
    setattr(adapter.decoder(model), adapter.layers, new_layers)
    adapter.set_num_layers(config, len(keep))
    if isinstance(layer_types, list) and len(layer_types) == len(layers):
        config.layer_types = [layer_types[i] for i in keep]  # keep each surviving layer's own type
    return model


@register_method(
    "layer-drop",
    needs_calibration=True,
    description="ShortGPT depth pruning (control): remove the floor(ratio·L) layers with the lowest "
    "block influence on calibration tokens.",
    bounds={"max_batches": Bound(1, 1024, "calibration batches run (the block influence settles within a few)",
                                 integer=True),
            "batch_size": Bound(1, 1024, "calibration sequences per batch", integer=True),
            "seq_len": Bound(2, 131_072, "tokens per calibration sequence, within a model's context", integer=True)},
)
def layer_drop(model: nn.Module, ratio: float, *, seed: int = 0, calibration: Any = None, tokenizer: Any = None,
               max_batches: int = 8, batch_size: int = 4, seq_len: int = 256) -> tuple[nn.Module, dict[str, Any]]:
    """Remove ``floor(ratio · L)`` decoder layers with the lowest block influence (in place).

    Args:
        model: causal LM of a supported family.
        ratio: fraction of decoder layers removed.
        seed: unused (the method is deterministic given the calibration data).
        calibration: calibration tokens or texts (see the module docstring); default: the zoo's split.
        tokenizer: tokenizer for text calibration (default: loaded from the model's directory).
        max_batches, batch_size, seq_len: how much calibration data to run.
    """
    del seed
    num_layers = len(get_adapter(model).layers_of(model))
    n_drop = int(ratio * num_layers + 1e-9)
    if n_drop == 0:
        return model, {"removed_layers": [], "block_influence": [], "kept_per_layer": [], "num_layers_before": num_layers}
    if n_drop >= num_layers:
        raise ComplawError(f"ratio {ratio}: would remove all {num_layers} layers; use a ratio below {1 - 1 / num_layers:.3f}")
    seq_len = min(seq_len, getattr(model.config, "max_position_embeddings", None) or seq_len)
    batches = calibration_batches(calibration, tokenizer=tokenizer, model=model, max_batches=max_batches,
                                  batch_size=batch_size, seq_len=seq_len)
    vocab = getattr(model.config, "vocab_size", None)
    top = max(int(b["input_ids"].max()) for b in batches)
    require(vocab is None or top < vocab,
            f"calibration: token id {top} is outside the model's vocabulary ({vocab}); the tokenizer does not match the model")
    bi, computed = cached_block_influence(model, batches)
    # Lowest BI first; ties broken towards later layers (they are usually the redundant ones).
    order = sorted(range(num_layers), key=lambda i: (bi[i], -i))
    removed = sorted(order[:n_drop])
    drop_layers(model, removed)
    return model, {
        "removed_layers": removed,
        "block_influence": [round(b, 6) for b in bi],
        "num_layers_before": num_layers,
        "num_layers_after": num_layers - n_drop,
        "calibration_tokens": int(sum(int(b["attention_mask"].sum()) for b in batches)),
        "block_influence_cached": not computed,
    }
