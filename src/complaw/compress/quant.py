"""Post-training compressed formats as compression methods: round-to-nearest INT-k and weight sparsity.

Every method rewrites the weights of every decoder-layer linear (q, k, v, o, gate, up, down) *in place*
(fake quantisation / masking), so the model stays a standard Hugging Face checkpoint of its family.
Embeddings, norms and the LM head are untouched.

* ``rtn-int8`` / ``rtn-int4`` / ``rtn-int3``: symmetric round-to-nearest, absmax scale per group of
  ``group_size`` consecutive input weights of each output row (default 128; a row shorter than the
  group, or not divisible by it, uses the whole row). Each group holds at most 2^bits − 1 distinct values.
* ``magnitude-sparse``: unstructured; zero the ``ratio`` fraction of smallest-magnitude weights of each
  linear (per-layer magnitude).
* ``sparse-2:4``: in every 4 consecutive input weights keep the 2 largest magnitudes (``ratio`` ignored).

For these methods ``ratio`` is only the method's setting (the sparsity for ``magnitude-sparse``; ignored
by RTN and 2:4). **No parameter is removed**, so the record's measured ``param_reduction`` is 0 — that
is the honest count. The details carry the format name, its capacity ρ, effective bits and the bridge's
``r_eff = 1 − ρ`` (see :mod:`complaw.capacity`), the quantity to put on the compression-ratio axis.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from complaw.checks import Bound
from complaw.compress.registry import register_method
from complaw.errors import require
from complaw.models.adapters import get_adapter

#: The range of ``group_size``: a run of input columns of one row (a group wider than the row is the row).
GROUP_SIZE = {"group_size": Bound(1, 65_536, "input columns sharing one scale, e.g. 128", integer=True)}


def decoder_linears(model: nn.Module) -> list[nn.Linear]:
    """Every linear of every decoder layer: (q, k, v, o, gate, up, down) per layer."""
    adapter = get_adapter(model)
    out: list[nn.Linear] = []
    for layer in adapter.layers_of(model):
        out.extend(adapter.attn_linears(layer))
        out.extend(adapter.mlp_linears(layer))
    return out


def rtn_quantize(weight: torch.Tensor, bits: int, group_size: int) -> torch.Tensor:
    """Symmetric RTN INT-``bits`` of ``weight`` (out, in) with an absmax scale per input group."""
    out_f, in_f = weight.shape
    g = group_size if 0 < group_size <= in_f and in_f % group_size == 0 else in_f
    w = weight.float().reshape(out_f, in_f // g, g)
    qmax = 2 ** (bits - 1) - 1
    amax = w.abs().amax(dim=-1, keepdim=True)
    scale = torch.where(amax > 0, amax / qmax, torch.ones_like(amax))
    q = torch.clamp(torch.round(w / scale), -qmax, qmax) * scale
    return q.reshape(out_f, in_f).to(weight.dtype)


def magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Boolean keep-mask zeroing exactly ``round(sparsity·numel)`` smallest magnitudes (ties by index)."""
    n = weight.numel()
    k = int(round(sparsity * n))
    mask = torch.ones(n, dtype=torch.bool, device=weight.device)
    if k > 0:
        order = torch.sort(weight.detach().abs().flatten().float(), stable=True).indices
        mask[order[:k]] = False
    return mask.reshape(weight.shape)


def nm_mask(weight: torch.Tensor, n: int = 2, m: int = 4) -> torch.Tensor:
    """Keep-mask of N:M sparsity along the input dimension (the n largest of every m)."""
    out_f, in_f = weight.shape
    require(in_f % m == 0, f"N:M sparsity: input size {in_f} is not a multiple of {m}")
    w = weight.detach().abs().float().reshape(out_f, in_f // m, m)
    idx = torch.topk(w, n, dim=-1).indices
    mask = torch.zeros_like(w, dtype=torch.bool).scatter_(-1, idx, True)
    return mask.reshape(out_f, in_f)


def _format_details(fmt: str, **extra: Any) -> dict[str, Any]:
    from complaw import capacity

    g = capacity.gmse(fmt)
    rho = capacity.capacity(fmt)
    return {"format": fmt, "gmse": g.value, "effective_bits": capacity.effective_bits(g.value),
            "capacity": rho, "r_eff": 1.0 - rho, **extra}


def _rtn(model: nn.Module, bits: int, group_size: int) -> tuple[nn.Module, dict[str, Any]]:
    require(isinstance(group_size, int) and group_size >= 1, f"group_size={group_size!r}: must be a positive integer, e.g. 128")
    linears = decoder_linears(model)
    with torch.no_grad():
        for lin in linears:
            lin.weight.copy_(rtn_quantize(lin.weight, bits, group_size))
    return model, _format_details(f"int{bits}-g{group_size}", bits=bits, group_size=group_size, linears=len(linears))


@register_method("rtn-int8", description="Weight-only RTN INT8, absmax per group (fake-quantised; removes no parameters).",
                 bounds=GROUP_SIZE)
def rtn_int8(model: nn.Module, ratio: float, *, seed: int = 0, group_size: int = 128):
    """Round-to-nearest INT8 of every decoder linear; ``ratio``/``seed`` ignored; param_reduction is 0.

    Args:
        group_size: input columns that share one absmax scale (per output row).
    """
    del ratio, seed
    return _rtn(model, 8, group_size)


@register_method("rtn-int4", description="Weight-only RTN INT4, absmax per group (fake-quantised; removes no parameters).",
                 bounds=GROUP_SIZE)
def rtn_int4(model: nn.Module, ratio: float, *, seed: int = 0, group_size: int = 128):
    """Round-to-nearest INT4 of every decoder linear; ``ratio``/``seed`` ignored; param_reduction is 0.

    Args:
        group_size: input columns that share one absmax scale (per output row).
    """
    del ratio, seed
    return _rtn(model, 4, group_size)


@register_method("rtn-int3", description="Weight-only RTN INT3, absmax per group (fake-quantised; removes no parameters).",
                 bounds=GROUP_SIZE)
def rtn_int3(model: nn.Module, ratio: float, *, seed: int = 0, group_size: int = 128):
    """Round-to-nearest INT3 of every decoder linear; ``ratio``/``seed`` ignored; param_reduction is 0.

    Args:
        group_size: input columns that share one absmax scale (per output row).
    """
    del ratio, seed
    return _rtn(model, 3, group_size)


@register_method("magnitude-sparse", description="Unstructured per-layer magnitude sparsity (ratio = sparsity; zeros, no removal).")
def magnitude_sparse(model: nn.Module, ratio: float, *, seed: int = 0):
    """Zero the ``ratio`` fraction of smallest |w| in every decoder linear; param_reduction is 0."""
    del seed
    linears = decoder_linears(model)
    with torch.no_grad():
        for lin in linears:
            lin.weight.mul_(magnitude_mask(lin.weight, ratio).to(lin.weight.dtype))
    return model, _format_details(f"sparse-{ratio:g}", sparsity=ratio, linears=len(linears))


@register_method("sparse-2:4", description="2:4 semi-structured magnitude sparsity along inputs (ratio ignored; zeros, no removal).")
def sparse_2_4(model: nn.Module, ratio: float, *, seed: int = 0):
    """Keep the 2 largest |w| of every 4 consecutive inputs in every decoder linear; param_reduction is 0."""
    del ratio, seed
    linears = decoder_linears(model)
    with torch.no_grad():
        for lin in linears:
            lin.weight.mul_(nm_mask(lin.weight, 2, 4).to(lin.weight.dtype))
    return model, _format_details("2:4", sparsity=0.5, linears=len(linears))
