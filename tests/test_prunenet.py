"""PruneNet: the KS reward, the policy, training once and pruning at many ratios, persistence."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from complaw.compress import compress
from complaw.compress import prunenet as pn
from complaw.compress.ffn import kept_rows
from complaw.errors import ComplawError

N, D, LAYERS = 176, 64, 3


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=128, hidden_size=D, intermediate_size=N, num_hidden_layers=LAYERS,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64)
    return LlamaForCausalLM(config).eval()


@pytest.fixture(autouse=True)
def _fresh_cache():
    pn.clear_policy_cache()
    yield
    pn.clear_policy_cache()


def test_ks_statistic_matches_scipy():
    from scipy.stats import ks_2samp

    gen = torch.Generator().manual_seed(0)
    for size_a, size_b in [(50, 50), (64, 40), (10, 200)]:
        a, b = torch.randn(size_a, generator=gen), torch.randn(size_b, generator=gen) * 1.3 + 0.2
        assert pn.ks_statistic(a, b) == pytest.approx(ks_2samp(a.numpy(), b.numpy()).statistic, abs=1e-12)
    ties = torch.tensor([1.0, 1.0, 2.0, 3.0])
    assert pn.ks_statistic(ties, ties) == 0.0


def test_singular_values_match_svd_in_fp32_for_any_dtype():
    w = torch.randn(N, D) * 0.02
    reference = torch.linalg.svdvals(w.double()).float()
    torch.testing.assert_close(pn.singular_values(w), reference, rtol=1e-5, atol=1e-7)
    assert pn.singular_values(w.to(torch.bfloat16)).dtype == torch.float32
    assert pn.singular_values(w[:40]).shape == (40,)  # fewer rows than columns


@pytest.mark.parametrize("features", ["signed", "abs"])
def test_policy_logits_equal_the_paper_formula(features):
    policy = pn.PruneNetPolicy(N, D, seed=0, features=features)
    w = torch.randn(N, D)
    x = w if features == "signed" else w.abs()
    x_hat = x / x.pow(2).mean().sqrt()  # the policy reads unit-RMS weights
    paper = (x_hat @ policy.A.t() + policy.b) @ policy.u  # sigmoid((W·Aᵀ + b)·u) before the sigmoid
    torch.testing.assert_close(policy.logits(w), paper, rtol=1e-4, atol=1e-4)
    with pytest.raises(ComplawError, match="policy was built for"):
        policy.logits(torch.randn(N + 1, D))


def test_policy_is_trained_once_for_many_ratios(monkeypatch):
    calls = []
    real_train = pn.train_policy

    def counting_train(model, config=None):
        calls.append(config)
        return real_train(model, config)

    monkeypatch.setattr(pn, "train_policy", counting_train)
    base = tiny_llama()
    records = [compress(copy.deepcopy(base), "prunenet", r, episodes=2)[1] for r in (0.1, 0.3, 0.5, 0.7, 0.9)]
    assert len(calls) == 1
    assert [rec.details["policy_trained_now"] for rec in records] == [True, False, False, False, False]
    assert len({rec.details["policy_fingerprint"] for rec in records}) == 1
    # A different model (other weights) gets its own policy.
    compress(tiny_llama(seed=1), "prunenet", 0.5, episodes=2)
    assert len(calls) == 2


def test_policy_save_load_roundtrip_prunes_identically(tmp_path):
    base = tiny_llama()
    policy = pn.train_policy(base, pn.PruneNetConfig(episodes=2, seed=3))
    path = policy.save(tmp_path / "policy.safetensors")
    loaded = pn.PruneNetPolicy.load(path)
    assert loaded.config == policy.config and loaded.fingerprint == policy.fingerprint
    assert loaded.history.episode_rewards == policy.history.episode_rewards
    for selection in ("sample", "topk"):
        _, kept_a = pn.prune_with_policy(copy.deepcopy(base), policy, 0.4, selection=selection, seed=5)
        _, kept_b = pn.prune_with_policy(copy.deepcopy(base), loaded, 0.4, selection=selection, seed=5)
        assert all(torch.equal(a, b) for a, b in zip(kept_a, kept_b, strict=True))


def test_policy_path_option_trains_then_reuses(tmp_path, monkeypatch):
    path = tmp_path / "p.safetensors"
    _, first = compress(tiny_llama(), "prunenet", 0.5, policy=str(path), episodes=2)
    assert path.is_file() and first.details["policy_trained_now"]
    pn.clear_policy_cache()
    monkeypatch.setattr(pn, "train_policy", lambda *a, **k: pytest.fail("must load, not train"))
    _, second = compress(tiny_llama(), "prunenet", 0.3, policy=str(path))
    assert not second.details["policy_trained_now"] and second.details["policy_matches_model"]
    with pytest.raises(ComplawError, match="not a complaw PruneNet policy"):
        bad = tmp_path / "bad.safetensors"
        from safetensors.torch import save_file

        save_file({"x": torch.zeros(1)}, str(bad))
        compress(tiny_llama(), "prunenet", 0.3, policy=str(bad))


def test_selection_is_seeded_and_topk_is_deterministic():
    base = tiny_llama()
    policy = pn.train_policy(base, pn.PruneNetConfig(episodes=2))
    kept = {}
    for seed in (0, 0, 1):
        _, k = pn.prune_with_policy(copy.deepcopy(base), policy, 0.5, selection="sample", seed=seed)
        kept.setdefault(seed, []).append(k)
    assert all(torch.equal(a, b) for a, b in zip(kept[0][0], kept[0][1], strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(kept[0][0], kept[1][0], strict=True))
    _, t1 = pn.prune_with_policy(copy.deepcopy(base), policy, 0.5, selection="topk", seed=0)
    _, t2 = pn.prune_with_policy(copy.deepcopy(base), policy, 0.5, selection="topk", seed=9)
    assert all(torch.equal(a, b) for a, b in zip(t1, t2, strict=True))
    # top-k keeps exactly the highest-probability rows
    probs = policy.keep_probs(base.model.layers[0].mlp.gate_proj.weight)
    assert set(t1[0].tolist()) == set(torch.topk(probs, kept_rows(N, 0.5)).indices.tolist())


def test_training_clips_before_the_step(monkeypatch):
    order = []
    real_clip, real_step = torch.nn.utils.clip_grad_norm_, torch.optim.AdamW.step

    def clip(*a, **k):
        order.append("clip")
        return real_clip(*a, **k)

    def step(self, *a, **k):
        order.append("step")
        return real_step(self, *a, **k)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip)
    monkeypatch.setattr(torch.optim.AdamW, "step", step)
    pn.train_policy(tiny_llama(), pn.PruneNetConfig(episodes=1))
    assert order == ["clip", "step"] * LAYERS


def test_training_works_in_bfloat16_and_keeps_the_best_episode():
    model = tiny_llama().to(torch.bfloat16)
    policy = pn.train_policy(model, pn.PruneNetConfig(episodes=3))
    rewards = policy.history.episode_rewards
    assert len(rewards) == 3 and policy.history.best_episode == max(range(3), key=rewards.__getitem__)
    assert policy.A.dtype == torch.float32
    pruned, record = compress(model, "prunenet", 0.5, policy=policy)
    assert {p.dtype for p in pruned.parameters()} == {torch.bfloat16}


@pytest.mark.parametrize("bad", [{"episodes": 0}, {"lr": -1.0}, {"train_ratio": 1.0}, {"selection": "best"},
                                 {"features": "squared"}])
def test_bad_options_are_user_errors(bad):
    with pytest.raises(ComplawError):
        compress(tiny_llama(), "prunenet", 0.5, **bad)


def structured_llama() -> LlamaForCausalLM:
    """Gate rows ``s_i · (2e + noise)``: a shared direction ``e`` carried in proportion to the row scale.

    Trained LLMs' gate rows share outlier directions in this way; here it is made exact, so the best
    linear scorer (rank rows by their projection on ``e``) is also the best spectrum-preserving one
    (keep the largest rows) — a known answer the REINFORCE training has to find.
    """
    model = tiny_llama()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for layer in model.model.layers:
            e = torch.randn(D, generator=gen)
            scale = torch.exp(torch.randn(N, 1, generator=gen))
            noise = torch.randn(N, D, generator=gen) / D**0.5
            layer.mlp.gate_proj.weight.copy_(0.02 * scale * (2 * e / e.norm() + noise))
    return model


def mean_ks(gates, kept) -> float:
    return sum(pn.spectrum_ks(w, k) for w, k in zip(gates, kept, strict=True)) / len(gates)


@pytest.mark.parametrize("features", ["abs", "signed"])
def test_trained_policy_beats_random_slicing_on_spectral_ks(features):
    model = structured_llama()
    gates = pn.gate_weights(model)
    policy = pn.train_policy(model, pn.PruneNetConfig(episodes=20, features=features))
    for ratio in (0.3, 0.5, 0.7):
        k = kept_rows(N, ratio)
        random_ks = sum(
            mean_ks(gates, [torch.randperm(N, generator=torch.Generator().manual_seed(10 * s + i))[:k] for i in range(LAYERS)])
            for s in range(5)) / 5
        gen = torch.Generator().manual_seed(0)
        sampled_ks = sum(mean_ks(gates, [policy.select(w, k, generator=gen) for w in gates]) for _ in range(5)) / 5
        topk_ks = mean_ks(gates, [policy.select(w, k, selection="topk") for w in gates])
        assert sampled_ks < random_ks, (ratio, sampled_ks, random_ks)
        assert topk_ks < 0.6 * random_ks, (ratio, topk_ks, random_ks)


def test_policy_is_reused_from_the_disk_cache_after_the_memory_cache_is_gone(monkeypatch):
    model = tiny_llama()
    _, first = compress(copy.deepcopy(model), "prunenet", 0.5, episodes=2)
    assert first.details["policy_source"] == "trained" and first.details["policy_trained_now"]
    (cached,) = pn.cached_policies()
    assert cached["fingerprint"] == pn.model_fingerprint(model) and cached["episodes_run"] == 2
    pn.clear_policy_cache()  # what a new process starts with
    with monkeypatch.context() as patch:
        patch.setattr(pn, "train_policy", lambda *a, **k: pytest.fail("retrained despite the disk cache"))
        _, second = compress(copy.deepcopy(model), "prunenet", 0.3, episodes=2)
    assert second.details["policy_source"] == "disk" and not second.details["policy_trained_now"]
    assert second.details["policy_config"] == first.details["policy_config"]
    # other settings are another policy: not taken from the cache
    _, third = compress(copy.deepcopy(model), "prunenet", 0.3, episodes=3)
    assert third.details["policy_source"] == "trained" and len(pn.cached_policies()) == 2
    assert pn.clear_policy_cache(disk=True) == 2 and pn.cached_policies() == []


def test_a_torn_cache_file_is_retrained_and_replaced():
    model = tiny_llama()
    compress(copy.deepcopy(model), "prunenet", 0.5, episodes=2)
    (cached,) = pn.cached_policies()
    with open(cached["path"], "wb") as fh:
        fh.write(b"not a safetensors file")
    assert pn.cached_policies()[0]["error"] == "unreadable"  # `complaw policy list` shows it, does not crash
    pn.clear_policy_cache()
    _, record = compress(copy.deepcopy(model), "prunenet", 0.5, episodes=2)
    assert record.details["policy_source"] == "trained"
    assert pn.PruneNetPolicy.load(cached["path"]).fingerprint == pn.model_fingerprint(model)


def test_cache_false_keeps_the_policy_in_memory_only():
    compress(tiny_llama(), "prunenet", 0.5, episodes=2, cache=False)
    assert pn.cached_policies() == []


def test_training_options_are_recorded_in_the_policy_config():
    _, record = compress(tiny_llama(), "prunenet", 0.5, episodes=2, advantage="normalized", draws=3,
                         entropy=0.01, temperature=0.5)
    config = record.details["policy_config"]
    assert (config["advantage"], config["draws"], config["entropy"], config["temperature"]) == ("normalized", 3, 0.01, 0.5)


def test_an_old_policy_file_with_baseline_still_loads(tmp_path):
    import json

    from safetensors.torch import save_file

    policy = pn.train_policy(tiny_llama(), pn.PruneNetConfig(episodes=1))
    from dataclasses import asdict

    old_config = {**asdict(policy.config), "baseline": True}
    del old_config["advantage"], old_config["draws"], old_config["entropy"]
    meta = {"format": "complaw.prunenet-policy/1", "config": json.dumps(old_config),
            "fingerprint": policy.fingerprint, "features": policy.features, "history": "{}"}
    save_file({n: p.detach().contiguous() for n, p in policy.named_parameters()}, str(tmp_path / "old.safetensors"),
              metadata=meta)
    assert pn.PruneNetPolicy.load(tmp_path / "old.safetensors").config.advantage == "baseline"


def test_the_plain_reward_saturates_and_the_normalised_advantage_climbs_the_reward():
    """The paper's ``-R·Σ log α`` (R > 0) pushes every kept row up: α → 1, the draw becomes uniform.
    A group-normalised advantage pushes rows of better-than-average draws up and the others down, so the
    keep probabilities spread and the mean KS reward rises (what the paper optimises, estimated better)."""
    model = structured_llama()
    gates = pn.gate_weights(model)
    plain = pn.train_policy(model, pn.PruneNetConfig(episodes=15, lr=1e-2))
    normalised = pn.train_policy(model, pn.PruneNetConfig(episodes=15, lr=1e-2, advantage="normalized", draws=4))
    with torch.no_grad():
        sat_plain = torch.cat([plain.keep_probs(w) for w in gates]).gt(0.999).float().mean()
        alpha = torch.cat([normalised.keep_probs(w) for w in gates])
    assert sat_plain > 0.9, float(sat_plain)
    assert alpha.gt(0.999).float().mean() < 0.5 and alpha.lt(0.5).any(), alpha
    rewards = normalised.history.episode_rewards
    assert sum(rewards[-3:]) / 3 > rewards[0], rewards
