"""PruneNet: calibration-free FFN pruning with a learned, ratio-independent row scorer.

Sengupta et al., ICLR 2025 (SPEC §3.1). A small policy scores every row of a layer's ``gate_proj``
weight ``W`` (n×d) with a keep probability ``α = sigmoid((W·Aᵀ + b)·u)``; one policy (A: n×d, b: n,
u: n) is shared by all layers. It is trained with REINFORCE, with no data at all: the reward for a
layer is ``1 / KS``, KS being the two-sample Kolmogorov–Smirnov statistic between the singular values
of the original and of the pruned ``gate_proj``. The kept index set is then applied to the rows of
``gate_proj`` and ``up_proj`` and the columns of ``down_proj`` of that layer (attention untouched), so
the result is a standard checkpoint with ``intermediate_size = k`` (see :mod:`complaw.compress.ffn`).

"You only prune once": the scores do not depend on the ratio, so one trained policy prunes at any
ratio. Train once, prune many times::

    >>> policy = train_policy(model, PruneNetConfig(episodes=20))    # or get_policy(): cached by model
    >>> policy.save("llama-m.prunenet.safetensors")
    >>> for r in (0.1, 0.3, 0.5):
    ...     pruned, record = compress(copy.deepcopy(model), "prunenet", r, policy=policy)

Through the registry (``compress(model, "prunenet", 0.3)``) the policy is computed once per model:
trained on first use and cached in memory and on disk (``$COMPLAW_CACHE/prunenet``, safetensors, keyed by
a fingerprint of the model's gate weights and the training settings), so later commands and sweep units
reuse it; ``complaw policy list`` / ``complaw policy clear`` show and empty that cache. Pass
``policy="file.safetensors"`` to keep a policy somewhere of your own.

Differences from the reference code (SPEC §3.1 pitfalls), on purpose: the family comes from
``config.model_type`` via the adapters; gradients are clipped *before* the optimiser step; singular
values are computed in fp32 whatever the model's dtype, values only, once for the originals; the
policy runs on whatever device the model is on; the pruned model's config is rewritten so it reloads;
nothing is swallowed by a bare ``except``. One deliberate change of the policy's *input* (``|W|``
instead of ``W``, same network; ``features="signed"`` restores the paper's) is explained at
:class:`PruneNetConfig`.

Selection: ``selection="sample"`` (default, the paper's) draws rows with noise; because the plain
REINFORCE loss pushes every kept row up, the trained keep probabilities end up close to 1 and the draw is
then close to uniform. ``selection="topk"`` keeps the highest-scoring rows and is where the learned
scores show.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from complaw.checks import Bound
from complaw.compress.ffn import ffn_size, kept_rows, slice_ffn_rows, topk_indices
from complaw.compress.registry import ROUND_TO, register_method
from complaw.errors import ComplawError, require
from complaw.models.adapters import get_adapter
from complaw.models.params import tensor_fingerprint

SELECTIONS = ("sample", "topk")
FEATURES = ("abs", "signed")
ADVANTAGES = ("reward", "baseline", "normalized")


@dataclass(frozen=True)
class PruneNetConfig:
    """How a PruneNet policy is trained (saved with the policy; part of its cache key).

    Attributes:
        episodes: REINFORCE episodes; one episode is one pass over all layers (paper: ~10–20).
        lr: AdamW learning rate (paper range 1e-4…1e-3).
        weight_decay: AdamW weight decay.
        train_ratio: the ratio at which k rows are sampled *during training*. The policy's scores do not
            depend on it — only the number of rows drawn per step does — so a policy trained at 0.5 prunes
            at any ratio. 0.5 sits in the middle of the 0.1…0.9 sweep: the reward sees both which rows
            are kept and which are dropped in equal measure.
        discount: reward of layer ``l`` is scaled by ``discount ** l``.
        temperature: temperature of the relaxed-Bernoulli noise on the keep probabilities.
        grad_clip: max gradient norm, applied before each optimiser step.
        advantage: what multiplies ``Σ log α`` in the loss. ``"reward"`` (default, the paper's): the plain
            reward ``R``. It is always positive, so every kept row is pushed up; on real models the keep
            probabilities saturate at 1 within a few episodes and the sampled selection becomes uniform
            (SmolLM2-135M: all α = 1.0 on layer 0). ``"baseline"``: ``R`` minus a running per-layer mean
            (classic variance reduction; on tiny models its zero-advantage first episode often stays the
            "best" one). ``"normalized"``: ``draws`` draws per layer, each weighted by its reward
            standardised over that layer's draws (a group baseline: rows of better-than-average draws go up,
            the others down) — the estimator that actually climbs the KS reward on a real model. None of
            the three changes what is optimised (the expected discounted ``1/KS``), only how its gradient
            is estimated.
        draws: row sets drawn per layer per episode (the paper: 1; ``advantage="normalized"`` needs ≥ 2).
        entropy: weight of a bonus on the mean Bernoulli entropy of α (0: off, the paper's). Keeps the
            keep probabilities away from 0 and 1.
        features: what the policy reads. ``"signed"``: the gate weights themselves, the paper's
            ``α = sigmoid((W·Aᵀ + b)·u)``. ``"abs"`` (default): the same network on ``|W|``. Why: the
            network is linear in its input (``(W·Aᵀ + b)·u = W·(Aᵀu) + b·u``), so on signed weights it
            can only rank rows by their projection on one direction ``v = Aᵀu`` — it cannot express a
            row's size, and its top rows all read the same input direction, so pruning by it removes a
            coherent input subspace. Measured on the zoo models this is *worse* than random slicing;
            on ``|W|`` the same linear scorer can learn a (weighted L1) row norm, which the KS reward
            rewards and which preserves loss far better (BENCHMARKS.md, "Compression").
        seed: seeds the policy's initialisation and all training noise.
        patience: stop after this many episodes without a new best episode reward (0: off, always run
            ``episodes``, the paper's protocol). What is optimised is unchanged; only the episode count is.
    """

    episodes: int = 20
    lr: float = 1e-3
    weight_decay: float = 0.01
    train_ratio: float = 0.5
    discount: float = 0.99
    temperature: float = 1.0
    grad_clip: float = 1.0
    advantage: str = "reward"
    draws: int = 1
    entropy: float = 0.0
    features: str = "abs"
    seed: int = 0
    patience: int = 0

    def __post_init__(self) -> None:
        require(int(self.episodes) >= 1, f"episodes={self.episodes}: must be at least 1, e.g. 20")
        require(self.lr > 0, f"lr={self.lr}: must be positive, e.g. 1e-3")
        require(0.0 < self.train_ratio < 1.0, f"train_ratio={self.train_ratio}: must lie in (0, 1), e.g. 0.5")
        require(0.0 < self.discount <= 1.0, f"discount={self.discount}: must lie in (0, 1], e.g. 0.99")
        require(self.temperature > 0, f"temperature={self.temperature}: must be positive, e.g. 1.0")
        require(self.grad_clip > 0, f"grad_clip={self.grad_clip}: must be positive, e.g. 1.0")
        require(self.features in FEATURES, f"features={self.features!r}: must be one of {', '.join(FEATURES)}")
        require(self.advantage in ADVANTAGES,
                f"advantage={self.advantage!r}: must be one of {', '.join(ADVANTAGES)}")
        require(1 <= int(self.draws) <= 64, f"draws={self.draws}: must lie in 1…64, e.g. 4")
        require(self.advantage != "normalized" or int(self.draws) >= 2,
                f"advantage='normalized' with draws={self.draws}: standardising needs at least 2 draws "
                "per layer, e.g. draws=4")
        require(math.isfinite(self.entropy) and self.entropy >= 0,
                f"entropy={self.entropy}: must be a finite number >= 0 (0 turns the bonus off)")
        require(int(self.patience) >= 0, f"patience={self.patience}: must be >= 0 (0 turns the early stop off)")


@dataclass
class TrainingHistory:
    """What training did: per-episode total (discounted) reward, the best episode, wall time."""

    episode_rewards: list[float] = field(default_factory=list)
    best_episode: int = -1
    wall_time_s: float = 0.0


# --------------------------------------------------------------------------------------------------
# Spectra and the KS reward
# --------------------------------------------------------------------------------------------------
def singular_values(weight: torch.Tensor) -> torch.Tensor:
    """Singular values (values only, descending) of ``weight`` — never an SVD in bf16/fp16.

    On accelerators: ``svdvals`` in fp32. On the CPU: square roots of the eigenvalues of the smaller
    Gram matrix in fp64, which gives the same values (to ~1e-7 relative for all but the tiniest) 2–5×
    faster than LAPACK's SVD on an (n×d, n > d) gate matrix.
    """
    w = weight.detach()
    if w.device.type != "cpu":
        return torch.linalg.svdvals(w.float())
    w = w.double()
    gram = w.t() @ w if w.shape[0] >= w.shape[1] else w @ w.t()
    return torch.linalg.eigvalsh(gram).clamp_min(0).sqrt().flip(0).float()


def ks_statistic(a: torch.Tensor, b: torch.Tensor) -> float:
    """Two-sample Kolmogorov–Smirnov statistic ``sup_x |F_a(x) − F_b(x)|`` (same value as scipy's ks_2samp)."""
    a = torch.sort(a.detach().double().flatten()).values
    b = torch.sort(b.detach().double().flatten()).values
    points = torch.cat([a, b])
    cdf_a = torch.searchsorted(a, points, right=True).double() / a.numel()
    cdf_b = torch.searchsorted(b, points, right=True).double() / b.numel()
    return float((cdf_a - cdf_b).abs().max())


def spectrum_ks(weight: torch.Tensor, kept: torch.Tensor, original_sv: torch.Tensor | None = None) -> float:
    """KS distance between the singular values of ``weight`` and of ``weight[kept]``."""
    sv = singular_values(weight) if original_sv is None else original_sv
    return ks_statistic(sv, singular_values(weight[kept.to(weight.device)]))


def _reward(ks: float) -> float:
    # 1/KS as in the reference code; the floor keeps an identical spectrum (KS = 0) finite.
    return 1.0 / max(ks, 1e-4)


# --------------------------------------------------------------------------------------------------
# The policy
# --------------------------------------------------------------------------------------------------
class PruneNetPolicy(nn.Module):
    """Row scorer ``α = sigmoid((W·Aᵀ + b)·u)`` shared by all layers of one model shape (n rows, d columns).

    ``(W·Aᵀ + b)·u`` equals ``W·(Aᵀu) + b·u``, which is what :meth:`logits` computes: O(n·d) instead of
    the O(n²·d) of materialising ``W·Aᵀ`` (n×n), with the same parameters and the same gradients.

    Args:
        n: rows of ``gate_proj`` (the intermediate size).
        d: columns of ``gate_proj`` (the hidden size).
        seed: seeds the initialisation (``nn.Linear``'s uniform ±1/√fan_in scheme).
    """

    def __init__(self, n: int, d: int, *, seed: int = 0, features: str = "abs") -> None:
        super().__init__()
        require(features in FEATURES, f"features={features!r}: must be one of {', '.join(FEATURES)}")
        self.features = features
        generator = torch.Generator().manual_seed(int(seed))
        bound_d, bound_n = 1.0 / math.sqrt(d), 1.0 / math.sqrt(n)
        self.A = nn.Parameter((torch.rand(n, d, generator=generator) * 2 - 1) * bound_d)
        self.b = nn.Parameter((torch.rand(n, generator=generator) * 2 - 1) * bound_d)
        self.u = nn.Parameter((torch.rand(n, generator=generator) * 2 - 1) * bound_n)
        self.config: PruneNetConfig | None = None
        self.fingerprint: str = ""
        self.history = TrainingHistory()

    def __repr__(self) -> str:  # short: it lands in compression records' options
        n, d = self.shape
        return f"PruneNetPolicy(n={n}, d={d}, features={self.features!r}, fingerprint={self.fingerprint!r})"

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.A.shape)  # type: ignore[return-value]

    def logits(self, weight: torch.Tensor) -> torch.Tensor:
        """Keep logits ``(W·Aᵀ + b)·u`` of the rows of ``weight`` (n×d, any dtype) — shape ``(n,)``, fp32."""
        require(
            tuple(weight.shape) == self.shape,
            f"gate weight of shape {tuple(weight.shape)}: this PruneNet policy was built for {self.shape}",
        )
        w = weight.detach().to(device=self.A.device, dtype=torch.float32)
        if self.features == "abs":
            w = w.abs()
        w = w / w.pow(2).mean().sqrt().clamp_min(1e-12)  # unit-RMS input: logits O(1) at any init scale
        return w @ (self.A.t() @ self.u) + self.b @ self.u

    def keep_probs(self, weight: torch.Tensor) -> torch.Tensor:
        """Keep probabilities α of the rows of ``weight``: the ratio-independent scores."""
        return torch.sigmoid(self.logits(weight))

    @torch.no_grad()
    def select(self, weight: torch.Tensor, k: int, *, selection: str = "sample",
               generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
        """Indices (sorted, on CPU) of the ``k`` rows of ``weight`` to keep.

        ``selection="sample"`` is the paper's: relaxed-Bernoulli noise on α, then ``k`` rows drawn
        without replacement in proportion to the noisy probabilities (seeded by ``generator``).
        ``selection="topk"`` keeps the ``k`` rows with the largest α (deterministic).
        """
        logits = self.logits(weight).cpu()
        if selection == "topk":
            return topk_indices(logits, k)
        require(selection == "sample", f"selection={selection!r}: must be one of {', '.join(SELECTIONS)}")
        return _sample_rows(logits, k, generator, temperature)

    # --- persistence ------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the policy (safetensors) with its training config, model fingerprint and history."""
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "format": "complaw.prunenet-policy/1",
            "config": json.dumps(asdict(self.config) if self.config else None),
            "fingerprint": self.fingerprint,
            "features": self.features,
            "history": json.dumps(asdict(self.history)),
        }
        tensors = {name: p.detach().cpu().contiguous() for name, p in self.named_parameters()}
        save_file(tensors, str(path), metadata=meta)
        return path

    @classmethod
    def load(cls, path: str | Path, *, device: torch.device | str | None = None) -> PruneNetPolicy:
        """Read a policy written by :meth:`save`."""
        from safetensors import SafetensorError, safe_open

        path = Path(path)
        require(path.is_file(), f"policy {str(path)!r}: no such file; train one with train_policy() or omit policy=")
        not_policy = f"policy {str(path)!r}: not a complaw PruneNet policy file"
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                tensors = {name: f.get_tensor(name) for name in f.keys()}
        except OSError as err:
            raise ComplawError(f"policy {str(path)!r}: cannot be read ({err.strerror or err})") from None
        except SafetensorError as err:
            raise ComplawError(f"{not_policy} (not a complete safetensors file: {str(err)[:120]}); give one "
                               "written by PruneNetPolicy.save, or omit policy=") from None
        require(meta.get("format") == "complaw.prunenet-policy/1" and {"A", "b", "u"} <= set(tensors), not_policy)
        try:
            n, d = tensors["A"].shape
            policy = cls(n, d, features=meta.get("features", "abs"))
            policy.load_state_dict(tensors)
            config = json.loads(meta.get("config") or "null")
            if config and "baseline" in config:  # files written before `advantage` replaced `baseline`
                config["advantage"] = "baseline" if config.pop("baseline") else "reward"
            policy.config = PruneNetConfig(**config) if config else None
            policy.fingerprint = meta.get("fingerprint", "")
            policy.history = TrainingHistory(**json.loads(meta.get("history") or "{}"))
        except ComplawError:
            raise
        except (ValueError, TypeError, RuntimeError, AttributeError) as err:  # damaged tensors or metadata
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:120]
            raise ComplawError(f"{not_policy} (damaged: {first})") from None
        return policy.to(device) if device is not None else policy


def _sample_rows(logits: torch.Tensor, k: int, generator: torch.Generator | None,
                 temperature: float) -> torch.Tensor:
    """Relaxed-Bernoulli noise on sigmoid(logits), then ``k`` rows without replacement ∝ the noisy values.

    A relaxed-Bernoulli sample with temperature T is ``sigmoid((logit + log U − log(1 − U)) / T)``,
    U ~ Uniform(0, 1); drawn on the CPU so a seed gives the same rows on every device.
    """
    uniform = torch.rand(logits.shape, generator=generator, dtype=torch.float64).clamp_(1e-12, 1 - 1e-12)
    noise = torch.log(uniform) - torch.log1p(-uniform)
    noisy = torch.sigmoid((logits.detach().double().cpu() + noise) / temperature)
    noisy = noisy.clamp_min(1e-30)  # multinomial needs k strictly positive weights
    picked = torch.multinomial(noisy, k, replacement=False, generator=generator)
    return torch.sort(picked).values


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------
def gate_weights(model: nn.Module) -> list[torch.Tensor]:
    """The ``gate_proj`` weight of every layer (views, no copy)."""
    adapter = get_adapter(model)
    return [adapter.mlp_linears(layer)[0].weight for layer in adapter.layers_of(model)]


@torch.no_grad()
def model_fingerprint(model: nn.Module) -> str:
    """A short hash identifying a model's gate weights (the only input PruneNet looks at)."""
    return tensor_fingerprint(gate_weights(model), salt=str(getattr(model.config, "model_type", "")))


def _advantages(kind: str, rewards: torch.Tensor, baselines: list[float | None], layer_index: int) -> torch.Tensor:
    """The weight of each draw's ``Σ log α`` in the loss (see ``PruneNetConfig.advantage``)."""
    if kind == "normalized":
        return (rewards - rewards.mean()) / (rewards.std() + 1e-8)
    if kind == "baseline":
        base = baselines[layer_index]
        mean = float(rewards.mean())
        baselines[layer_index] = mean if base is None else 0.9 * base + 0.1 * mean
        return rewards - (base if base is not None else mean)
    return rewards


def train_policy(model: nn.Module, config: PruneNetConfig | None = None) -> PruneNetPolicy:
    """Train a PruneNet policy on ``model``'s gate matrices (REINFORCE, no data).

    One episode is a pass over the layers. For layer ``l``: score the rows of its gate matrix, draw
    ``k = floor((1 − train_ratio)·n)`` rows (relaxed-Bernoulli noise, sampling without replacement),
    reward ``R_l = discount^l / KS(σ(W_l), σ(W_l[kept]))``, loss ``−A_l · Σ_kept log α`` with the advantage
    ``A_l = R_l`` (the paper's; see ``advantage`` and ``draws`` in :class:`PruneNetConfig` for the
    alternatives), one AdamW step with the gradient norm clipped first. The policy state after the episode with the
    highest total reward is the one returned.

    Args:
        model: causal LM of a supported family (read only; it may be on any device, in any dtype).
        config: training settings (defaults: :class:`PruneNetConfig`).

    Returns:
        The trained :class:`PruneNetPolicy`, on the model's device, with ``config``, ``fingerprint`` and
        ``history`` filled in.
    """
    config = config or PruneNetConfig()
    start = time.perf_counter()
    gates = gate_weights(model)
    n, d = ffn_size(model), gates[0].shape[1]
    device = gates[0].device
    k = kept_rows(n, config.train_ratio)
    torch.manual_seed(config.seed)  # nothing random should come from the global RNG; belt and braces
    generator = torch.Generator().manual_seed(int(config.seed) + 1)
    policy = PruneNetPolicy(n, d, seed=config.seed, features=config.features).to(device)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    # Singular values of the originals: once, fp32, values only.
    original_sv = [singular_values(w) for w in gates]
    baselines: list[float | None] = [None] * len(gates)  # running means for advantage="baseline"
    history = TrainingHistory()
    best_state, best_reward = None, -math.inf
    for episode in range(int(config.episodes)):
        total = 0.0
        for layer_index, w in enumerate(gates):
            logits = policy.logits(w)
            draws = [_sample_rows(logits, k, generator, config.temperature).to(device)
                     for _ in range(int(config.draws))]
            with torch.no_grad():
                rewards = torch.tensor([config.discount**layer_index
                                        * _reward(ks_statistic(original_sv[layer_index], singular_values(w[kept])))
                                        for kept in draws], dtype=torch.float64)
            total += float(rewards.mean())
            advantages = _advantages(config.advantage, rewards, baselines, layer_index)
            log_keep = torch.nn.functional.logsigmoid(logits)
            loss = -sum(float(a) * log_keep[kept].sum() for a, kept in zip(advantages, draws, strict=True)) / len(draws)
            if config.entropy:
                p = torch.sigmoid(logits)
                bernoulli_entropy = -(p * log_keep + (1 - p) * torch.nn.functional.logsigmoid(-logits)).mean()
                loss = loss - config.entropy * bernoulli_entropy
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), config.grad_clip)  # before the step
            optimizer.step()
        history.episode_rewards.append(total)
        if total > best_reward:
            best_reward, history.best_episode = total, episode
            best_state = {name: t.detach().clone() for name, t in policy.state_dict().items()}
        elif config.patience and episode - history.best_episode >= config.patience:
            break  # early stop: no new best for `patience` episodes
    policy.load_state_dict(best_state)
    policy.requires_grad_(False)
    history.wall_time_s = time.perf_counter() - start
    policy.config, policy.history, policy.fingerprint = config, history, model_fingerprint(model)
    return policy


