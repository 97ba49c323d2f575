"""SliceGPT (Ashkboos et al., ICLR 2024): calibration-based slicing of the residual stream.

The recipe, top to bottom (SPEC §3.2):

1. **Fuse** every RMSNorm scale into the linears that read the norm's output (q/k/v, gate/up, LM head),
   untie the LM head from the embeddings (clone), and replace every norm by a weightless :class:`RMSN`.
   The function is unchanged, and the residual stream may now be rotated by any orthogonal Q.
2. **Rotate and slice, layer by layer** on calibration activations: PCA (float64, damped ``eigh``) of the
   embedding output gives Q_0; the embeddings are rotated by Q_0 and sliced to k columns. For each layer,
   q/k/v read the rotated-and-sliced input; PCA of the mid-block residual gives the attention output's Q;
   PCA of the layer output gives the MLP output's Q. Every residual connection gets a k x k shortcut
   ``Q_in[:, :k]^T Q_out[:, :k]``. Layer l's signals are computed with layers < l already sliced.
3. The LM head is rotated (sliced only with ``slice_head=True``).

Widths: k = floor((1 - ratio) * D) rounded down to a multiple of ``round_to``. The real parameter change
is much smaller than ``ratio`` (two k x k shortcuts per layer; a forced V x D head on tied-embedding
models, which can make them *larger*) and is always reported.

    >>> model, record = compress(model, "slicegpt", ratio=0.3, calibration="calib.txt", tokenizer=tok)
    >>> save_sliced(model, "out/llama-slicegpt-0.3", record=record, tokenizer=tok)
    >>> model = complaw.load("out/llama-slicegpt-0.3")      # not from_pretrained: see models/sliced.py
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from typing import Any

import torch
from torch import nn

from complaw.checks import Bound
from complaw.compress.calibration import calibration_windows
from complaw.compress.registry import ROUND_TO, check_family, check_ratio, register_method
from complaw.errors import ComplawError
from complaw.models.adapters import FamilyAdapter, get_adapter
from complaw.models.params import count_parameters
from complaw.models.sliced import (
    LayerDims,
    SlicedDecoderLayer,
    SliceStructure,
    replace_with_sliced_layers,
    rms_eps,
    save_sliced,  # noqa: F401  (saving lives with the sliced model; re-exported for ``compress.slicegpt`` users)
    untie_config,
)

log = logging.getLogger(__name__)

ROTATIONS = ("pca", "random")
DAMPING = 0.01  # fraction of mean(diag H) added to H's diagonal before eigh (reference SliceGPT value)


# ------------------------------------------------------------------------------------------------------
# Calibration data


def calibration_batches(model: nn.Module, calibration: Any = None, *, tokenizer: Any = None,
                        samples: int = 128, seqlen: int = 2048, batch_size: int = 8, seed: int = 0,
                        text_field: str = "text",
                        split: str = "train") -> tuple[list[tuple[torch.Tensor, torch.Tensor]], dict]:
    """N x T calibration windows as ``[(input_ids, attention_mask), ...]`` batches, plus a description.

    ``calibration`` is read by :func:`complaw.compress.calibration.calibration_windows` (``None`` = the
    zoo's calibration split; a path, ``zoo:SPLIT``, a dataset id ``NAME[:CONFIG]`` such as the
    reference's ``wikitext:wikitext-2-raw-v1``, a list of texts, or token ids); ``samples`` windows of
    ``seqlen`` tokens (capped at ``config.max_position_embeddings``) drawn by ``seed``, ``batch_size``
    windows per forward pass. The PCA needs at least ``hidden_size`` tokens.
    """
    if batch_size < 1:
        raise ComplawError(f"calibration batch size={batch_size}: must be >= 1")
    windows, masks, source = calibration_windows(model, calibration, tokenizer=tokenizer, samples=samples,
                                                 seqlen=seqlen, seed=seed, text_field=text_field, split=split)
    tokens = int(masks.sum())
    hidden = int(model.config.hidden_size)
    if tokens < hidden:
        raise ComplawError(
            f"calibration {source}: {tokens} tokens are fewer than the hidden size {hidden}; the PCA needs at "
            f"least as many tokens as dimensions; give more text or raise calibration_samples/calibration_seqlen"
        )
    batches = [(windows[i:i + batch_size], masks[i:i + batch_size]) for i in range(0, len(windows), batch_size)]
    info = {"source": source, "sequences": int(windows.shape[0]), "seqlen": int(windows.shape[1]),
            "tokens": tokens, "batch_size": batch_size}
    return batches, info


# ------------------------------------------------------------------------------------------------------
# Step 1: fusing the norms (function unchanged)


def _norm_scale(norm: nn.Module, where: str) -> torch.Tensor:
    weight = getattr(norm, "weight", None)
    if weight is None or getattr(norm, "bias", None) is not None:
        raise ComplawError(f"{where}: SliceGPT needs RMSNorm with a scale and no bias, found {type(norm).__name__}")
    return weight.detach()


def _scale_inputs(linear: nn.Linear, scale: torch.Tensor, rows: int = 4096) -> None:
    """W <- W diag(scale) in place, in float64 a block of rows at a time: the linear now reads the
    un-scaled normalised input."""
    w = linear.weight.data
    s = scale.to(w.device, torch.float64)[None, :]
    for i in range(0, w.shape[0], rows):
        w[i:i + rows] = (w[i:i + rows].double() * s).to(w.dtype)


def fuse_norms(model: nn.Module) -> None:
    """Fold every RMSNorm scale into the following linears, untie the head, swap norms for weightless RMSN.

    After this the model computes the same function (exactly, up to rounding) with no norm weights left.
    """
    adapter = get_adapter(model)
    for i, layer in enumerate(adapter.layers_of(model)):
        if isinstance(layer, SlicedDecoderLayer):
            raise ComplawError("model: already sliced by SliceGPT; compress the original model instead")
        in_norm, post_norm = adapter.norms(layer)
        g_in = _norm_scale(in_norm, f"layer {i} {adapter.input_norm}")
        g_post = _norm_scale(post_norm, f"layer {i} {adapter.post_attn_norm}")
        for lin in adapter.attn_linears(layer)[:3]:
            _scale_inputs(lin, g_in)
        for lin in adapter.mlp_linears(layer)[:2]:
            _scale_inputs(lin, g_post)
    head, emb = adapter.head(model), adapter.embedding(model)
    if head.weight.data_ptr() == emb.weight.data_ptr():  # tied: the head gets its own copy
        head.weight = nn.Parameter(head.weight.detach().clone())
    untie_config(model)
    _scale_inputs(head, _norm_scale(adapter.final_norm_of(model), "final norm"))
    replace_with_sliced_layers(model)


# ------------------------------------------------------------------------------------------------------
# Step 2: rotation and slicing


def _matmul64(w: torch.Tensor, q: torch.Tensor, rows: int = 4096) -> torch.Tensor:
    """``w @ q`` computed in float64 and cast back to ``w``'s dtype, a block of rows at a time.

    Row blocks keep the float64 temporaries small (an LM head or embedding is V x D: a full float64 copy
    of a 128k-vocabulary head would be gigabytes); a square ``q`` (nothing sliced, e.g. the LM head)
    is applied in place, so no second copy of ``w`` exists either.
    """
    square = q.shape[0] == q.shape[1]
    out = w if square else torch.empty(w.shape[0], q.shape[1], dtype=w.dtype, device=w.device)
    qd = q.to(w.device, torch.float64)
    for i in range(0, w.shape[0], rows):
        out[i:i + rows] = (w[i:i + rows].double() @ qd).to(w.dtype)
    return out


def _rotate_inputs(linear: nn.Module, q: torch.Tensor) -> None:
    """W (out, D) <- W Q (out, k): the linear reads the rotated, sliced stream (works for embeddings too)."""
    linear.weight.data = _matmul64(linear.weight.data, q)
    if isinstance(linear, nn.Embedding):
        linear.embedding_dim = q.shape[1]
    else:
        linear.in_features = q.shape[1]


def _rotate_outputs(linear: nn.Linear, q: torch.Tensor) -> None:
    """W (D, in) <- Q^T W (k, in), bias likewise: the linear writes the rotated, sliced stream."""
    w = linear.weight.data
    linear.weight.data = _matmul64(w.T, q).T.contiguous()
    if linear.bias is not None:
        linear.bias.data = (linear.bias.data.double() @ q.to(w.device, torch.float64)).to(w.dtype)
    linear.out_features = q.shape[1]


def _pca(signals: list[torch.Tensor], masks: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (decreasing) and eigenvectors (columns) of the damped H = sum x^T x over real tokens."""
    h = None
    for x, m in zip(signals, masks, strict=True):
        x = x.double() * m.to(x.device, torch.float64)[..., None]
        x = x.reshape(-1, x.shape[-1])
        h = x.T @ x if h is None else h.addmm_(x.T, x)
    h.diagonal().add_(DAMPING * h.diagonal().mean())
    eigvals, eigvecs = torch.linalg.eigh(h)
    order = torch.argsort(eigvals, descending=True)
    return eigvals[order], eigvecs[:, order]


def _random_orthogonal(dim: int, generator: torch.Generator, device) -> torch.Tensor:
    """A Haar-random orthogonal matrix (QR of a Gaussian with the sign fix)."""
    g = torch.randn(dim, dim, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(g)
    return (q * torch.sign(torch.diagonal(r))[None, :]).to(device)


def sliced_width(dim: int, ratio: float, round_to: int) -> int:
    """k = floor((1 - ratio) * dim), rounded down to a multiple of ``round_to``."""
    if round_to < 1:
        raise ComplawError(f"round_to={round_to}: must be a positive integer, e.g. 8")
    k = math.floor((1.0 - ratio) * dim + 1e-9)
    k -= k % round_to
    if k < 1:
        raise ComplawError(f"ratio {ratio} with round_to={round_to}: leaves no hidden dimension of {dim}; "
                           "use a smaller ratio or round_to")
    return k


class _Recorder(nn.Module):
    """Stands in for a decoder layer during one backbone pass and records what the layer would receive."""

    def __init__(self, store: list) -> None:
        super().__init__()
        self.store = store

    def forward(self, hidden_states, *args, **kwargs):
        self.store.append((hidden_states, args, kwargs))
        return hidden_states


@torch.no_grad()
def _record_layer_inputs(model: nn.Module, adapter: FamilyAdapter, batches,
                         device: torch.device) -> tuple[list, list[list[dict]]]:
    """Run the backbone once per batch on ``device`` with every layer replaced by a recorder.

    Returns the embedding outputs per batch and, per batch and layer, the keyword arguments the model
    passes to that layer (causal/sliding mask, rotary cos/sin, position ids) — exactly what the family's
    own forward builds, so no mask or rotary logic is re-implemented here.
    """
    decoder = adapter.decoder(model)
    layers = adapter.layers_of(model)
    originals = list(layers)
    # Only the non-layer parts of the backbone (embeddings, rotary, final norm) visit ``device`` here.
    others = [(m, _device_of(m)) for name, m in decoder.named_children() if name != adapter.layers]
    embeddings, layer_kwargs = [], []
    try:
        for m, _ in others:
            m.to(device)
        for ids, mask in batches:
            store: list = []
            for i in range(len(layers)):
                layers[i] = _Recorder(store)
            decoder(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False)
            embeddings.append(store[0][0])
            kws = []
            for _, args, kwargs in store:
                if args:
                    raise RuntimeError("decoder layer received positional arguments besides hidden_states")
                kws.append({k: v for k, v in kwargs.items() if k not in ("past_key_values", "use_cache")})
            layer_kwargs.append(kws)
    finally:
        for i, layer in enumerate(originals):
            layers[i] = layer
        for m, home in others:
            if home is not None:
                m.to(home)
    return embeddings, layer_kwargs


def _device_of(module: nn.Module) -> torch.device | None:
    tensor = next(iter(module.parameters()), None)
    if tensor is None:
        tensor = next(iter(module.buffers()), None)
    return None if tensor is None else tensor.device


@torch.no_grad()
def rotate_and_slice(model: nn.Module, batches, *, ratio: float, round_to: int = 8, slice_head: bool = False,
                     rotation: str = "pca", seed: int = 0,
                     device: str | torch.device | None = None) -> tuple[SliceStructure, dict[str, float]]:
    """Fuse norms, then rotate and slice the model in place, layer by layer (the SliceGPT algorithm).

    Args:
        model: a causal LM of a supported family (norms not yet fused).
        batches: ``[(input_ids, attention_mask), ...]`` calibration batches.
        ratio: slicing ratio; hidden widths become :func:`sliced_width` (D, ratio, round_to).
        round_to: kept widths are multiples of this.
        slice_head: also slice the LM head's input (otherwise the last layer writes the full width D).
        rotation: ``"pca"`` (SliceGPT) or ``"random"`` (random orthogonal Q: the ablation).
        seed: seed of the random rotations.
        device: where layers are processed, one at a time, with the calibration activations (default: where
            the embeddings are). With the model on CPU and ``device="cuda"``, GPU memory holds one layer
            plus the activations.

    Returns:
        The :class:`SliceStructure` and timings (forward passes, eigendecompositions).
    """
    adapter = get_adapter(model)
    config = model.config
    dim = int(config.hidden_size)
    k = sliced_width(dim, ratio, round_to)
    n_layers = len(adapter.layers_of(model))
    device = torch.device(device) if device is not None else adapter.embedding(model).weight.device
    timings = {"forward_s": 0.0, "pca_s": 0.0}  # calibration forward passes; H accumulation + eigh

    t0 = time.perf_counter()
    xs, layer_kwargs = _record_layer_inputs(model, adapter, batches, device)
    timings["forward_s"] += time.perf_counter() - t0
    rot = _Rotations(dim, rotation, seed, [m.to(x.device) for (_, m), x in zip(batches, xs, strict=True)],
                     xs[0].dtype, timings)
    fuse_norms(model)

    # Embeddings: E (V, D) -> E Q0[:, :k]; the calibration stream follows.
    q = rot.orientation(xs)
    _rotate_inputs(adapter.embedding(model), q[:, :k])
    xs = rot.rotate(xs, q[:, :k])
    structure = SliceStructure(hidden_size=dim, eps=rms_eps(config), embedding=k, slice_head=slice_head)
    k_in = k
    for idx, layer in enumerate(adapter.layers_of(model)):
        k_out = k if (idx < n_layers - 1 or slice_head) else dim
        home = _device_of(layer)
        layer.to(device)
        xs, q = _rotate_and_slice_layer(layer, adapter, rot, xs, [kw[idx] for kw in layer_kwargs], q, k_in, k, k_out)
        structure.layers.append(LayerDims(attn_in=k_in, mid=k, out=k_out))
        layer.to(home)
        k_in = k_out

    _rotate_inputs(adapter.head(model), q[:, :k_in])
    structure.head = k_in
    model.complaw_slicegpt = structure
    model.complaw_format = "slicegpt"  # complaw.models.io.save(model, ...) then writes the sliced format
    return structure, timings


class _Rotations:
    """The orthogonal bases of the residual stream (PCA of the calibration signal, or random) and the rotation
    of that signal, with their timings."""

    def __init__(self, dim: int, rotation: str, seed: int, masks: list[torch.Tensor], dtype: torch.dtype,
                 timings: dict[str, float]):
        self.dim, self.rotation, self.masks, self.dtype, self.timings = dim, rotation, masks, dtype, timings
        self.gen = torch.Generator().manual_seed(seed)
        # Activations are rotated in the model's dtype like the reference (fp32 for half types); weights in fp64.
        self.act_dtype = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype

    def orientation(self, signals: list[torch.Tensor]) -> torch.Tensor:
        t = time.perf_counter()
        if self.rotation == "random":
            q = _random_orthogonal(self.dim, self.gen, signals[0].device)
        else:
            q = _pca(signals, self.masks)[1]
        self.timings["pca_s"] += time.perf_counter() - t
        return q

    def rotate(self, signals: list[torch.Tensor], q: torch.Tensor) -> list[torch.Tensor]:
        qa = q.to(self.act_dtype)
        return [(x.to(self.act_dtype) @ qa).to(self.dtype) for x in signals]

    def forward(self, fn, inputs: list, kwargs: list[dict] | None = None) -> list[torch.Tensor]:
        t = time.perf_counter()
        out = [fn(x, **(kwargs[b] if kwargs else {})) for b, x in enumerate(inputs)]
        self.timings["forward_s"] += time.perf_counter() - t
        return out


def _rotate_and_slice_layer(layer, adapter: FamilyAdapter, rot: _Rotations, xs: list[torch.Tensor],
                            kwargs: list[dict], q: torch.Tensor, k_in: int, k: int, k_out: int):
    """Rotate and slice one decoder layer in place: its inputs arrive in basis ``q[:, :k_in]``; the block's middle
    gets its own basis (width ``k``), its output the next one (width ``k_out``). Returns the rotated outputs
    (the next layer's inputs) and the output basis."""
    q_in = q[:, :k_in]
    wdtype = adapter.attn_linears(layer)[0].weight.dtype
    for lin in adapter.attn_linears(layer)[:3]:
        _rotate_inputs(lin, q_in)

    # Mid-block residual in the original basis: the shortcut maps the sliced input back (k_in x D).
    layer.attn_shortcut = nn.Parameter(q_in.T.to(wdtype).contiguous())
    mids = rot.forward(layer.attention_block, xs, kwargs)
    q_mid = rot.orientation(mids)[:, :k]
    layer.attn_shortcut = nn.Parameter((q_in.T @ q_mid).to(wdtype))
    _rotate_outputs(adapter.attn_linears(layer)[3], q_mid)
    for lin in adapter.mlp_linears(layer)[:2]:
        _rotate_inputs(lin, q_mid)
    mids = rot.rotate(mids, q_mid)

    # Layer output in the original basis, the MLP's shortcut mapping back (k x D).
    layer.mlp_shortcut = nn.Parameter(q_mid.T.to(wdtype).contiguous())
    outs = rot.forward(layer.mlp_block, mids)
    del mids
    q = rot.orientation(outs)
    q_out = q[:, :k_out]
    layer.mlp_shortcut = nn.Parameter((q_mid.T @ q_out).to(wdtype))
    _rotate_outputs(adapter.mlp_linears(layer)[2], q_out)
    return rot.rotate(outs, q_out), q


# ------------------------------------------------------------------------------------------------------
# The registered method


# Calibration windows (N sequences × T tokens) by the device the PCA runs on. The reference's 128 × 2048
# (262k tokens) is minutes on a GPU but an hour of forward passes and PCA on a 2-core CPU for a 135M model;
# 16k tokens is ~30× the hidden size of a small LLM, enough for a stable covariance (BENCHMARKS.md).
CALIBRATION_BUDGETS = {"cpu": (32, 512), "accelerator": (128, 2048)}


def default_calibration_budget(device: torch.device | str) -> tuple[int, int]:
    """``(samples, seqlen)`` of the default calibration for a PCA on ``device``."""
    kind = torch.device(device).type
    return CALIBRATION_BUDGETS["cpu" if kind == "cpu" else "accelerator"]


def _check_options(o) -> None:
    """The slicegpt options a type and a range cannot check, checked before any work."""
    if o.rotation not in ROTATIONS:
        raise ComplawError(f"rotation={o.rotation!r}: must be one of {', '.join(ROTATIONS)}")
    if o.device is not None:
        try:
            torch.device(o.device)
        except (RuntimeError, ValueError):
            raise ComplawError(f"device={o.device!r}: not a device; use cpu, cuda or cuda:N") from None


@register_method("slicegpt", needs_calibration=True, pre_norm_only=True,
                 description="SliceGPT: fuse norms, PCA-rotate and slice the residual stream (calibration-based)",
                 bounds={"round_to": ROUND_TO,
                         "calibration_samples": Bound(1, 10_000, "calibration sequences (the reference: 128)",
                                                      integer=True),
                         "calibration_seqlen": Bound(2, 131_072, "tokens per calibration sequence, within a "
                                                     "model's context", integer=True),
                         "calibration_batch_size": Bound(1, 1024, "calibration sequences per forward pass",
                                                         integer=True)},
                 check=_check_options)
def slicegpt(model: nn.Module, ratio: float, *, seed: int = 0, calibration: Any = None, tokenizer: Any = None,
             calibration_samples: int | None = None, calibration_seqlen: int | None = None,
             calibration_batch_size: int = 8,
             round_to: int = 8, slice_head: bool = False, rotation: str = "pca", text_field: str = "text",
             calibration_split: str = "train",
             device: str | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """SliceGPT the model in place.

    Args:
        model: a Llama/Mistral/Qwen2 causal LM (fp32 or bf16; fp16 overflows on Qwen).
        ratio: slicing ratio s; the residual stream keeps floor((1-s) D) dims (rounded to ``round_to``).
        seed: picks the calibration windows and the random rotations.
        calibration: texts, a file path, ``zoo:SPLIT``, a dataset id ``NAME[:CONFIG]``, token ids, or None
            for the zoo's calibration split.
        tokenizer: used to tokenise text calibration data (default: the model's own).
        calibration_samples, calibration_seqlen: N sequences of T tokens. Default: a token budget for the
            device the PCA runs on (:func:`default_calibration_budget`): the reference's 128 x 2048 on an
            accelerator, 32 x 512 (16,384 tokens) on a CPU. The budget used is in ``details["calibration"]``.
        calibration_batch_size: sequences per forward pass.
        round_to: kept widths are multiples of this (8 for tensor cores; 1 keeps every dim at ratio 0).
        slice_head: slice the LM head's input too (default: rotate only).
        rotation: "pca" (SliceGPT) or "random" (random orthogonal Q, an ablation).
        text_field: text column of .jsonl/.json/hub calibration sources.
        calibration_split: split of a hub calibration dataset.
        device: process layer by layer on this device (e.g. "cuda" for a model kept on CPU).

    Returns:
        ``(model, details)`` with the slicing structure, calibration summary, timings and the measured
        ``param_reduction`` (warned about when it is not positive).
    """
    ratio = check_ratio(ratio)
    if rotation not in ROTATIONS:
        raise ComplawError(f"rotation {rotation!r}: must be one of {', '.join(ROTATIONS)}")
    adapter = get_adapter(model)  # unsupported families fail here, with the supported list
    check_family("slicegpt", model)
    rms_eps(model.config)
    dim = int(model.config.hidden_size)
    sliced_width(dim, ratio, round_to)  # validate before the expensive part
    param_dtype = next(model.parameters()).dtype
    if param_dtype == torch.float16:
        warnings.warn("SliceGPT in float16 can overflow (Qwen especially); prefer bfloat16 or float32",
                      stacklevel=2)
    run_on = torch.device(device) if device is not None else next(model.parameters()).device
    default_samples, default_seqlen = default_calibration_budget(run_on)
    for key, value in (("calibration_samples", calibration_samples), ("calibration_seqlen", calibration_seqlen)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ComplawError(f"option {key}={value!r}: must be a positive integer, e.g. {key}=32")
    samples = default_samples if calibration_samples is None else calibration_samples
    seqlen = default_seqlen if calibration_seqlen is None else calibration_seqlen
    batches, calib = calibration_batches(
        model, calibration, tokenizer=tokenizer, samples=samples, seqlen=seqlen,
        batch_size=calibration_batch_size, seed=seed, text_field=text_field, split=calibration_split,
    )
    calib["budget"] = {"device": run_on.type, "samples": samples, "seqlen": seqlen,
                       "default": calibration_samples is None and calibration_seqlen is None}
    before = count_parameters(model)
    was_tied = adapter.head(model).weight.data_ptr() == adapter.embedding(model).weight.data_ptr()
    was_training = model.training
    model.eval()
    structure, timings = rotate_and_slice(model, batches, ratio=ratio, round_to=round_to,
                                          slice_head=slice_head, rotation=rotation, seed=seed, device=device)
    model.train(was_training)
    after = count_parameters(model)
    reduction = (before - after) / before
    if reduction <= 0:
        cause = "the untied LM head and the k x k shortcuts outweigh" if was_tied else "the k x k shortcuts outweigh"
        msg = (f"SliceGPT at ratio {ratio}: the model grew by {-reduction:.1%} of its parameters "
               f"({before} -> {after}): {cause} the slicing")
        warnings.warn(msg, stacklevel=2)
        log.warning(msg)
    details = {
        "kept_per_layer": [d.mid for d in structure.layers],
        "hidden_size": dim,
        "kept_hidden": structure.embedding,
        "structure": structure.to_dict(),
        "rotation": rotation,
        "calibration": calib,
        "param_reduction": reduction,
        "untied_head": was_tied,
        "params_before": before,
        "params_after": after,
        "family": adapter.model_type,
        "timings": timings,
    }
    return model, details
