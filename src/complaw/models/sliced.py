"""The modules of a SliceGPT-sliced model, and the loader that rebuilds one from disk.

A sliced model keeps the Hugging Face causal-LM object (``LlamaForCausalLM``, ``Qwen2ForCausalLM``, ...)
with its config, attention and MLP modules, so ``forward(input_ids, attention_mask, labels)`` still
returns ``.logits`` / ``.loss``, peft can wrap it and lm-eval's ``HFLM`` can drive it. Three things change:

* every norm is a weightless :class:`RMSN` (the scales were folded into the following linears);
* every decoder layer is a :class:`SlicedDecoderLayer`: the residual stream is ``k`` wide instead of
  ``hidden_size`` and each residual connection goes through a shortcut matrix
  (``h_mid = h_in @ S_attn + Attn(RMSN(h_in))``, ``h_out = h_mid @ S_mlp + MLP(RMSN(h_mid))``);
* embeddings (``V x k``), q/k/v/gate/up inputs, o/down outputs and the (untied) LM head are narrower.

``config.hidden_size`` keeps the *original* width D (attention head sizes and rotary embeddings read it);
the sliced widths live in a :class:`SliceStructure` saved next to the weights. Such a directory is loaded
with ``complaw.load(path)``; plain ``from_pretrained`` cannot rebuild it, and is made to fail (the
weights file is named ``slicegpt.safetensors``, not ``model.safetensors``) instead of silently loading
wrong weights.

Known limit: ``output_hidden_states=True`` returns no per-layer states (transformers records them with
hooks on the family's own decoder-layer class, which the sliced layers are not); logits, loss, the KV
cache and ``generate`` work as usual.

    >>> model = complaw.load("out/llama-m-slicegpt-0.3")     # rebuilds the sliced modules, same logits
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from complaw.errors import ComplawError
from complaw.models.adapters import FamilyAdapter, get_adapter

WEIGHTS_PREFIX = "slicegpt"  # weights files are slicegpt*.safetensors so from_pretrained finds none


class RMSN(nn.Module):
    """Weightless RMS norm that divides by the *original* hidden size.

    After slicing, the residual stream carries only the top-k principal directions; dividing the sum of
    squares by the original width D (not k) keeps the norm equal to the unsliced model's when nothing is
    sliced, and is what SliceGPT does. fp16/bf16 inputs are upcast to fp32 like the HF norms; fp32 and fp64
    stay as they are (so float64 invariance checks hold to ~1e-12).

    Args:
        hidden_size: the original width D the sum of squares is divided by.
        eps: the config's ``rms_norm_eps``.
    """

    def __init__(self, hidden_size: int, eps: float) -> None:
        super().__init__()
        self.hidden_size = int(hidden_size)
        self.variance_epsilon = float(eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        if dtype in (torch.float16, torch.bfloat16):
            x = x.to(torch.float32)
        variance = x.pow(2).sum(-1, keepdim=True) / self.hidden_size
        return (x * torch.rsqrt(variance + self.variance_epsilon)).to(dtype)

    def extra_repr(self) -> str:
        return f"hidden_size={self.hidden_size}, eps={self.variance_epsilon}"


def _decoder_layer_base() -> type[nn.Module]:
    # GradientCheckpointingLayer gives the sliced layer HF's gradient-checkpointing switch (LoRA recovery
    # on long sequences); fall back to a plain module on transformers without it.
    try:
        from transformers.modeling_layers import GradientCheckpointingLayer

        return GradientCheckpointingLayer
    except ImportError:  # pragma: no cover - older transformers
        return nn.Module


class SlicedDecoderLayer(_decoder_layer_base()):
    """A pre-norm decoder layer whose residual connections go through shortcut matrices.

    Holds the family's own attention and MLP modules under their usual attribute names
    (``self_attn``, ``mlp``, ``input_layernorm``, ``post_attention_layernorm``) so state-dict keys,
    peft target names and the family adapter keep working. Shapes (k_* = sliced widths):
    ``attn_shortcut`` is (k_in, k_mid), ``mlp_shortcut`` is (k_mid, k_out); ``None`` means identity
    (norms fused, nothing rotated yet).
    """

    def __init__(self, attn: nn.Module, mlp: nn.Module, input_norm: nn.Module, post_attn_norm: nn.Module,
                 names: FamilyAdapter) -> None:
        super().__init__()
        self._names = (names.attn, names.mlp, names.input_norm, names.post_attn_norm)
        setattr(self, names.attn, attn)
        setattr(self, names.mlp, mlp)
        setattr(self, names.input_norm, input_norm)
        setattr(self, names.post_attn_norm, post_attn_norm)
        self.attn_shortcut: nn.Parameter | None = None
        self.mlp_shortcut: nn.Parameter | None = None

    def _parts(self) -> tuple[nn.Module, nn.Module, nn.Module, nn.Module]:
        return tuple(getattr(self, n) for n in self._names)  # type: ignore[return-value]

    def attention_block(self, hidden_states: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """h_mid = h_in @ S_attn + Attn(RMSN(h_in)); ``kwargs`` are the HF layer kwargs (mask, rotary, cache)."""
        attn, _, input_norm, _ = self._parts()
        out = attn(hidden_states=input_norm(hidden_states), **kwargs)
        out = out[0] if isinstance(out, tuple) else out
        residual = hidden_states if self.attn_shortcut is None else hidden_states @ self.attn_shortcut
        return residual + out

    def mlp_block(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """h_out = h_mid @ S_mlp + MLP(RMSN(h_mid))."""
        _, mlp, _, post_norm = self._parts()
        out = mlp(post_norm(hidden_states))
        residual = hidden_states if self.mlp_shortcut is None else hidden_states @ self.mlp_shortcut
        return residual + out

    def forward(self, hidden_states: torch.Tensor, attention_mask=None, position_ids=None,
                use_cache: bool | None = False, position_embeddings=None, **kwargs: Any) -> torch.Tensor:
        # The KV cache travels in kwargs under whichever name the decoder uses (``cache`` in recent
        # transformers, ``past_key_values`` before), so the attention never sees both.
        hidden_states = self.attention_block(
            hidden_states, attention_mask=attention_mask, position_ids=position_ids, use_cache=use_cache,
            position_embeddings=position_embeddings, **kwargs,
        )
        return self.mlp_block(hidden_states)


# ------------------------------------------------------------------------------------------------------
# Structure: the sliced widths, enough to rebuild the module tree from the base config.


@dataclass
class LayerDims:
    """Residual-stream widths around one layer: its input, its mid-block residual, its output."""

    attn_in: int
    mid: int
    out: int


@dataclass
class SliceStructure:
    """Everything besides the base config that a sliced model's shapes depend on (saved as JSON).

    Args:
        hidden_size: the original width D (RMSN divides by it).
        eps: the RMSN epsilon (the config's ``rms_norm_eps``).
        embedding: width of the (rotated, sliced) embeddings.
        layers: per-layer widths.
        head: input width of the LM head (D unless ``slice_head``).
        slice_head: whether the head's input was sliced too.
    """

    hidden_size: int
    eps: float
    embedding: int
    layers: list[LayerDims] = field(default_factory=list)
    head: int = 0
    slice_head: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SliceStructure:
        data = dict(data)
        data["layers"] = [LayerDims(**d) for d in data.get("layers", [])]
        return cls(**data)


def rms_eps(config) -> float:
    eps = getattr(config, "rms_norm_eps", None)
    if eps is None:
        raise ComplawError(
            f"model_type {config.model_type!r}: config has no rms_norm_eps; SliceGPT needs an RMSNorm model"
        )
    return float(eps)


def replace_with_sliced_layers(model: nn.Module) -> None:
    """Swap every decoder layer for a :class:`SlicedDecoderLayer` with weightless norms (no shortcuts yet).

    The norms are replaced *as they are*: callers that hold trained norm scales must fold them into the
    following linears first (:func:`complaw.compress.slicegpt.fuse_norms`).
    """
    adapter = get_adapter(model)
    config = model.config
    eps, dim = rms_eps(config), int(config.hidden_size)
    layers = adapter.layers_of(model)
    for i, layer in enumerate(layers):
        if isinstance(layer, SlicedDecoderLayer):
            continue
        new = SlicedDecoderLayer(adapter.attention(layer), adapter.mlp_of(layer), RMSN(dim, eps), RMSN(dim, eps),
                                 adapter)
        layers[i] = new
    setattr(adapter.decoder(model), adapter.final_norm, RMSN(dim, eps))


def _narrow_linear(linear: nn.Linear, *, in_features: int | None = None, out_features: int | None = None) -> nn.Linear:
    """An uninitialised linear of the new shape, same dtype/device/bias presence (weights loaded later)."""
    fin = linear.in_features if in_features is None else in_features
    fout = linear.out_features if out_features is None else out_features
    w = linear.weight
    return nn.Linear(fin, fout, bias=linear.bias is not None, device=w.device, dtype=w.dtype)


def build_sliced_skeleton(model: nn.Module, structure: SliceStructure) -> nn.Module:
    """Give a freshly built base model the shapes of a sliced one (values to be loaded afterwards)."""
    adapter = get_adapter(model)
    replace_with_sliced_layers(model)
    emb = adapter.embedding(model)
    new_emb = nn.Embedding(emb.num_embeddings, structure.embedding, padding_idx=emb.padding_idx,
                           device=emb.weight.device, dtype=emb.weight.dtype)
    setattr(adapter.decoder(model), adapter.embed, new_emb)
    for layer, dims in zip(adapter.layers_of(model), structure.layers, strict=True):
        for name in ("q", "k", "v"):
            lin = getattr(adapter.attention(layer), getattr(adapter, name))
            adapter.set_linear(layer, name, _narrow_linear(lin, in_features=dims.attn_in))
        q = adapter.attn_linears(layer)[0]
        o = adapter.attn_linears(layer)[3]
        adapter.set_linear(layer, "o", _narrow_linear(o, out_features=dims.mid))
        for name in ("gate", "up"):
            lin = getattr(adapter.mlp_of(layer), getattr(adapter, name))
            adapter.set_linear(layer, name, _narrow_linear(lin, in_features=dims.mid))
        down = adapter.mlp_linears(layer)[2]
        adapter.set_linear(layer, "down", _narrow_linear(down, out_features=dims.out))
        kw = {"dtype": q.weight.dtype, "device": q.weight.device}
        layer.attn_shortcut = nn.Parameter(torch.empty(dims.attn_in, dims.mid, **kw))
        layer.mlp_shortcut = nn.Parameter(torch.empty(dims.mid, dims.out, **kw))
    head = adapter.head(model)
    setattr(model, adapter.lm_head, _narrow_linear(head, in_features=structure.head))
    untie_config(model)
    return model


def untie_config(model: nn.Module) -> None:
    """Record that the LM head is no longer tied to the embeddings, so nothing re-ties them later."""
    model.config.tie_word_embeddings = False
    text_config = getattr(model.config, "get_text_config", lambda: None)()
    if text_config is not None and text_config is not model.config:
        text_config.tie_word_embeddings = False
    if hasattr(model, "all_tied_weights_keys"):
        model.all_tied_weights_keys = {}


# ------------------------------------------------------------------------------------------------------
# Saving and loading.


def weight_files(path: str | Path) -> list[Path]:
    return sorted(Path(path).glob(f"{WEIGHTS_PREFIX}*.safetensors"))


def rename_weights(path: str | Path) -> None:
    """Rename ``model*.safetensors`` (and the shard index) to ``slicegpt*`` so from_pretrained refuses the dir."""
    out = Path(path)
    index = out / "model.safetensors.index.json"
    if index.is_file():
        data = json.loads(index.read_text())
        data["weight_map"] = {k: WEIGHTS_PREFIX + v[len("model"):] for k, v in data.get("weight_map", {}).items()}
        (out / f"{WEIGHTS_PREFIX}.safetensors.index.json").write_text(json.dumps(data, indent=2))
        index.unlink()
    for f in sorted(out.glob("model*.safetensors")):
        f.rename(out / (WEIGHTS_PREFIX + f.name[len("model"):]))


def read_structure(path: str | Path) -> SliceStructure:
    """The :class:`SliceStructure` saved in ``path/complaw.json``, or one line saying it is damaged."""
    from complaw.models.io import read_meta

    meta = read_meta(path)
    entry = meta.get("slicegpt")
    if not isinstance(entry, dict) or "structure" not in entry:
        raise ComplawError(f"{path}: complaw.json has format 'slicegpt' but no 'slicegpt' structure entry; "
                           "the directory is damaged (compress the model again)")
    try:
        structure = SliceStructure.from_dict(entry["structure"])
        dims = [(int(d.attn_in), int(d.mid), int(d.out)) for d in structure.layers]
        ok = all(w > 0 for w in (structure.hidden_size, structure.embedding, *(x for t in dims for x in t)))
    except (TypeError, ValueError, AttributeError):
        ok = False
    if not ok:
        raise ComplawError(f"{path}: complaw.json's SliceGPT structure is damaged (widths missing or not "
                           "positive); compress the model again")
    return structure


def load_sliced(path: str, *, dtype=None, device=None, trust_remote_code: bool = False) -> nn.Module:
    """Rebuild a sliced model saved by :func:`save_sliced` (the ``slicegpt`` format's loader)."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM

    from complaw.models.io import check_safetensors

    structure = read_structure(path)
    files = weight_files(path)
    if not files:
        raise ComplawError(f"{path}: no {WEIGHTS_PREFIX}*.safetensors weights file next to complaw.json")
    for f in files:  # a truncated file is named before anything is read
        check_safetensors(f, f"model {path!r}")
    config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state.update(load_file(str(f)))
    if dtype is None:
        dtype = next(iter(state.values())).dtype if state else torch.float32
    from transformers.initialization import no_init_weights

    with no_init_weights():
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, trust_remote_code=trust_remote_code)
        try:
            build_sliced_skeleton(model, structure)
        except ValueError:  # zip(strict=True): the structure lists another number of layers than the config
            raise ComplawError(f"{path}: complaw.json's SliceGPT structure has {len(structure.layers)} layers, "
                               f"config.json {config.num_hidden_layers}; the directory is damaged") from None
    state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # shapes that differ from the structure's
        first = (str(err).strip().splitlines() or [""])[-1].strip()[:160]
        raise ComplawError(f"{path}: weights do not match the saved SliceGPT structure ({first}); "
                           "the directory is damaged") from None
    # Non-persistent buffers (rotary inv_freq) are rebuilt by the constructor, never saved.
    missing = [k for k in missing if not k.endswith("inv_freq")]
    if missing or unexpected:
        raise ComplawError(
            f"{path}: weights do not match the saved SliceGPT structure "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]}); the directory is damaged"
        )
    model.eval()
    return model.to(device) if device is not None else model


