"""Runtime: prefill latency and decode throughput, with warm-up, median of repeats and device sync.

    >>> rt = measure_runtime(model, batch_size=1, seq_len=128, new_tokens=32)
    >>> rt.prefill_latency_s, rt.decode_tokens_per_s
"""

from __future__ import annotations

import inspect
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from complaw.evaluate.intrinsic import model_device


@dataclass(frozen=True)
class RuntimeResult:
    prefill_latency_s: float  # median time of one forward pass over batch_size × seq_len tokens
    decode_tokens_per_s: float  # generated tokens per second (all sequences of the batch) with a KV cache
    decode_uses_cache: bool
    batch_size: int
    seq_len: int
    new_tokens: int
    repeats: int
    params: int
    linear_params: int
    flops_per_token: float  # 2 × linear (matmul) weights: the FLOPs of one token through the projections
    device: str

    def to_dict(self) -> dict:
        return asdict(self)


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads, {os.cpu_count()} cores)"


def linear_params(model: nn.Module) -> int:
    """Weights of all linear layers except the LM head's share with the embedding (counted once)."""
    seen, total = set(), 0
    for m in model.modules():
        if isinstance(m, nn.Linear) and id(m.weight) not in seen:
            seen.add(id(m.weight))
            total += m.weight.numel()
    return total


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _cache_keyword(model) -> str:
    """The forward's KV-cache argument: ``cache`` in recent transformers, ``past_key_values`` before."""
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in params else "past_key_values"


def _cache_of(out):
    cache = getattr(out, "cache", None)
    return cache if cache is not None else getattr(out, "past_key_values", None)


@torch.inference_mode()
def measure_runtime(model, *, batch_size: int = 1, seq_len: int = 128, new_tokens: int = 32, repeats: int = 5,
                    warmup: int = 2, seed: int = 0) -> RuntimeResult:
    """Median prefill latency and decode tokens/s of ``model`` on random token ids."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    gen = torch.Generator().manual_seed(seed)
    vocab = model.config.vocab_size
    ids = torch.randint(0, vocab, (batch_size, seq_len), generator=gen).to(device)

    def prefill():
        return model(input_ids=ids, use_cache=True)

    def timed(fn) -> float:
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        return time.perf_counter() - t

    for _ in range(warmup):
        prefill()
    prefill_times = [timed(prefill) for _ in range(repeats)]

    cache_kw = _cache_keyword(model)
    uses_cache = _cache_of(prefill()) is not None

    def decode() -> float:
        """Seconds of ``new_tokens`` decode steps after an untimed prefill of the prompt."""
        out = model(input_ids=ids, use_cache=uses_cache)
        past, nxt = _cache_of(out), out.logits[:, -1:].argmax(-1)
        seq = ids
        _sync(device)
        t = time.perf_counter()
        for _ in range(new_tokens):
            if uses_cache:
                out = model(input_ids=nxt, use_cache=True, **{cache_kw: past})
                past = _cache_of(out)
            else:  # no KV cache: recompute the whole prefix
                seq = torch.cat([seq, nxt], dim=1)
                out = model(input_ids=seq)
            nxt = out.logits[:, -1:].argmax(-1)
        _sync(device)
        return time.perf_counter() - t

    for _ in range(max(1, warmup)):  # decode has its own one-time costs (single-token kernels, cache growth)
        decode()
    # The decode steps alone are timed (not "prefill + decode minus a median prefill", which goes negative
    # when the prefill timings are noisy).
    decode_times = [decode() for _ in range(max(1, repeats // 2))]
    model.train(was_training)
    decode_s = statistics.median(decode_times)
    from complaw.compress.registry import count_parameters

    lin = linear_params(model)
    return RuntimeResult(
        prefill_latency_s=statistics.median(prefill_times),
        decode_tokens_per_s=batch_size * new_tokens / decode_s, decode_uses_cache=uses_cache,
        batch_size=batch_size, seq_len=seq_len, new_tokens=new_tokens, repeats=repeats,
        params=count_parameters(model), linear_params=lin, flops_per_token=2.0 * lin,
        device=describe_device(device),
    )