_POLICY_CACHE: dict[tuple[str, str], PruneNetPolicy] = {}


def _unreadable_errors() -> tuple[type[BaseException], ...]:
    from safetensors import SafetensorError

    return ComplawError, SafetensorError, OSError, ValueError, TypeError, RuntimeError, json.JSONDecodeError


_UNREADABLE = _unreadable_errors()


def policy_cache_dir() -> Path:
    """Where trained policies are kept across processes: ``$COMPLAW_CACHE/prunenet`` (created on demand)."""
    from complaw.cache import cache_dir

    return cache_dir("prunenet")


def _config_key(config: PruneNetConfig) -> str:
    return json.dumps(asdict(config), sort_keys=True)


def policy_cache_path(fingerprint: str, config: PruneNetConfig) -> Path:
    """The cache file of the policy for a model fingerprint under ``config``: ``FINGERPRINT-CONFIGHASH.safetensors``."""
    import hashlib

    digest = hashlib.sha256(_config_key(config).encode()).hexdigest()[:12]
    return policy_cache_dir() / f"{fingerprint}-{digest}.safetensors"


def get_policy(model: nn.Module, config: PruneNetConfig | None = None, *, disk: bool = True) -> tuple[PruneNetPolicy, str]:
    """The policy for ``model`` under ``config``, computed once per model and settings.

    Looked up in memory, then (``disk=True``) in :func:`policy_cache_dir` — a safetensors file keyed by the
    fingerprint of the model's gate weights and the training settings — and trained (then written there)
    only when neither has it.

    Returns:
        ``(policy, source)`` with ``source`` one of ``"memory"``, ``"disk"``, ``"trained"``.
    """
    config = config or PruneNetConfig()
    fingerprint = model_fingerprint(model)
    key = (fingerprint, _config_key(config))
    if key in _POLICY_CACHE:
        return _POLICY_CACHE[key], "memory"
    path = policy_cache_path(fingerprint, config) if disk else None
    if path is not None and path.is_file():
        try:
            policy = PruneNetPolicy.load(path, device=gate_weights(model)[0].device)
        except _UNREADABLE:  # a torn or foreign cache file is retrained and replaced, never trusted
            policy = None
        if policy is not None and policy.fingerprint == fingerprint and policy.config == config:
            _POLICY_CACHE[key] = policy
            return policy, "disk"
    policy = train_policy(model, config)
    _POLICY_CACHE[key] = policy
    if path is not None:
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        policy.save(tmp)
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the new one, never half
    return policy, "trained"


