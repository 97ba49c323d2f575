"""Recovery fine-tuning (RFT): LoRA via peft over exactly D samples, merged back into the model.

One *sample* is one block of ``seq_len`` tokens of the recovery dataset; the D samples are the first D
of a seeded permutation of the dataset's blocks, so a smaller D is a subset of a larger one. One epoch,
AdamW on the LoRA weights, linear warm-up then cosine decay, deterministic for a seed. D = 0 is a no-op.

    >>> cfg = RFTConfig(rft_samples=64, seq_len=128, dataset="zoo:rft")
    >>> model, record = recover(model, tokenizer, cfg)
    >>> record.tokens, record.final_loss
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from complaw import callable_module
from complaw.errors import ComplawError
from complaw.evaluate.intrinsic import causal_lm_loss, model_device
from complaw.textdata import load_texts, token_blocks


class RFTConfig(BaseModel):
    """Settings of one recovery fine-tuning run (saved with every result)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)

    # Old names (records and specs written before #16) are read as the new ones.
    rft_samples: int = Field(0, ge=0, validation_alias=AliasChoices("rft_samples", "samples"),
                             description="D: number of recovery samples (blocks of seq_len tokens); 0 = no RFT")
    seq_len: int = Field(128, ge=2, description="Tokens per sample")
    dataset: str = Field("zoo:rft", description="Recovery data: zoo split, local .txt/.jsonl, or HF dataset id")
    split: str = Field("train", description="Split of a Hugging Face dataset")
    text_field: str = Field("text", description="Field holding the text in JSON/JSONL/HF datasets")
    rank: int = Field(16, ge=1, description="LoRA rank (the paper: 16)")
    alpha: float = Field(32.0, gt=0, description="LoRA alpha (scaling = alpha / rank)")
    dropout: float = Field(0.05, ge=0, lt=1, description="LoRA dropout")
    target_modules: str | list[str] = Field("all-linear", description="peft target modules ('all-linear' = every linear but the head)")
    lr: float = Field(1e-3, gt=0, description="Peak learning rate of AdamW")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    batch_size: int = Field(8, ge=1, description="Samples per optimiser step")
    warmup_fraction: float = Field(0.1, ge=0, lt=1, validation_alias=AliasChoices("warmup_fraction", "warmup"),
                                   description="Fraction of the steps with a linear warm-up (0.1: the first 10%)")
    epochs: int = Field(1, ge=1, description="Passes over the D samples (the paper: 1)")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping (before the step)")
    seed: int = Field(0, description="Seed of the sample choice, LoRA init, dropout and order")


@dataclass
class RFTRecord:
    rft_samples: int
    tokens: int
    steps: int
    seq_len: int
    dataset: str
    final_loss: float | None
    loss_curve: list[float] = field(default_factory=list)
    trainable_params: int = 0
    wall_time_s: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def recovery_blocks(tokenizer, cfg: RFTConfig) -> torch.Tensor:
    """The D samples of ``cfg``: the first D blocks of a seeded permutation of the dataset's blocks."""
    blocks = token_blocks(load_texts(cfg.dataset, split=cfg.split, text_field=cfg.text_field), tokenizer,
                          cfg.seq_len)
    _check_held(cfg, len(blocks))
    order = np.random.default_rng(cfg.seed).permutation(len(blocks))[: cfg.rft_samples]
    return blocks[torch.from_numpy(order)]


def check_recovery_data(tokenizer, cfg: RFTConfig) -> None:
    """The dataset holds ``cfg.rft_samples`` samples of ``seq_len`` tokens — checked before anything is compressed,
    tokenising at most D samples' worth of text (recovery reads it anyway)."""
    if cfg.rft_samples:
        texts = load_texts(cfg.dataset, split=cfg.split, text_field=cfg.text_field)
        _check_held(cfg, len(token_blocks(texts, tokenizer, cfg.seq_len, cfg.rft_samples)))


def _check_held(cfg: RFTConfig, held: int) -> None:
    if cfg.rft_samples > held:
        raise ComplawError(f"rft samples {cfg.rft_samples}: dataset {cfg.dataset!r} holds only {held} samples of "
                           f"{cfg.seq_len} tokens; lower D (rft_samples) or the sequence length")


