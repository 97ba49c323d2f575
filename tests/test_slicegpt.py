"""SliceGPT on tiny Llama / Qwen2 models built in the test: invariance, shapes, save/load, LoRA, errors."""

from __future__ import annotations

import json
import types
import warnings

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

from complaw.compress import available_methods, compress
from complaw.compress.slicegpt import calibration_batches, save_sliced, sliced_width, slicegpt
from complaw.errors import ComplawError
from complaw.models.adapters import get_adapter
from complaw.models.io import load
from complaw.models.sliced import RMSN, SlicedDecoderLayer

VOCAB, HIDDEN = 128, 64


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny matmuls are ~1000x slower with 2 OpenMP threads on a busy 2-core box; restore afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(family: str, dtype=torch.float32, layers: int = 3, **extra) -> torch.nn.Module:
    """A random tiny model with non-trivial norm scales and biases (so folding is really exercised).

    llama: untied head, GQA 4/2 heads. qwen2: q/k/v biases, tied embeddings, GQA.
    """
    common = dict(hidden_size=HIDDEN, intermediate_size=128, num_hidden_layers=layers, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=VOCAB, max_position_embeddings=64)
    common.update(extra)
    if family == "llama":
        config = LlamaConfig(**common, tie_word_embeddings=False)
    elif family == "mistral":
        from transformers import MistralConfig

        config = MistralConfig(**common, sliding_window=8, tie_word_embeddings=False)
    else:
        config = Qwen2Config(**common, tie_word_embeddings=True)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=dtype).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.3 * torch.randn_like(p))
            elif "bias" in name:
                p.copy_(0.1 * torch.randn_like(p))
    return model


def token_ids(n: int, t: int, seed: int) -> torch.Tensor:
    return torch.randint(0, VOCAB, (n, t), generator=torch.Generator().manual_seed(seed))


CALIB = token_ids(16, 32, seed=2)   # 512 tokens >= hidden size 64
INPUTS = token_ids(3, 24, seed=1)


def exact_reference_logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """Logits of the stock model with its RMSNorms computed in the input dtype (HF upcasts to fp32 always).

    In float64 this makes the reference exact, so the invariance check can be far tighter than 1e-6.
    """

    def forward(self, x):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.variance_epsilon))

    saved = {}
    for module in model.modules():
        if type(module).__name__.endswith("RMSNorm"):
            saved[module] = module.forward
            module.forward = types.MethodType(forward, module)
    try:
        return model(ids).logits
    finally:
        for module, fn in saved.items():
            module.forward = fn


# --- invariance: fusion + rotation without slicing leaves the function unchanged ------------------------


