"""Intrinsic evaluation: token-weighted mean cross-entropy (and perplexity) on a fixed test set.

    >>> blocks = token_blocks(load_texts("zoo:test"), tokenizer, seq_len=128, max_blocks=64)
    >>> lm_loss(model, blocks).loss
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F


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


@torch.inference_mode()
def lm_loss(model, blocks: torch.Tensor, *, batch_size: int = 8, attention_mask: torch.Tensor | None = None
            ) -> LossResult:
    """Mean next-token cross-entropy over all predicted tokens of ``blocks`` (n, T).

    Each block predicts its tokens 2…T from the ones before; positions where ``attention_mask`` is 0
    (padding) neither predict nor are predicted. The mean is weighted by tokens, not by batch, and the
    logits are upcast to float32 before the softmax.
    """
    was_training = model.training
    model.eval()
    device = model_device(model)
    total, count = 0.0, 0
    for start in range(0, len(blocks), batch_size):
        ids = blocks[start:start + batch_size].to(device)
        mask = attention_mask[start:start + batch_size].to(device) if attention_mask is not None else None
        logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits  # (B, T, V)
        # Position t predicts token t+1; the last position predicts nothing. Shifting the targets rather
        # than slicing the logits avoids copying the (B, T, V) tensor.
        target = ids.roll(-1, dims=1)
        target[:, -1] = -100
        if mask is not None:
            target = target.masked_fill(mask.roll(-1, dims=1) == 0, -100)
        total += F.cross_entropy(logits.view(-1, logits.size(-1)).float(), target.view(-1), ignore_index=-100,
                                 reduction="sum").item()
        count += int((target != -100).sum())
    model.train(was_training)
    loss = total / max(count, 1)
    return LossResult(loss, math.exp(loss) if loss < 700 else math.inf, count)
