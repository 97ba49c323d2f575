"""FFN-row slicing: the shared helper behind PruneNet, plus the random and L2-magnitude baselines.

Removing intermediate neuron ``i`` of a gated MLP ``down(act(gate(x)) * up(x))`` means deleting row ``i``
of ``gate_proj`` and ``up_proj`` and column ``i`` of ``down_proj``. When every layer keeps the same
number ``k`` of neurons the result is a *standard* checkpoint of the same family with
``intermediate_size = k``: it reloads with ``AutoModelForCausalLM.from_pretrained``, LoRA attaches to it,
and the FLOP saving is real (dense, smaller matmuls — no masks).

    >>> from complaw.compress import compress
    >>> model, record = compress(model, "magnitude-ffn", ratio=0.3)
    >>> model.config.intermediate_size       # floor(0.7 * n)

Methods registered here:

* ``random-ffn``: keep a uniformly random k-subset of neurons per layer (seeded) — the control.
* ``magnitude-ffn``: keep the k neurons with the largest ``‖gate_i‖₂ · ‖up_i‖₂ · ‖down_:,i‖₂``. The
  product is an upper bound on how much neuron ``i`` can move the output for a unit-norm input
  (``|act(g·x)| ≤ |g·x|`` for SiLU-like activations, so ``|contribution| ≤ ‖g‖‖x‖·‖u‖‖x‖·‖d‖``); scoring
  the gate row alone would ignore the two matrices that share its index.
* ``maxabs-ffn``: keep the k neurons whose ``down_proj`` column has the largest entry in absolute value
  (``max_j |down_ji|``: the neurons that write some residual channel hardest). Weight-only like the two
  above. On real pretrained LLMs the L2 product collapses (SmolLM2-135M at r = 0.1: loss 2.73 → 9.09, random
  3.52 ± 0.18) while this score stays ahead of random at r = 0.1…0.5 (3.22 / 4.32 / 5.56); see
  BENCHMARKS.md, "Calibration-free pruning on a real LLM (#15)".
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from complaw.compress.registry import ROUND_TO, register_method
from complaw.errors import ComplawError, require
from complaw.models.adapters import get_adapter


def kept_rows(n: int, ratio: float, round_to: int = 1) -> int:
    """Number of FFN rows kept out of ``n`` at compression ``ratio``: ``floor((1 - ratio) * n)``.

    Args:
        n: intermediate size of the dense model.
        ratio: fraction of rows to remove, in [0, 1).
        round_to: round the kept size *down* to a multiple of this (8 or 64 suit GPU kernels), but
            never below one multiple; ``ratio = 0`` always keeps all ``n`` rows.

    Raises:
        ComplawError: when the ratio would leave no row, or ``round_to`` is not a positive integer.
    """
    require(isinstance(round_to, int) and round_to >= 1, f"round_to={round_to!r}: must be a positive integer, e.g. 8 or 64")
    # The small epsilon guards floor() against 0.7 * 10 = 6.999999.
    k = math.floor((1.0 - ratio) * n + 1e-9)
    if k >= n:
        return n
    if round_to > 1:
        k = max(round_to, (k // round_to) * round_to) if n >= round_to else k
    if k < 1:
        raise ComplawError(
            f"ratio {ratio}: would keep {k} of {n} FFN rows; use a ratio below {1 - 1 / n:.4f} for this model"
        )
    return min(k, n)


def _sliced_linear(old: nn.Linear, index: torch.Tensor, dim: int) -> nn.Linear:
    """A new ``nn.Linear`` holding ``old`` restricted to ``index`` along ``dim`` (0: outputs, 1: inputs)."""
    weight = old.weight.detach().index_select(dim, index.to(old.weight.device))
    out_features, in_features = weight.shape
    has_bias = old.bias is not None
    new = nn.Linear(in_features, out_features, bias=has_bias, device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight)
        if has_bias:
            bias = old.bias.detach()
            # A bias lives on the output side: sliced with the rows, untouched when slicing inputs.
            new.bias.copy_(bias.index_select(0, index.to(bias.device)) if dim == 0 else bias)
    new.weight.requires_grad_(old.weight.requires_grad)
    return new


def slice_ffn_rows(model: nn.Module, kept: Sequence[torch.Tensor]) -> nn.Module:
    """Keep only neurons ``kept[l]`` in the MLP of layer ``l``, in place; update the config.

    Args:
        model: a causal LM of a supported family.
        kept: one 1-D index tensor per layer, all of the same length ``k`` (v5 configs need a uniform
            ``intermediate_size``). Indices are sorted before use, so neuron order is preserved.

    Returns:
        The same model object, with ``config.intermediate_size == k``.
    """
    adapter = get_adapter(model)
    layers = adapter.layers_of(model)
    require(len(kept) == len(layers), f"kept: got {len(kept)} index sets for a model with {len(layers)} layers")
    sizes = {int(idx.numel()) for idx in kept}
    if len(sizes) != 1:
        raise ValueError(f"slice_ffn_rows needs the same kept size in every layer, got {sorted(sizes)}")
    (k,) = sizes
    for layer, idx in zip(layers, kept, strict=True):
        gate, up, down = adapter.mlp_linears(layer)
        idx = torch.sort(idx.long().flatten()).values
        n = gate.out_features
        if k == n and torch.equal(idx.cpu(), torch.arange(n)):
            continue  # nothing removed in this layer: keep the original modules
        if int(idx.max()) >= n or int(idx.min()) < 0 or torch.unique(idx).numel() != k:
            raise ValueError(f"kept indices must be {k} distinct values in [0, {n})")
        adapter.set_linear(layer, "gate", _sliced_linear(gate, idx, 0))
        adapter.set_linear(layer, "up", _sliced_linear(up, idx, 0))
        adapter.set_linear(layer, "down", _sliced_linear(down, idx, 1))
        mlp = adapter.mlp_of(layer)
        if hasattr(mlp, "intermediate_size"):
            mlp.intermediate_size = k
    adapter.set_intermediate_size(model.config, k)
    return model


def ffn_size(model: nn.Module) -> int:
    """The (uniform) intermediate size of ``model``'s MLPs, read from the weights."""
    adapter = get_adapter(model)
    sizes = {adapter.mlp_linears(layer)[0].out_features for layer in adapter.layers_of(model)}
    if len(sizes) != 1:
        raise ComplawError(f"FFN slicing needs the same intermediate size in every layer, found {sorted(sizes)}")
    return sizes.pop()