@pytest.mark.parametrize("family", ["llama", "qwen2", "mistral"])
@pytest.mark.parametrize("rotation", ["pca", "random"])
def test_invariance_float64(family, rotation):
    model = tiny_model(family, torch.float64)
    ref = model(INPUTS).logits
    exact = exact_reference_logits(model, INPUTS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ratio 0 makes the model larger: warned, expected here
        model, details = slicegpt(model, 0.0, calibration=CALIB, round_to=1, rotation=rotation)
    out = model(INPUTS).logits
    assert details["kept_hidden"] == HIDDEN
    assert (out - ref).abs().max().item() <= 1e-6  # vs the stock model (its norms run in fp32)
    assert (out - exact).abs().max().item() <= 1e-10  # vs the same model with exact fp64 norms


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_invariance_float32(family):
    model = tiny_model(family, torch.float32)
    ref = model(INPUTS).logits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, _ = slicegpt(model, 0.0, calibration=CALIB, round_to=1, device="cpu")
    assert (model(INPUTS).logits - ref).abs().max().item() <= 1e-3


def test_invariance_with_output_biases():
    """Llama with attention_bias/mlp_bias: o_proj and down_proj biases are rotated with their rows."""
    model = tiny_model("llama", torch.float64, attention_bias=True, mlp_bias=True)
    assert model.model.layers[0].self_attn.o_proj.bias is not None
    ref = exact_reference_logits(model, INPUTS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, _ = slicegpt(model, 0.0, calibration=CALIB, round_to=1)
    assert (model(INPUTS).logits - ref).abs().max().item() <= 1e-10


def test_invariance_with_sliding_window_layers():
    """Qwen2 with sliding-window layers: each layer must get its own mask (recorded from the model's forward)."""
    model = tiny_model("qwen2", torch.float64, layers=2, use_sliding_window=True, sliding_window=4,
                       max_window_layers=1)
    assert "sliding_attention" in model.config.layer_types
    ref = exact_reference_logits(model, INPUTS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, _ = slicegpt(model, 0.0, calibration=CALIB, round_to=1)
    assert (model(INPUTS).logits - ref).abs().max().item() <= 1e-10


# --- slicing: shapes, structure, measured parameter change ---------------------------------------------


def test_sliced_width_rounding():
    assert sliced_width(4096, 0.25, 8) == 3072
    assert sliced_width(896, 0.3, 8) == 624  # floor(627.2) = 627 -> 624
    assert sliced_width(64, 0.0, 1) == 64
    assert sliced_width(60, 0.0, 8) == 56


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_slicing_shapes_and_param_reduction(family):
    model = tiny_model(family)
    before = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    model, record = compress(model, "slicegpt", 0.5, calibration=CALIB)
    k = 32
    adapter = get_adapter(model)
    assert adapter.embedding(model).weight.shape == (VOCAB, k)
    layers = adapter.layers_of(model)
    for i, layer in enumerate(layers):
        assert isinstance(layer, SlicedDecoderLayer)
        q, kk, v, o = adapter.attn_linears(layer)
        gate, up, down = adapter.mlp_linears(layer)
        last = i == len(layers) - 1
        assert q.weight.shape[1] == kk.weight.shape[1] == v.weight.shape[1] == k
        assert o.weight.shape[0] == gate.weight.shape[1] == up.weight.shape[1] == k
        assert down.weight.shape[0] == (HIDDEN if last else k)
        assert layer.attn_shortcut.shape == (k, k)
        assert layer.mlp_shortcut.shape == (k, HIDDEN if last else k)
        assert all(isinstance(n, RMSN) and n.hidden_size == HIDDEN for n in adapter.norms(layer))
        if family == "qwen2":  # output-side biases untouched in size
            assert q.bias.shape == (q.weight.shape[0],)
    assert adapter.head(model).weight.shape == (VOCAB, HIDDEN)
    assert isinstance(adapter.final_norm_of(model), RMSN)
    assert model.config.tie_word_embeddings is False
    assert adapter.head(model).weight.data_ptr() != adapter.embedding(model).weight.data_ptr()
    assert record.params_before == before
    assert record.param_reduction == pytest.approx(record.details["param_reduction"])
    assert record.kept_per_layer == [k] * len(layers)
    assert 0 < record.param_reduction < 0.5  # always far below the slicing ratio
    out = model(INPUTS, labels=INPUTS)
    assert out.logits.shape == (*INPUTS.shape, VOCAB) and torch.isfinite(out.loss)


def test_tied_model_grows_at_ratio_zero_and_warns():
    model = tiny_model("qwen2")
    with pytest.warns(UserWarning, match="grew"):
        model, record = compress(model, "slicegpt", 0.0, calibration=CALIB)
    assert record.param_reduction < 0


def test_slice_head():
    model, record = compress(tiny_model("llama"), "slicegpt", 0.25, calibration=CALIB, slice_head=True)
    adapter = get_adapter(model)
    assert adapter.head(model).weight.shape == (VOCAB, 48)
    assert record.details["structure"]["head"] == 48
    assert adapter.layers_of(model)[-1].mlp_shortcut.shape == (48, 48)
    assert torch.isfinite(model(INPUTS).logits).all()


def test_bfloat16_runs_and_rmsn_upcasts():
    norm = RMSN(8, 1e-6)
    x = torch.randn(2, 3, 8, dtype=torch.bfloat16) * 100
    y = norm(x)
    assert y.dtype == torch.bfloat16
    ref = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-6)
    assert torch.allclose(y.float(), ref, atol=1e-2)
    model, _ = compress(tiny_model("qwen2", torch.bfloat16), "slicegpt", 0.25, calibration=CALIB)
    assert torch.isfinite(model(INPUTS).logits.float()).all()


def test_registered():
    spec = available_methods()["slicegpt"]
    assert spec.needs_calibration


# --- save / load / LoRA ----------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_save_load_identical_logits(tmp_path, family):
    model, record = compress(tiny_model(family), "slicegpt", 0.25, calibration=CALIB)
    ref = model(INPUTS).logits
    out = save_sliced(model, tmp_path / "sliced", record=record)
    meta = json.loads((out / "complaw.json").read_text())
    assert meta["format"] == "slicegpt" and meta["record"]["method"] == "slicegpt"
    assert json.loads((out / "config.json").read_text())["model_type"] == family
    assert not (out / "model.safetensors").exists() and (out / "slicegpt.safetensors").exists()
    loaded = load(out)
    assert torch.equal(loaded(INPUTS).logits, ref)
    # plain from_pretrained must not silently load a wrong model
    with pytest.raises(OSError):
        AutoModelForCausalLM.from_pretrained(out)


def test_sharded_weights_are_renamed_and_load(tmp_path):
    from complaw.models.sliced import rename_weights

    model, record = compress(tiny_model("llama"), "slicegpt", 0.25, calibration=CALIB)
    out = save_sliced(model, tmp_path / "sharded", record=record)
    (out / "slicegpt.safetensors").unlink()
    model.save_pretrained(out, max_shard_size="40KB")  # several model-0000x-of-0000n files + an index
    assert len(list(out.glob("model-*.safetensors"))) > 1
    rename_weights(out)
    assert not list(out.glob("model*")) and (out / "slicegpt.safetensors.index.json").exists()
    assert torch.equal(load(out)(INPUTS).logits, model(INPUTS).logits)


def test_generic_save_writes_sliced_format(tmp_path):
    """complaw.models.save (what the compress CLI calls) must not write a plain HF checkpoint of a sliced model."""
    from complaw.models import save

    model, record = compress(tiny_model("llama"), "slicegpt", 0.5, calibration=CALIB)
    out = save(model, tmp_path / "generic", record=record, extra={"base_model": "tiny"})
    meta = json.loads((out / "complaw.json").read_text())
    assert meta["format"] == "slicegpt" and meta["base_model"] == "tiny"
    assert torch.equal(load(out)(INPUTS).logits, model(INPUTS).logits)
    resaved = save(load(out), tmp_path / "again")  # a loaded sliced model saves the same way
    assert json.loads((resaved / "complaw.json").read_text())["format"] == "slicegpt"


def test_lora_recovery_after_load(tmp_path):
    from peft import LoraConfig, get_peft_model

    model, record = compress(tiny_model("qwen2"), "slicegpt", 0.5, calibration=CALIB)
    save_sliced(model, tmp_path / "m", record=record)
    model = load(tmp_path / "m")
    before = model(INPUTS).logits.detach().clone()
    peft_model = get_peft_model(model, LoraConfig(r=16, target_modules="all-linear", init_lora_weights=False))
    names = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    assert any("q_proj" in n for n in names) and any("down_proj" in n for n in names)
    opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-3)
    peft_model.train()
    losses = []
    for _ in range(2):
        loss = peft_model(input_ids=INPUTS, attention_mask=torch.ones_like(INPUTS), labels=INPUTS).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    with pytest.raises(ComplawError, match="merge_and_unload"):
        save_sliced(peft_model, tmp_path / "unmerged")
    merged = peft_model.merge_and_unload().eval()
    with torch.no_grad():
        after = merged(INPUTS, labels=INPUTS)
    assert torch.isfinite(after.loss)
    assert not torch.allclose(after.logits, before)
    assert isinstance(get_adapter(merged).layers_of(merged)[0], SlicedDecoderLayer)
    assert torch.equal(load(save_sliced(merged, tmp_path / "merged"))(INPUTS).logits, after.logits)


def test_lm_eval_hflm_loglikelihood():
    """lm-eval's HFLM drives the sliced model in memory (what the evaluation stage does)."""
    pytest.importorskip("lm_eval")
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    model, _ = compress(tiny_model("qwen2"), "slicegpt", 0.25, calibration=CALIB)
    lm = HFLM(pretrained=model, tokenizer=_tiny_tokenizer(), batch_size=2)
    requests = [Instance(request_type="loglikelihood", doc={}, arguments=(ctx, cont), idx=i)
                for i, (ctx, cont) in enumerate([("the quick", " brown fox"), ("the lazy", " dog")])]
    scores = lm.loglikelihood(requests)
    assert len(scores) == 2 and all(ll < 0 for ll, _ in scores)


# --- calibration sources -------------------------------------------------------------------------------


def _tiny_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=["<unk>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet()[:100])
    tok.train_from_iterator(["the quick brown fox jumps over the lazy dog"] * 10, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", unk_token="<unk>")


TEXTS = [f"the quick brown fox number {i} jumps over the lazy dog again and again" for i in range(40)]


def test_calibration_from_txt_jsonl_and_list(tmp_path):
    tok = _tiny_tokenizer()
    model = tiny_model("llama")
    txt = tmp_path / "calib.txt"
    txt.write_text("\n\n".join(TEXTS))
    jsonl = tmp_path / "calib.jsonl"
    jsonl.write_text("\n".join(json.dumps({"text": t}) for t in TEXTS))
    shapes = []
    for source in (txt, str(jsonl), TEXTS):
        batches, info = calibration_batches(model, source, tokenizer=tok, samples=8, seqlen=32, batch_size=3)
        assert info["seqlen"] == 32 and 1 <= info["sequences"] <= 8
        assert all(ids.max() < VOCAB for ids, _ in batches)
        shapes.append(sum(ids.shape[0] for ids, _ in batches))
    assert shapes[0] == shapes[1]
    model, record = compress(model, "slicegpt", 0.25, calibration=txt, tokenizer=tok, calibration_samples=8,
                             calibration_seqlen=32)
    assert record.details["calibration"]["source"] == str(txt)


def test_calibration_seqlen_capped_by_max_positions():
    _, info = calibration_batches(tiny_model("llama"), token_ids(4, 64, 0), seqlen=4096)
    assert info["seqlen"] == 64


# --- bad input ------------------------------------------------------------------------------------------


def test_too_few_calibration_tokens():
    with pytest.raises(ComplawError, match="fewer than the hidden size 64"):
        compress(tiny_model("llama"), "slicegpt", 0.25, calibration=token_ids(2, 16, 0))


@pytest.mark.parametrize("ratio", [1.0, -0.1, 1.5])
def test_ratio_out_of_range(ratio):
    with pytest.raises(ComplawError, match="ratio"):
        compress(tiny_model("llama"), "slicegpt", ratio, calibration=CALIB)
    with pytest.raises(ComplawError, match="ratio"):
        slicegpt(tiny_model("llama"), ratio, calibration=CALIB)


def test_ratio_leaving_no_dims():
    with pytest.raises(ComplawError, match="no hidden dimension"):
        compress(tiny_model("llama"), "slicegpt", 0.95, calibration=CALIB, round_to=8)


def test_unsupported_family():
    from transformers import GPT2Config

    model = AutoModelForCausalLM.from_config(GPT2Config(n_embd=64, n_layer=2, n_head=4, vocab_size=VOCAB))
    with pytest.raises(ComplawError, match="no adapter"):
        compress(model, "slicegpt", 0.25, calibration=CALIB)


def test_bad_options_and_sources(tmp_path):
    with pytest.raises(ComplawError, match="rotation"):
        compress(tiny_model("llama"), "slicegpt", 0.25, calibration=CALIB, rotation="svd")
    with pytest.raises(ComplawError, match="no such file"):
        compress(tiny_model("llama"), "slicegpt", 0.25, calibration=str(tmp_path / "missing.txt"))
    with pytest.raises(ComplawError, match="unsupported"):
        compress(tiny_model("llama"), "slicegpt", 0.25, calibration=12)
    model, _ = compress(tiny_model("llama"), "slicegpt", 0.25, calibration=CALIB)
    with pytest.raises(ComplawError, match="already sliced"):
        compress(model, "slicegpt", 0.25, calibration=CALIB)


def test_error_messages_are_one_line():
    try:
        compress(tiny_model("llama"), "slicegpt", 0.25, calibration=token_ids(1, 8, 0))
    except ComplawError as exc:
        assert "\n" not in str(exc)
    else:  # pragma: no cover
        pytest.fail("expected ComplawError")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_layerwise_on_gpu_model_on_cpu():
    """Model kept on CPU, layers processed one at a time on the GPU: same function at ratio 0."""
    model = tiny_model("qwen2", torch.float32)
    ref = model(INPUTS).logits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, _ = slicegpt(model, 0.0, calibration=CALIB, round_to=1, device="cuda")
    assert next(model.parameters()).device.type == "cpu"
    assert (model(INPUTS).logits - ref).abs().max().item() <= 1e-3


def test_generate_with_kv_cache_matches_no_cache():
    model, _ = compress(tiny_model("qwen2"), "slicegpt", 0.25, calibration=CALIB)
    prompt = INPUTS[:1, :6]
    cached = model.generate(prompt, max_new_tokens=6, do_sample=False, use_cache=True, pad_token_id=0)
    uncached = model.generate(prompt, max_new_tokens=6, do_sample=False, use_cache=False, pad_token_id=0)
    assert cached.shape == (1, 12) and torch.equal(cached, uncached)


def test_calibration_default_is_a_token_budget_for_the_device_and_is_recorded():
    from complaw.compress.slicegpt import default_calibration_budget

    assert default_calibration_budget("cpu") == (32, 512)
    assert default_calibration_budget("cuda") == (128, 2048)  # the reference's 128 × 2048
    _, record = compress(tiny_model("llama"), "slicegpt", 0.25, calibration=token_ids(40, 600, seed=3))
    calib = record.details["calibration"]
    # 32 windows of min(512, max_position_embeddings = 64) tokens
    assert calib["budget"] == {"device": "cpu", "samples": 32, "seqlen": 512, "default": True}
    assert (calib["sequences"], calib["seqlen"]) == (32, 64)
    _, record = compress(tiny_model("llama"), "slicegpt", 0.25, calibration=CALIB, calibration_samples=8)
    assert record.details["calibration"]["budget"]["default"] is False
    with pytest.raises(ComplawError, match="calibration_samples='8': method 'slicegpt' needs an integer or null"):
        compress(tiny_model("llama"), "slicegpt", 0.25, calibration=CALIB, calibration_samples="8")
