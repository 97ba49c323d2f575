"""Intrinsic evaluation: token-weighted mean cross-entropy (and perplexity) on a fixed test set.

    >>> blocks = token_blocks(load_texts("zoo:test"), tokenizer, seq_len=128, max_blocks=64)
    >>> lm_loss(model, blocks).loss

For the model families complaw has adapters for (their logits are exactly ``lm_head(decoder(x))``), the
loss is computed from the decoder's last hidden state: only positions that predict a token go through
the LM head, in row chunks small enough for the chunk's logits to stay in cache, and no ``(B, T, V)``
logits tensor is ever materialised. What evaluation then adds to a bare forward pass is the softmax itself
(0.91–0.95x a bare pass on zoo:llama-l, 0.95x on a 134M Llama; see BENCHMARKS.md), and memory stays
bounded on large vocabularies. Any other model
(a peft wrapper, a family with logit soft-capping or scaling, a custom class) goes through its own
``forward(...).logits``; both paths give the same loss (tested).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class LossResult:
    loss: float  # mean cross-entropy per predicted token, nats
    perplexity: float
    tokens: int  # predicted tokens counted (padding excluded)

    def to_dict(self) -> dict:
        return asdict(self)


def model_device(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


# Config attributes that put something between the LM head and the logits (Gemma-2 soft-capping,
# Cohere/Granite scaling); a model with any of them set takes the generic path.
_LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling")


def decoder_and_head(model) -> tuple[nn.Module, nn.Linear] | None:
    """(decoder, LM head) when ``model(...).logits == head(decoder(...).last_hidden_state)``, else None."""
    from complaw.models.adapters import get_adapter, supported_families

    config = getattr(model, "config", None)
    if getattr(config, "model_type", None) not in supported_families():
        return None
    if not type(model).__module__.startswith("transformers.") or any(
            getattr(config, name, None) not in (None, 1, 1.0) for name in _LOGIT_TRANSFORMS):
        return None
    adapter = get_adapter(config)
    decoder, head = adapter.decoder(model), adapter.head(model)
    return (decoder, head) if isinstance(head, nn.Linear) else None


_decoder_and_head = decoder_and_head  # the name lm_loss looks up (tests swap it)


def _targets(ids: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Position t predicts token t+1: ``ids[:, 1:]``, -100 where either position is padding."""
    target = ids[:, 1:].clone()
    if mask is not None:
        target.masked_fill_((mask[:, 1:] == 0) | (mask[:, :-1] == 0), -100)
    return target


def _chunked_head_ce(hidden: torch.Tensor, head: nn.Linear, target: torch.Tensor) -> float:
    """Summed cross-entropy of ``head(hidden)`` against ``target``, over the rows with a target only.

    On CPU the rows go through the head in chunks of about 2^21 logits (8 MiB in float32), which stay in
    cache between the matmul and the softmax — as long as a chunk still has at least as many rows as the
    head has inputs. Below that the head's weight, re-read for every chunk, would cost more memory traffic
    than the logits saved (a 768 x 32000 head is 98 MB), so all rows go in one piece, as in a plain
    forward pass. On an accelerator the chunks hold about 2^26 logits (at least 1024 rows), which bounds
    the memory of large vocabularies. Logits are upcast to float32 before the softmax.
    """
    keep = (target != -100).reshape(-1)
    hidden = hidden.reshape(-1, hidden.size(-1))
    target = target.reshape(-1)
    if not keep.all():
        hidden, target = hidden[keep], target[keep]
    if len(target) == 0:
        return 0.0
    if hidden.device.type == "cpu":
        rows = 2 ** 21 // head.out_features
        rows = rows if rows >= head.in_features else len(target)
    else:
        rows = max(1024, 2 ** 26 // head.out_features)
    total = hidden.new_zeros((), dtype=torch.float32)
    for i in range(0, len(target), rows):
        logits = head(hidden[i:i + rows]).float()
        total += F.cross_entropy(logits, target[i:i + rows], reduction="sum")
    return total.item()


#: Logits per chunk of :func:`causal_lm_loss` (16 MiB in float32).
TRAIN_CHUNK_LOGITS = 2 ** 22


def causal_lm_loss(model, ids: torch.Tensor, **kwargs) -> torch.Tensor:
    """Mean next-token cross-entropy of ``model`` on ``ids``, for training: what ``model(input_ids=ids,
    labels=ids).loss`` computes, without holding the whole (batch, T, vocab) logits, their float32 copy and
    the log-softmax for backward.

    The decoder's last hidden state goes through the LM head in chunks of :data:`TRAIN_CHUNK_LOGITS` logits,
    each chunk under activation checkpointing: its logits are freed after the forward and recomputed in the
    backward. On SmolLM2 (49,152-token vocabulary) a step of 8 × 128 tokens keeps ~16 MiB of logits instead
    of ~600 MiB. The sum runs in another order than HF's one-piece loss (equal to float rounding). Models
    whose logits are not ``head(hidden)`` (soft-capping, scaling, a wrapper) take HF's own loss."""
    from torch.utils.checkpoint import checkpoint

    parts = decoder_and_head(model)
    if parts is None:
        return model(input_ids=ids, labels=ids, **kwargs).loss
    decoder, head = parts
    hidden = decoder(input_ids=ids, **kwargs).last_hidden_state[:, :-1]
    hidden = hidden.reshape(-1, hidden.size(-1))
    target = ids[:, 1:].reshape(-1)
    rows = max(1, TRAIN_CHUNK_LOGITS // head.out_features)

    def chunk(h, t):
        return F.cross_entropy(head(h).float(), t, reduction="sum")

    total = hidden.new_zeros((), dtype=torch.float32)
    for i in range(0, len(target), rows):
        total = total + checkpoint(chunk, hidden[i:i + rows], target[i:i + rows], use_reentrant=False)
    return total / len(target)


@torch.inference_mode()
def lm_loss(model, blocks: torch.Tensor, *, batch_size: int = 8, attention_mask: torch.Tensor | None = None
            ) -> LossResult:
    """Mean next-token cross-entropy over all predicted tokens of ``blocks`` (n, T).

    Each block predicts its tokens 2…T from the ones before; positions where ``attention_mask`` is 0
    (padding, left or right) neither predict nor are predicted. The mean is weighted by tokens, not by
    batch, and the logits are upcast to float32 before the softmax.
    """
    was_training = model.training
    model.eval()
    device = model_device(model)
    fast = _decoder_and_head(model)
    total, count = 0.0, 0
    for start in range(0, len(blocks) if blocks.size(1) > 1 else 0, batch_size):
        ids = blocks[start:start + batch_size].to(device)
        mask = attention_mask[start:start + batch_size].to(device) if attention_mask is not None else None
        target = _targets(ids, mask)
        # The whole block is fed, the last position too although it predicts nothing: dropping it would
        # save 1/T of the work but makes the matmuls odd-sized, which costs more than that on CPU.
        if fast is not None:
            decoder, head = fast
            hidden = decoder(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
            total += _chunked_head_ce(hidden[:, :-1], head, target)
        else:
            logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, :-1]  # (B, T-1, V)
            total += F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), target.reshape(-1),
                                     ignore_index=-100, reduction="sum").item()
        count += int((target != -100).sum())
    model.train(was_training)
    loss = total / max(count, 1)
    return LossResult(loss, math.exp(loss) if loss < 700 else math.inf, count)