@contextlib.contextmanager
def activation_checkpointing(model):
    """Recompute each decoder layer's activations in the backward pass instead of keeping them all.

    Backpropagating through every layer at once would keep ~40 hidden-sized tensors per layer and token
    alive (LoRA's dropout copies, attention, the MLP): 3 GB for 8 x 128 tokens through SmolLM2-135M's 30
    layers, five times the model. Checkpointed, only each layer's input is kept, and one layer's activations
    at a time are rebuilt (one more forward pass per step). The gradients are the same: the recomputation
    replays the same operations with the same dropout masks (torch restores the RNG state). Models without
    HF's switch (``supports_gradient_checkpointing``) train as they are.
    """
    enable = getattr(model, "activation_checkpointing_enable", None) or getattr(model, "gradient_checkpointing_enable", None)
    disable = getattr(model, "activation_checkpointing_disable", None) or getattr(model, "gradient_checkpointing_disable", None)
    if not getattr(model, "supports_gradient_checkpointing", False) or enable is None or disable is None:
        yield False
        return
    with warnings.catch_warnings():  # transformers v5 deprecates the older name
        warnings.simplefilter("ignore", FutureWarning)
        enable({"use_reentrant": False})
    try:
        yield True
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            disable()
        if getattr(model, "_require_grads_hook", None) is not None:  # set by enable(); leave the model as it was
            model.disable_input_require_grads()


def recover(model, tokenizer, cfg: RFTConfig, blocks: torch.Tensor | None = None):
    """LoRA-fine-tune ``model`` on ``cfg.rft_samples`` samples for ``cfg.epochs`` epochs and merge the adapters.

    Args:
        model: a causal LM (compressed or not); modified and returned.
        tokenizer: its tokenizer (to cut the recovery data into samples).
        cfg: the RFT settings.
        blocks: the samples themselves, if already cut (defaults to :func:`recovery_blocks`).

    Returns:
        ``(model, record)``: the merged model and an :class:`RFTRecord`.
    """
    if cfg.rft_samples == 0:
        return model, RFTRecord(0, 0, 0, cfg.seq_len, cfg.dataset, None)
    from peft import LoraConfig, get_peft_model

    start = time.perf_counter()
    blocks = recovery_blocks(tokenizer, cfg) if blocks is None else blocks
    device = model_device(model)
    torch.manual_seed(cfg.seed)
    lora = LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                      target_modules=cfg.target_modules, task_type="CAUSAL_LM")
    with warnings.catch_warnings():  # peft calls a transformers method deprecated in v5
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        peft_model = get_peft_model(model, lora)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    trainable = sum(p.numel() for p in params)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(blocks) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    warm = max(1, int(cfg.warmup_fraction * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm))))
    gen = torch.Generator().manual_seed(cfg.seed)
    curve: list[float] = []
    peft_model.train()
    try:
        with activation_checkpointing(model) as checkpointed:
            # a KV cache is of no use in training, and HF's checkpointing warns about one
            kwargs = {"use_cache": False} if checkpointed else {}
            for _ in range(cfg.epochs):
                order = torch.randperm(len(blocks), generator=gen)
                for i in range(0, len(blocks), cfg.batch_size):
                    ids = blocks[order[i:i + cfg.batch_size]].to(device)
                    loss = causal_lm_loss(model, ids, **kwargs)
                    if not torch.isfinite(loss):
                        raise FloatingPointError(f"RFT loss became {loss.item()} at step {len(curve)}")
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                    opt.step()
                    sched.step()
                    curve.append(float(loss.detach()))
    except BaseException:
        peft_model.unload()  # leave the caller's model as it was, without adapters
        raise
    merged = peft_model.merge_and_unload()
    merged.eval()
    record = RFTRecord(int(len(blocks)), int(blocks.numel()), len(curve), cfg.seq_len, cfg.dataset,
                       curve[-1] if curve else None, curve, trainable, time.perf_counter() - start)
    return merged, record


callable_module(__name__, recover)  # complaw.recover(model, tokenizer, cfg) calls recover(), imported or not
