"""lm_loss: the decoder + chunked-head path equals the model's own logits, with and without padding."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from complaw.compress import compress
from complaw.evaluate import intrinsic
from complaw.evaluate.intrinsic import lm_loss
from test_slicegpt import VOCAB, tiny_model, token_ids


def reference_loss(model, ids: torch.Tensor, mask: torch.Tensor) -> tuple[float, int]:
    """Token-weighted CE from full logits: position t counts when it and t+1 are both real tokens."""
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].double()
    valid = (mask[:, 1:] == 1) & (mask[:, :-1] == 1)
    nll = F.cross_entropy(logits.reshape(-1, VOCAB), ids[:, 1:].reshape(-1), reduction="none")
    return float(nll[valid.reshape(-1)].sum() / valid.sum()), int(valid.sum())


@pytest.fixture
def generic(monkeypatch):
    """Force the generic path (model(...).logits) for comparison."""
    def run(*args, **kw):
        with monkeypatch.context() as m:
            m.setattr(intrinsic, "_decoder_and_head", lambda model: None)
            return lm_loss(*args, **kw)
    return run


def tiny_gemma3():
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    return Gemma3ForCausalLM(Gemma3TextConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, sliding_window=8, max_position_embeddings=64,
        layer_types=["sliding_attention", "full_attention"])).eval()


@pytest.mark.parametrize("family", ["llama", "qwen2", "sliced", "gemma3_text"])
def test_fast_path_matches_logits(family, generic):
    if family == "sliced":
        model, _ = compress(tiny_model("llama"), "slicegpt", 0.25, calibration=token_ids(8, 32, 3))
    elif family == "gemma3_text":  # scaled embeddings, sliding windows shorter than the blocks
        model = tiny_gemma3()
    else:
        model = tiny_model(family)
    assert intrinsic._decoder_and_head(model) is not None
    ids = token_ids(6, 24, 1)
    right = torch.ones_like(ids)
    right[:2, 15:] = 0  # right padding
    left = torch.ones_like(ids)
    left[2:4, :7] = 0  # left padding: a pad position must not predict the first real token
    for mask in (None, right, left):
        fast = lm_loss(model, ids, batch_size=4, attention_mask=mask)
        slow = generic(model, ids, batch_size=4, attention_mask=mask)
        assert fast.tokens == slow.tokens
        assert fast.loss == pytest.approx(slow.loss, rel=1e-5)
        ref, count = reference_loss(model, ids, mask if mask is not None else torch.ones_like(ids))
        assert fast.tokens == count and fast.loss == pytest.approx(ref, rel=1e-5)
    assert lm_loss(model, ids, attention_mask=left).tokens == 6 * 23 - 2 * 7


def test_chunking_over_many_rows_matches_one_pass(monkeypatch):
    """More rows than one chunk: the summed CE over chunks equals the CE of the full logits."""
    model = tiny_model("llama")
    ids = token_ids(4, 64, 2)  # 252 rows, chunk forced to 64 rows below
    one = lm_loss(model, ids, batch_size=4)
    monkeypatch.setattr(intrinsic, "_chunked_head_ce", _small_chunks(intrinsic._chunked_head_ce))
    assert lm_loss(model, ids, batch_size=4).loss == pytest.approx(one.loss, rel=1e-6)
    assert _small_chunks.calls > 1


def _small_chunks(fn):
    def wrapped(hidden, head, target):
        total = 0.0
        rows = hidden.reshape(-1, hidden.size(-1)), target.reshape(-1)
        for i in range(0, len(rows[1]), 64):
            _small_chunks.calls += 1
            total += fn(rows[0][i:i + 64], head, rows[1][i:i + 64])
        return total
    _small_chunks.calls = 0
    return wrapped


def test_other_models_take_the_generic_path():
    model = tiny_model("llama")
    model.config.logits_scaling = 2.0  # a logit transform the fast path would miss
    assert intrinsic._decoder_and_head(model) is None
    peft = pytest.importorskip("peft")
    wrapped = peft.get_peft_model(tiny_model("llama"), peft.LoraConfig(r=2, target_modules=["q_proj"]))
    assert intrinsic._decoder_and_head(wrapped) is None
    ids = token_ids(2, 16, 4)
    assert lm_loss(wrapped, ids).loss == pytest.approx(lm_loss(tiny_model("llama"), ids).loss, rel=1e-6)


def test_nothing_to_predict():
    model = tiny_model("llama")
    assert lm_loss(model, token_ids(3, 1, 0)).tokens == 0
    ids = token_ids(4, 8, 0)
    mask = torch.ones_like(ids)
    mask[:2] = 0  # the first batch is all padding
    result = lm_loss(model, ids, batch_size=2, attention_mask=mask)
    assert result.tokens == 2 * 7 and math.isfinite(result.loss)
