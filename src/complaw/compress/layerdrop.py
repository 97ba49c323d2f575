"""Depth pruning: remove whole decoder layers by block influence (ShortGPT; Men et al., 2024).

The block influence of layer ``l`` is ``BI_l = 1 − mean_t cos(h_in_t, h_out_t)`` over calibration tokens
``t``, with ``h_in``/``h_out`` the residual stream entering and leaving the layer. A layer that barely
turns the residual stream (low BI) is the cheapest to lose. ``ratio`` here is the *fraction of layers
removed*: the ``floor(ratio · L)`` lowest-BI layers go. The config (``num_hidden_layers`` and the v5
per-layer ``layer_types``) is rewritten and every remaining attention module gets its new ``layer_idx``,
so KV caching and ``from_pretrained`` keep working.

    >>> model, record = compress(model, "layer-drop", ratio=0.25, calibration=texts, tokenizer=tok)
    >>> record.details["removed_layers"]

Calibration (``calibration=``): a ``(batch, seq)`` tensor of token ids, a list of such tensors / id
lists, or a list of strings (then ``tokenizer=`` is needed, or the model's own directory must hold one).
Default: ``complaw.zoo.load_split("calibration")`` when the zoo is installed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from complaw.compress.registry import register_method, tensor_fingerprint
from complaw.errors import ComplawError, require
from complaw.models.adapters import get_adapter


def _default_calibration() -> Any:
    try:
        from complaw import zoo
    except ImportError:
        zoo = None
    if zoo is None or not hasattr(zoo, "load_split"):
        raise ComplawError(
            "layer-drop needs calibration text: pass calibration=[...] (texts or token ids); "
            "the default, complaw.zoo's calibration split, is not installed"
        )
    return zoo.load_split("calibration")


def _as_texts(items: Sequence[Any]) -> list[str]:
    texts = []
    for item in items:
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, dict) and isinstance(item.get("text"), str):
            texts.append(item["text"])
        elif isinstance(item, (tuple, list)) and item and isinstance(item[-1], str):
            texts.append(item[-1])  # (name, text) pairs
        else:
            raise ComplawError(f"calibration item {str(item)[:40]!r}: expected text, token ids or a tensor")
    return texts


def calibration_batches(calibration: Any, *, tokenizer: Any = None, model: nn.Module | None = None,
                        max_batches: int = 8, batch_size: int = 4, seq_len: int = 256) -> list[dict[str, torch.Tensor]]:
    """Turn ``calibration`` (tensor, id lists, or texts) into ``input_ids``/``attention_mask`` batches.

    Texts are tokenised, concatenated and cut into ``seq_len`` blocks (no padding); at most
    ``max_batches`` batches of ``batch_size`` rows are returned.
    """
    if calibration is None:
        calibration = _default_calibration()
        if tokenizer is None and _local_tokenizer_dir(model) is None:
            from complaw import zoo  # the zoo's texts go with the zoo's tokenizer

            tokenizer = zoo.load_tokenizer()
    if isinstance(calibration, (str, Path)):  # a text file (e.g. from the CLI: --option calibration=calib.txt)
        path = Path(calibration)
        require(path.is_file(), f"calibration={str(calibration)!r}: no such file; give a text file or token ids")
        calibration = [path.read_text(encoding="utf-8", errors="replace")]
    if isinstance(calibration, torch.Tensor):
        ids = calibration.long()
        if ids.dim() == 1:
            ids = ids.unsqueeze(0)
        require(ids.dim() == 2 and ids.numel() > 0, "calibration tensor: expected token ids of shape (batch, seq)")
        rows = list(ids)
    else:
        calibration = list(calibration)
        require(len(calibration) > 0, "calibration: empty; give a few texts or token-id tensors")
        if all(isinstance(c, torch.Tensor) for c in calibration) or all(
            isinstance(c, list) and c and isinstance(c[0], int) for c in calibration
        ):
            rows = [torch.as_tensor(c).long().flatten() for c in calibration]
        else:
            texts = _as_texts(calibration)
            if tokenizer is None:
                tokenizer = _tokenizer_of(model)
            stream: list[int] = []
            for text in texts:
                stream.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
                if tokenizer.eos_token_id is not None:
                    stream.append(tokenizer.eos_token_id)
                if len(stream) >= max_batches * batch_size * seq_len:
                    break
            ids = torch.tensor(stream, dtype=torch.long)
            n_blocks = max(1, ids.numel() // seq_len)
            rows = [ids[i * seq_len:(i + 1) * seq_len] for i in range(n_blocks)]
    rows = [r[:seq_len] for r in rows if r.numel() > 0][: max_batches * batch_size]
    batches = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        width = max(r.numel() for r in chunk)
        input_ids = torch.zeros(len(chunk), width, dtype=torch.long)
        mask = torch.zeros(len(chunk), width, dtype=torch.long)
        for i, r in enumerate(chunk):
            input_ids[i, : r.numel()] = r
            mask[i, : r.numel()] = 1
        batches.append({"input_ids": input_ids, "attention_mask": mask})
    return batches


def _local_tokenizer_dir(model: nn.Module | None) -> str | None:
    """The model's checkpoint directory if it holds tokenizer files, else None."""
    path = getattr(getattr(model, "config", None), "name_or_path", "") if model is not None else ""
    if path and Path(path).is_dir() and any(
        (Path(path) / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")
    ):
        return str(path)
    return None


def _tokenizer_of(model: nn.Module | None):
    path = getattr(getattr(model, "config", None), "name_or_path", "") if model is not None else ""
    if not path:
        raise ComplawError("calibration texts need a tokenizer: pass tokenizer=..., or give token ids instead")
    from complaw.models import load_tokenizer

    try:
        return load_tokenizer(path)
    except ComplawError as err:
        raise ComplawError(f"calibration texts need a tokenizer and none loads from {path!r}: {err}") from None


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
    salt = "".join(str(b["input_ids"].tolist()) + str(b["attention_mask"].tolist()) for b in batches)
    key = tensor_fingerprint(model.parameters(), salt=str(getattr(model.config, "model_type", "")) + salt)
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
