"""Model-family adapters: where a Hugging Face causal LM keeps its layers, attention, MLP and norms.

Compression code talks to an adapter, never to ``model.model.layers[i].mlp`` directly, so adding a
family is one new :class:`FamilyAdapter` plus one registration line. Adapters are keyed by
``config.model_type`` (never by a model-name substring).

    >>> adapter = get_adapter(model)          # picks the adapter from model.config.model_type
    >>> for layer in adapter.layers(model):
    ...     gate, up, down = adapter.mlp_linears(layer)
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from complaw.registry import Registry


@dataclass(frozen=True)
class FamilyAdapter:
    """Attribute paths of one pre-norm decoder family (the Llama layout and its relatives).

    Args:
        model_type: the ``config.model_type`` this adapter serves.
        backbone: attribute of the CausalLM holding the decoder (``model``).
        layers: attribute of the backbone holding the ``nn.ModuleList`` of decoder layers.
        embed: attribute of the backbone holding the token embedding.
        final_norm: attribute of the backbone holding the final norm.
        lm_head: attribute of the CausalLM holding the output projection.
        attn / mlp: attributes of a decoder layer.
        q, k, v, o: attention projections (inputs of q/k/v read the residual stream; o writes it).
        gate, up, down: MLP projections (gate/up read the residual stream; down writes it).
        input_norm / post_attn_norm: the two pre-norms of a layer: before attention and before the MLP.
        qkv_bias: whether q/k/v carry biases (Qwen2).
        post_norms: norms applied to a block's *output* before it joins the residual stream (Gemma-2/3's
            post-attention and post-feedforward norms). Empty for pure pre-norm families. A family with
            post-norms breaks SliceGPT's computational invariance: an RMSNorm of the block output cannot be
            rotated through (RMSN(x·Q) ≠ RMSN(x)·Q once its scale is folded away from the residual side).
    """

    model_type: str
    backbone: str = "model"
    layers: str = "layers"
    embed: str = "embed_tokens"
    final_norm: str = "norm"
    lm_head: str = "lm_head"
    attn: str = "self_attn"
    mlp: str = "mlp"
    q: str = "q_proj"
    k: str = "k_proj"
    v: str = "v_proj"
    o: str = "o_proj"
    gate: str = "gate_proj"
    up: str = "up_proj"
    down: str = "down_proj"
    input_norm: str = "input_layernorm"
    post_attn_norm: str = "post_attention_layernorm"
    qkv_bias: bool = False
    post_norms: tuple[str, ...] = ()

    @property
    def pre_norm_only(self) -> bool:
        """True when every norm sits before its block (what SliceGPT's rotation needs)."""
        return not self.post_norms

    # --- navigation -------------------------------------------------------------------------------
    def decoder(self, model: nn.Module) -> nn.Module:
        return getattr(model, self.backbone)

    def layers_of(self, model: nn.Module) -> nn.ModuleList:
        return getattr(self.decoder(model), self.layers)

    def embedding(self, model: nn.Module) -> nn.Embedding:
        return getattr(self.decoder(model), self.embed)

    def final_norm_of(self, model: nn.Module) -> nn.Module:
        return getattr(self.decoder(model), self.final_norm)

    def head(self, model: nn.Module) -> nn.Linear:
        return getattr(model, self.lm_head)

    def attention(self, layer: nn.Module) -> nn.Module:
        return getattr(layer, self.attn)

    def mlp_of(self, layer: nn.Module) -> nn.Module:
        return getattr(layer, self.mlp)

    def attn_linears(self, layer: nn.Module) -> tuple[nn.Linear, nn.Linear, nn.Linear, nn.Linear]:
        """(q, k, v, o) projections of a decoder layer."""
        a = self.attention(layer)
        return getattr(a, self.q), getattr(a, self.k), getattr(a, self.v), getattr(a, self.o)

    def mlp_linears(self, layer: nn.Module) -> tuple[nn.Linear, nn.Linear, nn.Linear]:
        """(gate, up, down) projections of a decoder layer."""
        m = self.mlp_of(layer)
        return getattr(m, self.gate), getattr(m, self.up), getattr(m, self.down)

    def norms(self, layer: nn.Module) -> tuple[nn.Module, nn.Module]:
        """(input norm, post-attention norm) of a decoder layer."""
        return getattr(layer, self.input_norm), getattr(layer, self.post_attn_norm)

    def set_linear(self, layer: nn.Module, name: str, new: nn.Linear) -> None:
        """Replace projection ``name`` (one of q,k,v,o,gate,up,down) of ``layer`` by ``new``."""
        owner = self.attention(layer) if name in ("q", "k", "v", "o") else self.mlp_of(layer)
        setattr(owner, getattr(self, name), new)

    # --- config rewriting -------------------------------------------------------------------------
    def set_intermediate_size(self, config, size: int) -> None:
        """Record a uniform FFN width after row pruning (v5 configs reject per-layer lists)."""
        config.intermediate_size = int(size)

    def set_num_layers(self, config, n: int) -> None:
        config.num_hidden_layers = int(n)
        # v5 configs carry a per-layer attention-type list; keep it in step with the layer count.
        layer_types = getattr(config, "layer_types", None)
        if isinstance(layer_types, list):
            config.layer_types = layer_types[:n]


#: Family adapters by ``config.model_type``.
ADAPTERS: Registry[FamilyAdapter] = Registry(
    "model family", unknown="model_type {name!r}: no adapter for this model family; supported families are "
    "{available}")


def register_adapter(adapter: FamilyAdapter) -> FamilyAdapter:
    """Register an adapter under its ``model_type`` (a second adapter for one family raises)."""
    ADAPTERS.register(adapter.model_type, adapter, help=f"{adapter.model_type} decoder layers")
    return adapter


register_adapter(FamilyAdapter("llama"))
register_adapter(FamilyAdapter("mistral"))
register_adapter(FamilyAdapter("qwen2", qkv_bias=True))
# Gemma-3 (text): norms before *and* after attention and the MLP, q/k norms inside attention, scaled
# embeddings, sliding-window layers (config.layer_types). The MLP is gate/up/down like Llama's.
register_adapter(FamilyAdapter("gemma3_text", post_attn_norm="pre_feedforward_layernorm",
                               post_norms=("post_attention_layernorm", "post_feedforward_layernorm")))


def supported_families() -> list[str]:
    return ADAPTERS.names()


def get_adapter(model_or_config) -> FamilyAdapter:
    """The adapter for a model (or config), chosen by ``config.model_type``.

    Raises:
        ComplawError: for a family no adapter supports, naming the supported ones.
    """
    config = getattr(model_or_config, "config", model_or_config)
    model_type = getattr(config, "model_type", None)
    return ADAPTERS.get(model_type)


