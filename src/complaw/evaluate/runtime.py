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
    from complaw.models.params import count_parameters

    lin = linear_params(model)
    return RuntimeResult(
        prefill_latency_s=statistics.median(prefill_times),
        decode_tokens_per_s=batch_size * new_tokens / decode_s, decode_uses_cache=uses_cache,
        batch_size=batch_size, seq_len=seq_len, new_tokens=new_tokens, repeats=repeats,
        params=count_parameters(model), linear_params=lin, flops_per_token=2.0 * lin,
        device=describe_device(device),
    )


#: Relative spread (IQR / median) of the per-round speedups above which a paired measurement is ``noisy``.
NOISY_DISPERSION = 0.15


@dataclass(frozen=True)
class PairedRuntime:
    """Base and compressed model timed in alternating rounds (A B, B A, A B, …), so that whatever the machine
    does to one round hits both models of that round alike.

    The speedup is the median over rounds of (base time / compressed time) in that round; ``dispersion`` is
    the IQR of those per-round ratios over their median, and the measurement is ``noisy`` when it exceeds
    ``bound``. ``speedup_min`` = min base time / min compressed time (the least-disturbed runs); on CPU
    ``cpu_speedup`` is the same ratio of process CPU times (what the work costs, whatever the wall clock
    lost to neighbours); ``flop_ideal_speedup`` is the ratio of matmul FLOPs per token."""

    base: RuntimeResult
    compressed: RuntimeResult
    speedup: float
    speedup_min: float
    dispersion: float
    noisy: bool
    bound: float
    rounds: int
    ratios: tuple[float, ...]
    cpu_speedup: float | None
    decode_speedup: float
    flop_ideal_speedup: float
    protocol: str = "interleaved"

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("base"), d.pop("compressed")
        d["ratios"] = list(self.ratios)
        return d


def _quantile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    pos = q * (len(s) - 1)
    lo, hi = int(pos), min(int(pos) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def dispersion(ratios: list[float]) -> float:
    """IQR over median of a list of ratios (0 for fewer than two)."""
    if len(ratios) < 2:
        return 0.0
    return (_quantile(ratios, 0.75) - _quantile(ratios, 0.25)) / statistics.median(ratios)


@torch.inference_mode()
def measure_paired(base, compressed, *, batch_size: int = 1, seq_len: int = 128, new_tokens: int = 32,
                   rounds: int = 7, warmup: int = 2, seed: int = 0, bound: float = NOISY_DISPERSION) -> PairedRuntime:
    """Time ``base`` and ``compressed`` interleaved: ``rounds`` rounds of one prefill each (the order flips every
    round), then decode rounds the same way. See :class:`PairedRuntime`."""
    from complaw.models.params import count_parameters

    models = (base, compressed)
    states = [m.training for m in models]
    for m in models:
        m.eval()
    device = model_device(base)
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, base.config.vocab_size, (batch_size, seq_len), generator=gen).to(device)
    cpu = device.type == "cpu"

    def prefill(m) -> tuple[float, float]:
        _sync(device)
        t, c = time.perf_counter(), time.process_time()
        m(input_ids=ids, use_cache=True)
        _sync(device)
        return time.perf_counter() - t, time.process_time() - c

    for _ in range(warmup):
        for m in models:
            m(input_ids=ids, use_cache=True)
    wall: list[list[float]] = [[], []]
    cput: list[list[float]] = [[], []]
    ratios = []
    for i in range(rounds):
        order = (0, 1) if i % 2 == 0 else (1, 0)
        got = {}
        for j in order:
            got[j] = prefill(models[j])
            wall[j].append(got[j][0])
            cput[j].append(got[j][1])
        ratios.append(got[0][0] / got[1][0])

    cache_kw = [_cache_keyword(m) for m in models]
    uses = [_cache_of(m(input_ids=ids, use_cache=True)) is not None for m in models]

    def decode(j: int) -> float:
        m = models[j]
        out = m(input_ids=ids, use_cache=uses[j])
        past, nxt, seq = _cache_of(out), out.logits[:, -1:].argmax(-1), ids
        _sync(device)
        t = time.perf_counter()
        for _ in range(new_tokens):
            if uses[j]:
                out = m(input_ids=nxt, use_cache=True, **{cache_kw[j]: past})
                past = _cache_of(out)
            else:
                seq = torch.cat([seq, nxt], dim=1)
                out = m(input_ids=seq)
            nxt = out.logits[:, -1:].argmax(-1)
        _sync(device)
        return time.perf_counter() - t

    for j in (0, 1):
        decode(j)
    dec: list[list[float]] = [[], []]
    for i in range(max(2, rounds // 2)):
        for j in ((0, 1) if i % 2 == 0 else (1, 0)):
            dec[j].append(decode(j))
    for m, s in zip(models, states, strict=True):
        m.train(s)

    def result(j: int) -> RuntimeResult:
        lin = linear_params(models[j])
        return RuntimeResult(
            prefill_latency_s=statistics.median(wall[j]),
            decode_tokens_per_s=batch_size * new_tokens / statistics.median(dec[j]), decode_uses_cache=uses[j],
            batch_size=batch_size, seq_len=seq_len, new_tokens=new_tokens, repeats=rounds,
            params=count_parameters(models[j]), linear_params=lin, flops_per_token=2.0 * lin,
            device=describe_device(device))

    rb, rc = result(0), result(1)
    disp = dispersion(ratios)
    return PairedRuntime(
        base=rb, compressed=rc, speedup=statistics.median(ratios), speedup_min=min(wall[0]) / min(wall[1]),
        dispersion=disp, noisy=disp > bound, bound=bound, rounds=rounds, ratios=tuple(ratios),
        cpu_speedup=(statistics.median(cput[0]) / statistics.median(cput[1])
                     if cpu and min(cput[1]) > 0 else None),
        decode_speedup=rc.decode_tokens_per_s / rb.decode_tokens_per_s,
        flop_ideal_speedup=rb.flops_per_token / rc.flops_per_token if rc.flops_per_token else float("nan"))


def measure_sequential(base, compressed, *, batch_size: int = 1, seq_len: int = 128, new_tokens: int = 32,
                       rounds: int = 7, warmup: int = 2, seed: int = 0) -> float:
    """The old protocol, for comparison: all of the base model's prefills, then all of the compressed model's;
    returns median(base) / median(compressed)."""
    kw = dict(batch_size=batch_size, seq_len=seq_len, new_tokens=new_tokens, repeats=rounds, warmup=warmup, seed=seed)
    return measure_runtime(base, **kw).prefill_latency_s / measure_runtime(compressed, **kw).prefill_latency_s