def cached_policies() -> list[dict[str, Any]]:
    """The policies in the disk cache: path, size, model fingerprint, settings, training history."""
    rows = []
    for path in sorted(policy_cache_dir().glob("*.safetensors")):
        try:
            policy = PruneNetPolicy.load(path)
        except _UNREADABLE:
            rows.append({"path": str(path), "bytes": path.stat().st_size, "fingerprint": "?", "error": "unreadable"})
            continue
        n, d = policy.shape
        rows.append({"path": str(path), "bytes": path.stat().st_size, "fingerprint": policy.fingerprint,
                     "shape": [n, d], "config": asdict(policy.config) if policy.config else None,
                     "episodes_run": len(policy.history.episode_rewards), "best_episode": policy.history.best_episode,
                     "train_time_s": policy.history.wall_time_s})
    return rows


def clear_policy_cache(*, disk: bool = False) -> int:
    """Forget the in-memory policies; with ``disk=True`` also delete the cached files. Returns files deleted."""
    _POLICY_CACHE.clear()
    if not disk:
        return 0
    files = list(policy_cache_dir().glob("*.safetensors"))
    for path in files:
        path.unlink(missing_ok=True)
    return len(files)


# --------------------------------------------------------------------------------------------------
# Pruning
# --------------------------------------------------------------------------------------------------
def prune_with_policy(model: nn.Module, policy: PruneNetPolicy, ratio: float, *, selection: str = "sample",
                      seed: int = 0, round_to: int = 1) -> tuple[nn.Module, list[torch.Tensor]]:
    """Prune every layer's FFN to ``k = floor((1 − ratio)·n)`` rows chosen by ``policy`` (in place).

    Returns:
        ``(model, kept)`` with ``kept[l]`` the sorted kept row indices of layer ``l``.
    """
    require(selection in SELECTIONS, f"selection={selection!r}: must be one of {', '.join(SELECTIONS)}")
    n = ffn_size(model)
    k = kept_rows(n, ratio, round_to)
    gates = gate_weights(model)
    if k == n:
        return model, [torch.arange(n) for _ in gates]
    generator = torch.Generator().manual_seed(int(seed))
    temperature = policy.config.temperature if policy.config else 1.0
    kept = [policy.select(w, k, selection=selection, generator=generator, temperature=temperature) for w in gates]
    slice_ffn_rows(model, kept)
    return model, kept


