"""GMSE golden values, capacity and the bridge, the unified law, RTN/sparsity methods and the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from complaw import capacity as cap
from complaw.compress import compress
from complaw.compress.quant import decoder_linears
from complaw.errors import ComplawError
from complaw.laws.unified import describe, fit_unified, synthetic_frame

MC = 1 << 20  # Monte Carlo samples in tests (the library default is 4M); tolerances use the stderr


def test_golden_sparse_half():
    assert f"{cap.gmse('sparse-0.5').value:.3g}" == "0.0713"
    assert cap.gmse_sparse_closed(0.0) == 0.0


def test_golden_int4_midrise():
    g = cap.gmse("int4")
    assert f"{g.value:.4g}" == "0.01154"
    assert g.method == "exact" and g.scale > 0


def test_closed_form_sparsity_matches_compressor():
    x = np.random.default_rng(1).standard_normal(1 << 20)
    for s in (0.3, 0.5, 0.7):
        mc = np.mean((x - cap.sparse_magnitude(x, s)) ** 2)
        assert mc == pytest.approx(cap.gmse_sparse_closed(s), rel=0.02)


@pytest.mark.parametrize("name", ["int4", "fp4", "int3"])
def test_monte_carlo_agrees_with_exact_grid(name):
    exact = cap.gmse(name)
    mc = cap.gmse_monte_carlo(name, MC, seed=3)
    assert mc.stderr > 0
    assert abs(mc.value - exact.value) < 5 * mc.stderr


@pytest.mark.parametrize("name", [n for n in cap.EXAMPLES if n != "dense"])
def test_every_format_above_shannon_bound(name):
    fmt = cap.get_format(name)
    g = cap.gmse(name, MC).value
    assert g > 4.0 ** (-fmt.bits)
    assert 0 < cap.capacity(name, samples=MC) < 1


def test_format_ordering_and_capacity():
    g = {n: cap.gmse(n, MC).value for n in ("int8-channel", "int4-g128", "int3-g128", "int4-tensor", "nvfp4", "mxfp4")}
    assert g["int8-channel"] < g["int4-g128"] < g["int3-g128"]
    assert g["int4-g128"] < g["int4-tensor"]
    assert g["nvfp4"] < g["mxfp4"]
    assert cap.capacity("dense") == 1.0
    rho = cap.capacity("2:4+int4-g128", samples=MC)
    assert rho == pytest.approx(cap.capacity("2:4", samples=MC) * cap.capacity("int4-g128", samples=MC))
    assert cap.capacity("int4", activations="int8") == pytest.approx(cap.capacity("int4") * cap.capacity("int8"))
    b = cap.effective_bits(cap.gmse("int4").value)
    assert cap.capacity("int4") == pytest.approx(math.tanh(0.41 * b) ** 1.39)


def test_bridge_and_fit_capacity():
    assert cap.r_eff("dense", 0.3) == pytest.approx(0.3)
    assert cap.r_eff("int4", 0.0) == pytest.approx(1 - cap.capacity("int4"))
    assert cap.r_eff("int4", 0.5) == pytest.approx(1 - 0.5 * cap.capacity("int4"))
    gs = [1e-4, 1e-3, 0.01, 0.05, 0.1, 0.3]
    rhos = [cap.rho_from_gmse(g, 0.9, 0.5, 1.2) for g in gs]
    assert cap.fit_capacity(gs, rhos) == pytest.approx((0.9, 0.5, 1.2), rel=1e-4)


def test_unknown_format_lists_known():
    with pytest.raises(ComplawError, match="known formats"):
        cap.get_format("int4-q9")
    with pytest.raises(ComplawError):
        cap.r_eff("int4", 1.2)


def test_unified_law_recovers_constants():
    truth = dict(A=400.0, alpha=0.34, B=410.0, beta=0.28, E=1.7)
    fit = fit_unified(synthetic_frame(**truth), bootstrap=0)
    for k, v in truth.items():
        assert fit.params[k] == pytest.approx(v, rel=1e-4)
    noisy = synthetic_frame(**truth, noise=0.003, seed=1)
    fit = fit_unified(noisy, bootstrap=8)
    lo, hi = fit.intervals["alpha"]
    assert lo <= fit.params["alpha"] <= hi and abs(fit.params["alpha"] - 0.34) < 0.02
    assert np.allclose(fit.predict(noisy), noisy["loss"], rtol=0.02)
    with pytest.raises(TypeError):
        fit.params["A"] = 1.0  # immutable
    assert "A·(N·ρ(R))^(−α)" in describe()
    with pytest.raises(ComplawError, match="missing"):
        fit_unified(noisy.drop(columns=["D"]))


def tiny_llama(seed: int = 0):
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
                      tie_word_embeddings=False)
    return LlamaForCausalLM(cfg).eval()


IDS = torch.randint(0, 128, (2, 16), generator=torch.Generator().manual_seed(0))


def _logits(model):
    with torch.inference_mode():
        return model(input_ids=IDS).logits


@pytest.mark.parametrize("bits", [8, 4, 3])
def test_rtn_distinct_values_per_group(bits):
    model = tiny_llama()
    before = _logits(model)
    model, record = compress(model, f"rtn-int{bits}", 0.0, group_size=32)
    assert record.param_reduction == 0
    assert record.details["format"] == f"int{bits}-g32" and 0 < record.details["r_eff"] < 1
    for lin in decoder_linears(model):
        w = lin.weight.detach().reshape(lin.weight.shape[0], -1, 32)
        for row in w.reshape(-1, 32)[:64]:
            assert torch.unique(row).numel() <= 2**bits
    after = _logits(model)
    assert torch.isfinite(after).all() and not torch.equal(before, after)


@pytest.mark.parametrize("s", [0.3, 0.5, 0.7])
def test_magnitude_sparse_exact_fraction(s):
    model = tiny_llama()
    before = _logits(model)
    model, record = compress(model, "magnitude-sparse", s)
    for lin in decoder_linears(model):
        assert (lin.weight == 0).sum().item() == round(s * lin.weight.numel())
    assert record.details["format"] == f"sparse-{s:g}"
    after = _logits(model)
    assert torch.isfinite(after).all() and not torch.equal(before, after)


def test_sparse_2_4():
    model = tiny_llama()
    model, record = compress(model, "sparse-2:4", 0.0)
    for lin in decoder_linears(model):
        w = lin.weight.reshape(lin.weight.shape[0], -1, 4)
        assert ((w != 0).sum(-1) <= 2).all()
        assert (lin.weight == 0).float().mean().item() == pytest.approx(0.5)
    assert torch.isfinite(_logits(model)).all()
    assert record.param_reduction == 0


def test_cli_capacity(capsys):
    from complaw.cli import main

    assert main(["capacity", "int4", "sparse-0.5", "--r", "0.2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[1]["gmse"] == pytest.approx(0.0713, abs=5e-5)
    assert rows[0]["r_eff"] == pytest.approx(1 - 0.8 * rows[0]["rho"])
    assert main(["capacity", "int4", "sparse-0.5"]) == 0
    assert "0.0713" in capsys.readouterr().out
    assert main(["capacity", "nope"]) == 2
    assert "known formats" in capsys.readouterr().err
