"""FFN slicing (random, magnitude, PruneNet) and layer removal on tiny Llama, Qwen2 and Gemma-3 models.

Every method × family × ratio must: reduce parameters by exactly the analytic count, save as a standard
checkpoint that reloads (``from_pretrained`` and ``complaw.models.load``) with identical logits, and take a
LoRA adapter. r = 0 changes nothing.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    LlamaConfig,
    LlamaForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from complaw.compress import available_methods, compress
from complaw.compress.ffn import kept_rows
from complaw.compress.layerdrop import clear_block_influence_cache
from complaw.compress.prunenet import clear_policy_cache
from complaw.errors import ComplawError
from complaw.models import load, save

HIDDEN, FFN, LAYERS, VOCAB = 64, 176, 4, 128
FFN_METHODS = ("random-ffn", "magnitude-ffn", "maxabs-ffn", "prunenet")
METHODS = (*FFN_METHODS, "layer-drop")
FAMILIES = ("llama", "qwen2", "gemma3_text")
RATIOS = (0.1, 0.5, 0.9)
# Fast settings so the whole file runs in seconds; the policy is trained once per model and cached.
FAST = {"prunenet": {"episodes": 2}}


def tiny_model(family: str, seed: int = 0):
    """A random tiny model: Llama (untied, MHA), Qwen2 (tied embeddings, GQA, q/k/v biases) or Gemma-3
    (pre- and post-norms, q/k norms, sliding-window and full-attention layers, tied, scaled embeddings)."""
    torch.manual_seed(seed)
    common = dict(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=FFN, num_hidden_layers=LAYERS,
                  num_attention_heads=4, max_position_embeddings=64)
    if family == "llama":
        model = LlamaForCausalLM(LlamaConfig(num_key_value_heads=4, tie_word_embeddings=False, **common))
    elif family == "gemma3_text":
        model = Gemma3ForCausalLM(Gemma3TextConfig(
            num_key_value_heads=1, head_dim=16, sliding_window=8, tie_word_embeddings=True,
            layer_types=["sliding_attention", "full_attention"] * (LAYERS // 2), **common))
    else:
        model = Qwen2ForCausalLM(Qwen2Config(num_key_value_heads=2, tie_word_embeddings=True, **common))
    return model.eval()


def calibration_ids(seed: int = 0) -> torch.Tensor:
    return torch.randint(0, VOCAB, (4, 32), generator=torch.Generator().manual_seed(seed))


def options_for(method: str) -> dict:
    if method == "layer-drop":
        return {"calibration": calibration_ids()}
    return dict(FAST.get(method, {}))


def logits(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(input_ids=ids).logits


IDS = torch.randint(0, VOCAB, (2, 16), generator=torch.Generator().manual_seed(123))


def params_per_layer(config) -> int:
    """Analytic parameter count of one decoder layer (attention + gated MLP + two norms)."""
    d, n = config.hidden_size, config.intermediate_size
    head_dim = getattr(config, "head_dim", None) or d // config.num_attention_heads
    q = d * config.num_attention_heads * head_dim
    kv = 2 * d * config.num_key_value_heads * head_dim
    o = config.num_attention_heads * head_dim * d
    bias = (config.num_attention_heads + 2 * config.num_key_value_heads) * head_dim if config.model_type == "qwen2" else 0
    if config.model_type == "gemma3_text":  # four norms around attention and MLP, q/k norms
        return q + kv + o + 3 * d * n + 4 * d + 2 * head_dim
    return q + kv + o + bias + 3 * d * n + 2 * d


def analytic_removed(method: str, config, ratio: float) -> int:
    if method == "layer-drop":
        return math.floor(ratio * config.num_hidden_layers + 1e-9) * params_per_layer(config)
    n = config.intermediate_size
    k = math.floor((1 - ratio) * n + 1e-9)
    return config.num_hidden_layers * 3 * config.hidden_size * (n - k)


@pytest.fixture(autouse=True)
def _fresh_policy_cache():
    clear_policy_cache()
    clear_block_influence_cache()
    yield
    clear_policy_cache()
    clear_block_influence_cache()


def test_methods_are_registered():
    names = set(available_methods())
    assert set(METHODS) <= names
    assert available_methods()["layer-drop"].needs_calibration
    assert not available_methods()["prunenet"].needs_calibration


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method", METHODS)
def test_ratio_zero_is_identity(method, family):
    model = tiny_model(family)
    before = logits(model, IDS)
    pruned, record = compress(copy.deepcopy(model), method, 0.0, **options_for(method))
    assert torch.equal(logits(pruned, IDS), before)
    assert record.param_reduction == 0.0
    assert pruned.config.intermediate_size == FFN and pruned.config.num_hidden_layers == LAYERS


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("ratio", [1.0, -0.1, 1.5, "abc"])
def test_ratio_out_of_range_is_a_user_error(method, ratio):
    with pytest.raises(ComplawError, match="ratio"):
        compress(tiny_model("llama"), method, ratio, **options_for(method))


@pytest.mark.parametrize("method", FFN_METHODS)
def test_ratio_leaving_no_row_is_a_user_error(method):
    ratio = 1 - 0.5 / FFN  # floor((1 - r) * n) = 0
    with pytest.raises(ComplawError, match="would keep 0"):
        compress(tiny_model("llama"), method, ratio, **options_for(method))


def test_kept_rows_rounding():
    assert kept_rows(176, 0.0) == 176
    assert kept_rows(176, 0.3) == 123
    assert kept_rows(176, 0.3, round_to=8) == 120
    assert kept_rows(176, 0.3, round_to=64) == 64
    assert kept_rows(176, 0.95, round_to=64) == 64  # never below one multiple
    assert kept_rows(176, 0.0, round_to=64) == 176  # r = 0 keeps everything
    assert kept_rows(10, 0.3) == 7  # 0.7 * 10 = 6.9999… must not floor to 6
    with pytest.raises(ComplawError):
        kept_rows(176, 0.3, round_to=0)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method", METHODS)
def test_save_reload_identical_logits(method, family, tmp_path):
    base = tiny_model(family)
    for ratio in RATIOS:
        model, record = compress(copy.deepcopy(base), method, ratio, seed=1, **options_for(method))
        removed = analytic_removed(method, base.config, ratio)
        assert record.params_before - record.params_after == removed
        assert record.param_reduction == pytest.approx(removed / record.params_before, abs=1e-12)
        expected = logits(model, IDS)
        out = save(model, tmp_path / f"{method}-{family}-{ratio}", record=record)
        for reloaded in (AutoModelForCausalLM.from_pretrained(out), load(str(out))):
            reloaded.eval()
            assert type(reloaded) is type(base)
            assert torch.equal(logits(reloaded, IDS), expected), (method, family, ratio)
        if method == "layer-drop":
            assert reloaded.config.num_hidden_layers == LAYERS - math.floor(ratio * LAYERS + 1e-9)
        else:
            k = math.floor((1 - ratio) * FFN + 1e-9)
            assert reloaded.config.intermediate_size == k
            assert record.kept_per_layer == [k] * LAYERS
        if family in ("qwen2", "gemma3_text"):  # tied embeddings stay tied
            assert reloaded.lm_head.weight.data_ptr() == reloaded.model.embed_tokens.weight.data_ptr()


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method", METHODS)
def test_lora_attaches_to_compressed_model(method, family, tmp_path):
    from peft import LoraConfig, get_peft_model

    model, record = compress(tiny_model(family), method, 0.5, **options_for(method))
    out = save(model, tmp_path / "m", record=record)
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(out), LoraConfig(r=16, target_modules="all-linear"))
    ids = IDS[:, :8]
    loss = peft_model(input_ids=ids, labels=ids).loss
    loss.backward()
    grads = [p.grad for n, p in peft_model.named_parameters() if "lora_" in n and p.requires_grad]
    assert grads and all(g is not None for g in grads)


@pytest.mark.parametrize("family", FAMILIES)
def test_layer_drop_keeps_kv_cache_working(family):
    model, record = compress(tiny_model(family), "layer-drop", 0.5, calibration=calibration_ids())
    assert len(record.details["removed_layers"]) == 2
    layers = model.model.layers
    assert [layer.self_attn.layer_idx for layer in layers] == list(range(len(layers)))
    if getattr(model.config, "layer_types", None) is not None:  # Qwen2 and Gemma-3 carry a per-layer list
        assert len(model.config.layer_types) == len(layers)
        own = [getattr(layer.self_attn, "layer_type", None) for layer in layers]
        assert own in ([None] * len(layers), model.config.layer_types)  # each layer keeps its own type
    with torch.inference_mode():
        full = model(input_ids=IDS).logits[:, -1]
        prefix = model(input_ids=IDS[:, :-1], use_cache=True)
        step = model(input_ids=IDS[:, -1:], past_key_values=prefix.past_key_values, use_cache=True).logits[:, -1]
    torch.testing.assert_close(step, full, rtol=1e-5, atol=1e-5)


def test_layer_drop_removes_lowest_block_influence():
    from complaw.compress.layerdrop import block_influence, calibration_batches

    model = tiny_model("llama")
    # Make layer 2 (nearly) the identity: zero its output projections -> BI ≈ 0.
    with torch.no_grad():
        model.model.layers[2].self_attn.o_proj.weight.zero_()
        model.model.layers[2].mlp.down_proj.weight.zero_()
    bi = block_influence(model, calibration_batches(calibration_ids()))
    assert min(range(LAYERS), key=bi.__getitem__) == 2 and abs(bi[2]) < 1e-6
    _, record = compress(model, "layer-drop", 0.25, calibration=calibration_ids())
    assert record.details["removed_layers"] == [2]


def test_layer_drop_measures_block_influence_once_per_model_and_calibration():
    base = tiny_model("llama")
    runs = {r: compress(copy.deepcopy(base), "layer-drop", r, calibration=calibration_ids())[1] for r in (0.25, 0.5)}
    assert not runs[0.25].details["block_influence_cached"] and runs[0.5].details["block_influence_cached"]
    assert runs[0.25].details["block_influence"] == runs[0.5].details["block_influence"]
    assert set(runs[0.25].details["removed_layers"]) < set(runs[0.5].details["removed_layers"])
    # other calibration tokens, or other weights, are measured afresh
    _, other_calib = compress(copy.deepcopy(base), "layer-drop", 0.25, calibration=calibration_ids(seed=1))
    _, other_model = compress(tiny_model("llama", seed=1), "layer-drop", 0.25, calibration=calibration_ids())
    assert not other_calib.details["block_influence_cached"] and not other_model.details["block_influence_cached"]
    assert other_model.details["block_influence"] != runs[0.25].details["block_influence"]


def test_layer_drop_accepts_texts_with_a_tokenizer():
    from complaw.compress.layerdrop import calibration_batches

    class ByteTokenizer:  # the attributes calibration_batches uses
        eos_token_id = 0

        def __call__(self, text, add_special_tokens=False, **_):
            return {"input_ids": [b % VOCAB for b in text.encode()]}

    batches = calibration_batches(["hello world " * 40, "more text " * 40], tokenizer=ByteTokenizer(), seq_len=64)
    assert batches and batches[0]["input_ids"].shape[1] == 64
    with pytest.raises(ComplawError, match="tokenizer"):
        calibration_batches(["text"], model=None)


def test_magnitude_keeps_the_largest_neurons():
    model = tiny_model("llama")
    with torch.no_grad():  # neuron 5 of every layer is made large in all three matrices
        for layer in model.model.layers:
            layer.mlp.gate_proj.weight[5].mul_(100)
            layer.mlp.up_proj.weight[5].mul_(100)
            layer.mlp.down_proj.weight[:, 5].mul_(100)
            big_gate_row = layer.mlp.gate_proj.weight[5].clone()
    model, _ = compress(model, "magnitude-ffn", 0.9)
    last_gate = model.model.layers[-1].mlp.gate_proj.weight
    assert any(torch.equal(row, big_gate_row) for row in last_gate)


def test_random_ffn_is_seeded():
    a, _ = compress(tiny_model("llama"), "random-ffn", 0.5, seed=3)
    b, _ = compress(tiny_model("llama"), "random-ffn", 0.5, seed=3)
    c, _ = compress(tiny_model("llama"), "random-ffn", 0.5, seed=4)
    assert torch.equal(logits(a, IDS), logits(b, IDS))
    assert not torch.equal(logits(a, IDS), logits(c, IDS))


@pytest.mark.parametrize("method", FFN_METHODS)
def test_round_to_is_applied_and_recorded(method):
    model, record = compress(tiny_model("qwen2"), method, 0.3, round_to=8, **options_for(method))
    assert model.config.intermediate_size == 120
    assert record.options["round_to"] == 8
    assert record.kept_per_layer == [120] * LAYERS


@pytest.mark.parametrize("method", METHODS)
def test_bfloat16_model_stays_bfloat16(method):
    model = tiny_model("llama").to(torch.bfloat16)
    model, _ = compress(model, method, 0.5, **options_for(method))
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert torch.isfinite(logits(model, IDS).float()).all()


@pytest.mark.parametrize("options, message", [
    ({"bogus": 1}, "takes no such option"),
    ({"episodes": "abc"}, "episodes='abc': method 'prunenet' needs an integer"),
    ({"lr": "fast"}, "needs a number"),
    ({"cache": 1}, "needs true or false"),
    ({"advantage": "bogus"}, "advantage='bogus': must be one of reward, baseline, normalized"),
    ({"advantage": "normalized"}, "standardising needs at least 2 draws"),
    ({"entropy": -1.0}, r"entropy=-1: must lie in \[0, 100\]"),
])
def test_bad_method_options_are_user_errors(options, message):
    with pytest.raises(ComplawError, match=message):
        compress(tiny_model("llama"), "prunenet", 0.3, **options)


def test_slicegpt_is_refused_on_a_post_norm_family_with_the_reason():
    with pytest.raises(ComplawError, match="post-norms .*computational invariance"):
        compress(tiny_model("gemma3_text"), "slicegpt", 0.3, calibration=calibration_ids())


def test_gemma3_layer_drop_keeps_each_layers_attention_type(tmp_path):
    model = tiny_model("gemma3_text")
    with torch.no_grad():  # layer 1 (full attention) and 2 (sliding) near-identity -> both dropped
        for i in (1, 2):
            model.model.layers[i].self_attn.o_proj.weight.zero_()
            model.model.layers[i].mlp.down_proj.weight.zero_()
    model, record = compress(model, "layer-drop", 0.5, calibration=calibration_ids())
    assert record.details["removed_layers"] == [1, 2]
    assert model.config.layer_types == ["sliding_attention", "full_attention"]
    reloaded = load(str(save(model, tmp_path / "g", record=record))).eval()
    assert [layer.self_attn.layer_type for layer in reloaded.model.layers] == ["sliding_attention", "full_attention"]
    assert [layer.self_attn.layer_type for layer in model.model.layers] == model.config.layer_types
    assert torch.equal(logits(reloaded, IDS), logits(model, IDS))


def test_maxabs_ffn_keeps_the_neuron_with_the_largest_down_weight():
    model = tiny_model("llama")
    with torch.no_grad():  # neuron 7: one huge entry in its down column, tiny L2 norm elsewhere
        for layer in model.model.layers:
            layer.mlp.gate_proj.weight[7].mul_(0.01)
            layer.mlp.up_proj.weight[7].mul_(0.01)
            layer.mlp.down_proj.weight[:, 7].mul_(0.01)
            layer.mlp.down_proj.weight[3, 7] = 50.0
    marked = [layer.mlp.gate_proj.weight[7].clone() for layer in model.model.layers]
    by_max, _ = compress(copy.deepcopy(model), "maxabs-ffn", 0.9)
    by_l2, _ = compress(copy.deepcopy(model), "magnitude-ffn", 0.9)
    for layer, row in zip(by_max.model.layers, marked, strict=True):
        assert any(torch.equal(r, row) for r in layer.mlp.gate_proj.weight)
    # the L2 product ranks it low (its gate and up rows are tiny), so magnitude drops it
    assert not any(torch.equal(r, marked[0]) for r in by_l2.model.layers[0].mlp.gate_proj.weight)