def check_policy_file(policy: str | Path) -> Path:
    """Check a ``policy=`` path before any work: an existing one must be a readable file (it is loaded),
    a new one must be writable (the trained policy is written there). Returns the path."""
    from complaw.checks import input_file, output_path

    path = Path(policy).expanduser()
    if not path.exists():
        return output_path(path, "policy")
    input_file(path, "policy")
    from safetensors import SafetensorError, safe_open

    try:  # the header only: a foreign or torn file is named before the model is loaded
        with safe_open(str(path), framework="pt") as f:
            fmt = (f.metadata() or {}).get("format")
    except (SafetensorError, OSError) as err:
        raise ComplawError(f"policy {str(path)!r}: not a complaw PruneNet policy file (not a complete safetensors "
                           f"file: {str(err)[:120]}); give one written by PruneNetPolicy.save, or omit policy=") from None
    require(fmt == "complaw.prunenet-policy/1", f"policy {str(path)!r}: not a complaw PruneNet policy file")
    return path


def _resolve_policy(model: nn.Module, policy: Any, config: PruneNetConfig,
                    cache: bool) -> tuple[PruneNetPolicy, str, str | None]:
    """(policy, source, path) from the ``policy=`` option: None, a PruneNetPolicy, or a file path.

    ``source`` is ``"given"``, ``"file"``, ``"memory"``, ``"disk"`` (complaw's policy cache) or ``"trained"``.
    """
    if isinstance(policy, PruneNetPolicy):
        return policy, "given", None
    if policy is None:
        found, source = get_policy(model, config, disk=cache)
        return found, source, None
    if isinstance(policy, (str, Path)):
        path = check_policy_file(policy)
        if path.exists():
            return PruneNetPolicy.load(path), "file", str(path)
        trained_policy, source = get_policy(model, config, disk=cache)
        trained_policy.save(path)
        return trained_policy, source, str(path)
    raise ComplawError(f"policy={policy!r}: give a PruneNetPolicy, a .safetensors path, or nothing")