def topk_indices(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` largest scores, sorted ascending (ties broken by lower index)."""
    order = torch.sort(scores.float(), descending=True, stable=True).indices
    return torch.sort(order[:k]).values


def magnitude_scores(gate: nn.Linear, up: nn.Linear, down: nn.Linear) -> torch.Tensor:
    """Per-neuron score ``‖gate_i‖₂ · ‖up_i‖₂ · ‖down_:,i‖₂`` computed in fp32 (shape ``(n,)``)."""
    g = gate.weight.detach().float().norm(dim=1)
    u = up.weight.detach().float().norm(dim=1)
    d = down.weight.detach().float().norm(dim=0)
    return g * u * d


def _slice_by(model: nn.Module, ratio: float, round_to: int, choose) -> tuple[nn.Module, dict[str, Any]]:
    """Shared body of the score-based slicers: ``choose(layer_index, gate, up, down, k) -> indices``."""
    adapter = get_adapter(model)
    n = ffn_size(model)
    k = kept_rows(n, ratio, round_to)
    layers = adapter.layers_of(model)
    if k == n:
        return model, {"kept_per_layer": [n] * len(layers), "intermediate_size_before": n}
    kept = [choose(i, *adapter.mlp_linears(layer), k) for i, layer in enumerate(layers)]
    slice_ffn_rows(model, kept)
    return model, {"kept_per_layer": [k] * len(layers), "intermediate_size_before": n}


@register_method("random-ffn", description="Random FFN-row slicing (control): keep a seeded random k-subset of MLP neurons per layer.",
                 bounds={"round_to": ROUND_TO})
@torch.no_grad()
def random_ffn(model: nn.Module, ratio: float, *, seed: int = 0, round_to: int = 1) -> tuple[nn.Module, dict[str, Any]]:
    """Keep a uniformly random ``floor((1 - ratio) * n)``-subset of MLP neurons in every layer.

    Args:
        model: causal LM of a supported family (modified in place).
        ratio: fraction of MLP neurons removed per layer.
        seed: seeds the CPU generator that draws the subsets (same seed, same subsets on any device).
        round_to: round the kept size down to a multiple of this.
    """
    generator = torch.Generator().manual_seed(int(seed))

    def choose(_i, gate, _up, _down, k):
        return torch.sort(torch.randperm(gate.out_features, generator=generator)[:k]).values

    return _slice_by(model, ratio, round_to, choose)


@register_method(
    "magnitude-ffn",
    description="L2-magnitude FFN-row slicing (control): keep the neurons with the largest |gate_i|·|up_i|·|down_:,i|.",
    bounds={"round_to": ROUND_TO},
)
@torch.no_grad()
def magnitude_ffn(model: nn.Module, ratio: float, *, seed: int = 0, round_to: int = 1) -> tuple[nn.Module, dict[str, Any]]:
    """Keep the ``floor((1 - ratio) * n)`` neurons with the largest :func:`magnitude_scores` per layer.

    Deterministic; ``seed`` is accepted for a uniform method signature and ignored.

    Args:
        round_to: round the kept size down to a multiple of this.
    """
    del seed

    def choose(_i, gate, up, down, k):
        return topk_indices(magnitude_scores(gate, up, down), k)

    return _slice_by(model, ratio, round_to, choose)


def maxabs_scores(down: nn.Linear) -> torch.Tensor:
    """Per-neuron score ``max_j |down_ji|`` (the largest weight the neuron writes into the residual stream), fp32."""
    return down.weight.detach().float().abs().amax(dim=0)


@register_method(
    "maxabs-ffn",
    description="Max-|weight| FFN-row slicing (calibration-free): keep the neurons whose down_proj column holds "
    "the largest entries; holds up on real LLMs where L2 magnitude collapses.",
    bounds={"round_to": ROUND_TO},
)
@torch.no_grad()
def maxabs_ffn(model: nn.Module, ratio: float, *, seed: int = 0, round_to: int = 1) -> tuple[nn.Module, dict[str, Any]]:
    """Keep the ``floor((1 - ratio) * n)`` neurons with the largest :func:`maxabs_scores` per layer.

    Deterministic; ``seed`` is accepted for a uniform method signature and ignored.

    Args:
        round_to: round the kept size down to a multiple of this.
    """
    del seed

    def choose(_i, _gate, _up, down, k):
        return topk_indices(maxabs_scores(down), k)

    return _slice_by(model, ratio, round_to, choose)
