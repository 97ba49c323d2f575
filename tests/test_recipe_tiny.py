"""RFT, evaluation and the recipe on a tiny model and tokenizer built here (no zoo needed)."""

import json
import math

import pytest
import torch
from transformers import LlamaForCausalLM

from complaw.errors import ComplawError
from complaw.evaluate import lm_loss, measure_runtime
from complaw.recipe import EvalConfig, ExperimentConfig, RuntimeConfig, run_experiment
from complaw.recover import RFTConfig, recover, recovery_blocks
from complaw.textdata import load_texts, token_blocks
from conftest import TEXT


def config(tiny, **kw):
    base = dict(model=str(tiny / "model"), method="random-ffn", ratio=0.5,
                rft=RFTConfig(samples=16, seq_len=32, dataset=str(tiny / "train.txt"), batch_size=4, lr=3e-3),
                eval=EvalConfig(test_data=str(tiny / "test.jsonl"), seq_len=32, max_blocks=16, tasks=[]),
                runtime=RuntimeConfig(seq_len=16, new_tokens=4, repeats=2))
    base.update(kw)
    return ExperimentConfig(**base)


def test_text_sources(tiny):
    assert load_texts(str(tiny / "train.txt")) == [TEXT]
    assert len(load_texts(str(tiny / "test.jsonl"))) == 4
    with pytest.raises(ComplawError, match="no such file"):
        load_texts(str(tiny / "missing.jsonl"))
    with pytest.raises(ComplawError, match="could not be loaded"):
        load_texts("no-such-org/no-such-dataset")


def test_recovery_samples_are_nested_and_counted(tiny):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny / "model")
    small = recovery_blocks(tok, RFTConfig(samples=4, seq_len=32, dataset=str(tiny / "train.txt")))
    large = recovery_blocks(tok, RFTConfig(samples=8, seq_len=32, dataset=str(tiny / "train.txt")))
    assert small.shape == (4, 32) and torch.equal(large[:4], small)
    with pytest.raises(ComplawError, match="holds only"):
        recovery_blocks(tok, RFTConfig(samples=10**6, seq_len=32, dataset=str(tiny / "train.txt")))


def test_loss_is_token_weighted_and_excludes_padding(tiny):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny / "model")
    model = AutoModelForCausalLM.from_pretrained(tiny / "model")
    blocks = token_blocks([TEXT], tok, 32, max_blocks=6)
    full = lm_loss(model, blocks, batch_size=4)
    assert full.tokens == 6 * 31
    # batch size does not change a token-weighted mean
    assert lm_loss(model, blocks, batch_size=1).loss == pytest.approx(full.loss, rel=1e-5)
    # masking the second half of every block removes exactly those tokens from the count
    mask = torch.ones_like(blocks)
    mask[:, 16:] = 0
    half = lm_loss(model, blocks, attention_mask=mask)
    assert half.tokens == 6 * 15
    ref = model(input_ids=blocks[:, :16], labels=blocks[:, :16]).loss.item()
    assert half.loss == pytest.approx(ref, rel=1e-5)


def test_rft_zero_is_a_noop_and_positive_d_trains(tiny):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny / "model")
    model = AutoModelForCausalLM.from_pretrained(tiny / "model")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    same, rec = recover(model, tok, RFTConfig(samples=0))
    assert rec.samples == 0 and all(torch.equal(before[k], v) for k, v in same.state_dict().items())
    blocks = token_blocks([TEXT], tok, 32, max_blocks=8)
    start = lm_loss(model, blocks).loss
    tuned, rec = recover(model, tok, RFTConfig(samples=32, seq_len=32, dataset=str(tiny / "train.txt"),
                                               batch_size=4, lr=3e-3))
    assert rec.tokens == 32 * 32 and rec.steps == 8 and type(tuned) is LlamaForCausalLM  # merged, plain model
    assert lm_loss(tuned, blocks).loss < start


def test_runtime_measurement(tiny):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny / "model")
    rt = measure_runtime(model, seq_len=16, new_tokens=4, repeats=2, warmup=1)
    assert rt.prefill_latency_s > 0 and rt.decode_tokens_per_s > 0 and rt.decode_uses_cache
    assert rt.flops_per_token == 2 * rt.linear_params and rt.device.startswith("cpu")


def test_recipe_record_is_complete_and_deterministic(tiny, tmp_path):
    cfg = config(tiny)
    a = run_experiment(cfg, out=tmp_path / "a.json")
    b = run_experiment(cfg)
    assert a.status == "success", a.error
    assert a.config_hash == cfg.config_hash() and len(a.config_hash) == 16
    assert a.compression["param_reduction"] > 0 and a.rft["samples"] == 16
    assert a.recovered.test_loss < a.compressed.test_loss
    assert a.base.latency_s > 0 and set(a.versions) >= {"torch", "transformers", "peft", "lm_eval"}
    assert a.base_latency_s == a.base.latency_s  # a single run times its base right before compressing
    strip = lambda r: r.model_dump(exclude={"timings_s", "started_at", "finished_at", "base", "compressed",  # noqa: E731
                                            "recovered", "compression", "rft", "base_latency_s"})
    assert strip(a) == strip(b)
    for stage in ("base", "compressed", "recovered"):
        ma, mb = getattr(a, stage), getattr(b, stage)
        assert ma.test_loss == mb.test_loss  # bit-identical numbers for the same seed
    assert a.rft["loss_curve"] == b.rft["loss_curve"]
    assert json.loads((tmp_path / "a.json").read_text())["status"] == "success"


def test_recipe_errors_are_clear_or_recorded(tiny):
    with pytest.raises(ComplawError, match="task 'no_such_task'"):
        run_experiment(config(tiny, eval=EvalConfig(test_data=str(tiny / "test.jsonl"), seq_len=32,
                                                    max_blocks=4, tasks=["no_such_task"])))
    with pytest.raises(ComplawError, match="no such file"):
        run_experiment(config(tiny, rft=RFTConfig(samples=4, dataset=str(tiny / "nope.txt"))))
    with pytest.raises(ComplawError, match="unknown compression method"):
        run_experiment(config(tiny, method="nope"))


def test_nan_model_gives_an_invalid_record(tiny, tmp_path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny / "model")
    with torch.no_grad():
        model.model.layers[0].mlp.down_proj.weight.fill_(float("nan"))
    model.save_pretrained(tmp_path / "nan")
    for f in (tiny / "model").glob("tokenizer*"):
        (tmp_path / "nan" / f.name).write_bytes(f.read_bytes())
    rec = run_experiment(config(tiny, model=str(tmp_path / "nan"), runtime=RuntimeConfig(enabled=False),
                                rft=RFTConfig(samples=0)))
    assert rec.status == "invalid" and "nan" in rec.error.lower()
    assert rec.base is not None and math.isnan(rec.base.test_loss)