def save_sliced(model: nn.Module, path: str | Path, *, record: Any = None, tokenizer: Any = None,
                extra: dict[str, Any] | None = None) -> Path:
    """Save a SliceGPT model: base-family config.json, ``slicegpt*.safetensors``, structure in complaw.json.

    Load it back with ``complaw.load(path)``. ``from_pretrained(path)`` deliberately finds no
    ``model.safetensors`` and fails: a plain HF model cannot hold the shortcut matrices and sliced widths.
    """
    if hasattr(model, "peft_config"):  # a PeftModel would save only its adapter under our weights' name
        raise ComplawError("model: LoRA-wrapped SliceGPT model; call merge_and_unload() before saving it")
    structure = getattr(model, "complaw_slicegpt", None)
    if structure is None:
        raise ComplawError("model: not a SliceGPT model (no slicing structure); compress it with method 'slicegpt'")
    extra = {**(extra or {}), "slicegpt": {
        "structure": structure.to_dict(),
        "base_config": model.config.to_dict(),
        "note": "load with complaw.load(path); transformers' from_pretrained cannot rebuild a sliced model",
    }}
    from complaw.models.io import save

    out = save(model, path, record=record, tokenizer=tokenizer, fmt="slicegpt", extra=extra)
    rename_weights(out)
    return out


def load_slicegpt(path: str, *, dtype=None, device=None, trust_remote_code: bool = False) -> nn.Module:
    """A saved SliceGPT model, ready to be evaluated, fine-tuned and saved again in its format."""
    from complaw.models.io import read_meta

    model = load_sliced(path, dtype=dtype, device=device, trust_remote_code=trust_remote_code)
    model.complaw_slicegpt = SliceStructure.from_dict(read_meta(path)["slicegpt"]["structure"])
    model.complaw_format = "slicegpt"
    return model


def _format():
    from complaw.models.io import CheckpointFormat

    return CheckpointFormat(load=load_slicegpt, save=save_sliced)


#: The ``slicegpt`` checkpoint format (registered lazily in :data:`complaw.models.io.FORMATS`).
SLICEGPT_FORMAT = _format()