def _check_options(o) -> None:
    """The prunenet options checked before any work: the selection, the training settings as
    :class:`PruneNetConfig` checks them (choices, options that go together), and the policy cache it will use."""
    require(o.selection in SELECTIONS, f"selection={o.selection!r}: must be one of {', '.join(SELECTIONS)}")
    PruneNetConfig(episodes=o.episodes, lr=o.lr, train_ratio=o.train_ratio, advantage=o.advantage, draws=o.draws,
                   entropy=o.entropy, temperature=o.temperature, features=o.features, patience=o.patience,
                   weight_decay=o.weight_decay, discount=o.discount, grad_clip=o.grad_clip)
    if o.cache and o.policy is None:  # the policy cache is used: an unusable one is refused before the model loads
        from complaw.cache import cache_root, check_usable

        check_usable(cache_root() / "prunenet")


@register_method(
    "prunenet",
    description="PruneNet (calibration-free): a REINFORCE-trained row scorer with a spectral KS reward "
    "picks the FFN neurons to keep; train once, prune at any ratio.",
    help_from=(PruneNetConfig,),
    bounds={
        "round_to": ROUND_TO,
        "episodes": Bound(1, 1000, "REINFORCE episodes, each a pass over every layer (the paper: 10-20)",
                          integer=True),
        "lr": Bound(0, 1, "AdamW learning rate of the policy (the paper: 1e-4 to 1e-3)", lo_open=True),
        "train_ratio": Bound(0, 1, "the ratio rows are sampled at in training, e.g. 0.5", lo_open=True, hi_open=True),
        "draws": Bound(1, 64, "row sets drawn per layer per episode", integer=True),
        "entropy": Bound(0, 100, "weight of the entropy bonus (0: off)"),
        "temperature": Bound(0, 100, "temperature of the relaxed-Bernoulli noise, e.g. 1", lo_open=True),
        "patience": Bound(0, 1000, "episodes without a better reward before stopping (0: off)", integer=True),
        "weight_decay": Bound(0, 1, "AdamW weight decay of the policy, e.g. 0.01"),
        "discount": Bound(0, 1, "per-layer reward discount, e.g. 0.99", lo_open=True),
        "grad_clip": Bound(0, 1e6, "max gradient norm of the policy, e.g. 1", lo_open=True),
    },
    check=_check_options,
)
def prunenet(model: nn.Module, ratio: float, *, seed: int = 0, policy: Any = None, selection: str = "sample",
             round_to: int = 1, episodes: int = 20, lr: float = 1e-3, train_ratio: float = 0.5,
             advantage: str = "reward", draws: int = 1, entropy: float = 0.0, temperature: float = 1.0,
             features: str = "abs", patience: int = 0, weight_decay: float = 0.01, discount: float = 0.99,
             grad_clip: float = 1.0, cache: bool = True) -> tuple[nn.Module, dict[str, Any]]:
    """PruneNet through the method registry.

    Args:
        model: causal LM of a supported family (pruned in place).
        ratio: fraction of FFN neurons removed in every layer.
        seed: seeds policy training (initialisation and noise) and the stochastic row selection.
        policy: a trained :class:`PruneNetPolicy`, or a ``.safetensors`` path (loaded if it exists, else
            trained and written there), or ``None``: looked up in memory, then in complaw's policy cache
            (``$COMPLAW_CACHE/prunenet``, keyed by the gate weights' fingerprint and the training settings),
            and trained only when neither has it. The record's ``policy_source`` says which.
        selection: ``"sample"`` (the paper's noisy sampling, seeded) or ``"topk"`` (deterministic).
        round_to: round the kept size down to a multiple of this (e.g. 8 or 64).
        episodes, lr, train_ratio, advantage, draws, entropy, temperature, features, patience, weight_decay,
            discount, grad_clip: training settings (each documented in :class:`PruneNetConfig`), recorded in
            ``policy_config``; ignored when a trained ``policy`` is given.
        cache: read and write complaw's on-disk policy cache (``False``: memory only).
    """
    require(selection in SELECTIONS, f"selection={selection!r}: must be one of {', '.join(SELECTIONS)}")
    n = ffn_size(model)
    k = kept_rows(n, ratio, round_to)
    num_layers = len(gate_weights(model))
    details: dict[str, Any] = {"intermediate_size_before": n, "selection": selection, "round_to": round_to}
    if k == n:  # nothing to remove: no policy needed
        details["kept_per_layer"] = [n] * num_layers
        return model, details
    config = PruneNetConfig(episodes=episodes, lr=lr, train_ratio=train_ratio, advantage=advantage, draws=draws,
                            entropy=entropy, temperature=temperature, features=features, seed=seed, patience=patience,
                            weight_decay=weight_decay, discount=discount, grad_clip=grad_clip)
    trained_policy, source, path = _resolve_policy(model, policy, config, cache)
    trained_now = source == "trained"
    fingerprint = model_fingerprint(model)
    start = time.perf_counter()
    prune_with_policy(model, trained_policy, ratio, selection=selection, seed=seed, round_to=round_to)
    details.update(
        kept_per_layer=[k] * num_layers,
        policy_trained_now=trained_now,
        policy_source=source,
        policy_path=path,
        policy_config=asdict(trained_policy.config) if trained_policy.config else None,
        policy_fingerprint=trained_policy.fingerprint,
        policy_matches_model=trained_policy.fingerprint == fingerprint,
        policy_train_time_s=trained_policy.history.wall_time_s if trained_now else 0.0,
        policy_best_episode=trained_policy.history.best_episode,
        policy_episodes_run=len(trained_policy.history.episode_rewards),
        prune_time_s=time.perf_counter() - start,
    )
    return model, details
