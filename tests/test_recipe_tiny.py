"""RFT, evaluation and the recipe on a tiny model and tokenizer built here (no zoo needed)."""

import json
import math
import os

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
                rft=RFTConfig(rft_samples=16, seq_len=32, dataset=str(tiny / "train.txt"), batch_size=4, lr=3e-3),
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
    small = recovery_blocks(tok, RFTConfig(rft_samples=4, seq_len=32, dataset=str(tiny / "train.txt")))
    large = recovery_blocks(tok, RFTConfig(rft_samples=8, seq_len=32, dataset=str(tiny / "train.txt")))
    assert small.shape == (4, 32) and torch.equal(large[:4], small)
    with pytest.raises(ComplawError, match="holds only"):
        recovery_blocks(tok, RFTConfig(rft_samples=10**6, seq_len=32, dataset=str(tiny / "train.txt")))


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
    same, rec = recover(model, tok, RFTConfig(rft_samples=0))
    assert rec.rft_samples == 0 and all(torch.equal(before[k], v) for k, v in same.state_dict().items())
    blocks = token_blocks([TEXT], tok, 32, max_blocks=8)
    start = lm_loss(model, blocks).loss
    tuned, rec = recover(model, tok, RFTConfig(rft_samples=32, seq_len=32, dataset=str(tiny / "train.txt"),
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
    assert a.compression["param_reduction"] > 0 and a.rft["rft_samples"] == 16
    assert a.recovered.test_loss < a.compressed.test_loss
    assert a.base.prefill_latency_s > 0 and set(a.versions) >= {"torch", "transformers", "peft", "lm_eval"}
    assert a.base_latency_s == a.base.prefill_latency_s  # the base's time from the unit's paired measurement
    assert a.runtime["protocol"] == "interleaved" and a.runtime["speedup"] > 0 and len(a.runtime["ratios"]) == \
        cfg.runtime.repeats
    strip = lambda r: r.model_dump(exclude={"timings_s", "started_at", "finished_at", "base", "compressed",  # noqa: E731
                                            "recovered", "compression", "rft", "base_latency_s", "peak_rss_bytes",
                                            "peak_rss_exact", "start_rss_bytes", "runtime"})
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
        run_experiment(config(tiny, rft=RFTConfig(rft_samples=4, dataset=str(tiny / "nope.txt"))))
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
                                rft=RFTConfig(rft_samples=0)))
    assert rec.status == "invalid" and "nan" in rec.error.lower()
    assert rec.base is not None and math.isnan(rec.base.test_loss)


def test_every_d_of_a_unit_starts_from_the_compressed_weights(tiny):
    """Two D > 0 in one unit (the snapshot is restored before the second) = each D run alone."""
    from complaw.recipe import run_unit

    cfgs = [config(tiny, rft=RFTConfig(rft_samples=d, seq_len=32, dataset=str(tiny / "train.txt"), batch_size=4,
                                       lr=3e-3), runtime=RuntimeConfig(enabled=False)) for d in (0, 8, 16)]
    together = run_unit(cfgs)
    alone = [run_unit([c])[0] for c in cfgs[1:]]
    assert [r.status for r in together] == ["success"] * 3
    for joint, single in zip(together[1:], alone, strict=True):
        assert joint.recovered.test_loss == single.recovered.test_loss
        assert joint.rft["loss_curve"] == single.rft["loss_curve"]


def test_record_carries_peak_memory_and_dtype(tiny, tmp_path):
    from complaw.sweep import ResultStore

    rec = run_experiment(config(tiny, runtime=RuntimeConfig(enabled=False)))
    assert rec.status == "success", rec.error
    assert rec.dtype == "float32" and rec.compression["details"]["dtype"] == "float32"
    assert rec.start_rss_bytes > 0 and rec.peak_rss_bytes >= rec.start_rss_bytes
    assert isinstance(rec.peak_rss_exact, bool)
    assert rec.cuda_max_allocated_bytes is None  # CPU run
    with ResultStore(tmp_path / "r.db") as store:
        store.put([rec])
        frame = store.frame()
    assert frame["peak_rss_mb"].iloc[0] == pytest.approx(rec.peak_rss_bytes / 2**20)
    assert frame["dtype"].iloc[0] == "float32"


_PEAK_SCRIPT = """
import json, time, torch
from complaw.evaluate.memory import PeakMemory
mib = 2**20
with PeakMemory() as mem:  # a new high for the (fresh) process: the kernel's own peak
    x = torch.ones(300 * mib // 4); del x
    first = mem.read()
with PeakMemory() as mem:  # below that high: only the sampler sees it
    x = torch.ones(100 * mib // 4); time.sleep(0.1); del x
    second = mem.read()
print(json.dumps([first.to_dict(), second.to_dict()]))
"""


def test_peak_memory_sees_a_short_allocation_exact_or_sampled():
    import subprocess
    import sys

    # Through sh, which forks Python: a process exec'd straight from pytest inherits pytest's ru_maxrss.
    out = subprocess.run(["sh", "-c", '"$0" -c "$1"; exit $?', sys.executable, _PEAK_SCRIPT],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, check=True).stdout
    first, second = json.loads(out.splitlines()[-1])
    mib = 2**20
    assert first["rss_exact"] and first["rss_bytes"] >= first["rss_start_bytes"] + 290 * mib
    assert not second["rss_exact"] and second["rss_bytes"] >= second["rss_start_bytes"] + 90 * mib


def test_compress_and_run_compute_in_one_dtype(tiny, tmp_path):
    """A bf16 checkpoint: compress and run both follow resolve_device's rule, not the checkpoint's dtype."""
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    from complaw.cli import main
    from complaw.cli.compress import run_compress
    from complaw.models.io import dtype_name, resolve_device

    ckpt = tmp_path / "bf16"
    AutoModelForCausalLM.from_pretrained(tiny / "model", dtype=torch.bfloat16).save_pretrained(ckpt)
    for f in (tiny / "model").glob("tokenizer*"):
        (ckpt / f.name).write_bytes(f.read_bytes())
    rule = dtype_name(resolve_device("auto", "auto")[1])
    comp = run_compress(str(ckpt), "random-ffn", 0.5, out=tmp_path / "c")
    rec = run_experiment(config(tiny, model=str(ckpt), runtime=RuntimeConfig(enabled=False),
                                rft=RFTConfig(rft_samples=0)))
    assert comp.details["dtype"] == rec.dtype == rec.compression["details"]["dtype"] == rule
    assert comp.details["device"] == rec.device
    assert json.loads((tmp_path / "c" / "complaw.json").read_text())["dtype"] == rule
    with safe_open(tmp_path / "c" / "model.safetensors", "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F32" if rule == "float32" else "BF16"}
    # an explicit dtype is taken by both, and recorded
    assert main(["compress", str(ckpt), "-m", "random-ffn", "-r", "0.5", "--dtype", "bfloat16",
                 "--device", "cpu", "--out", str(tmp_path / "b")]) == 0
    assert json.loads((tmp_path / "b" / "complaw.json").read_text())["dtype"] == "bfloat16"
    rec = run_experiment(config(tiny, model=str(ckpt), dtype="bfloat16", device="cpu",
                                runtime=RuntimeConfig(enabled=False), rft=RFTConfig(rft_samples=0)))
    assert rec.dtype == "bfloat16"


@pytest.mark.parametrize("command", ["compress", "run"])
def test_a_bad_dtype_is_one_line(tiny, capsys, command):
    from complaw.cli import main

    assert main([command, str(tiny / "model"), "-m", "random-ffn", "-r", "0.5", "--dtype", "int8"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "--dtype 'int8'" in err and "\n" not in err


def test_activation_checkpointing_changes_no_number_of_rft(tiny, monkeypatch):
    """RFT recomputes each layer's activations in the backward pass: the loss curve is bit-identical to
    keeping them, and the model is left without the checkpointing switch or the input-grad hook."""
    import contextlib

    from transformers import AutoModelForCausalLM, AutoTokenizer

    import complaw.recover as rc

    tok = AutoTokenizer.from_pretrained(tiny / "model")
    cfg = RFTConfig(rft_samples=16, seq_len=32, dataset=str(tiny / "train.txt"), batch_size=4, lr=3e-3)
    model = AutoModelForCausalLM.from_pretrained(tiny / "model")
    with rc.activation_checkpointing(model) as on:
        assert on and model.model.layers[0].gradient_checkpointing
    assert not model.model.layers[0].gradient_checkpointing and getattr(model, "_require_grads_hook", None) is None
    checkpointed, rec_a = recover(AutoModelForCausalLM.from_pretrained(tiny / "model"), tok, cfg)
    monkeypatch.setattr(rc, "activation_checkpointing", lambda m: contextlib.nullcontext(False))
    plain, rec_b = recover(AutoModelForCausalLM.from_pretrained(tiny / "model"), tok, cfg)
    assert rec_a.loss_curve == rec_b.loss_curve
    assert all(torch.equal(a, b) for a, b in zip(checkpointed.state_dict().values(), plain.state_dict().values(),
                                                  strict=True))


def test_chunked_rft_loss_equals_hf_loss_and_gradients(tiny, monkeypatch):
    """RFT's loss goes through the LM head in checkpointed chunks: the same loss and gradients as HF's
    one-piece ``model(labels=ids).loss`` to float rounding, and the RFT run matches one on HF's loss."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import complaw.evaluate.intrinsic as intrinsic
    import complaw.recover as rc

    model = AutoModelForCausalLM.from_pretrained(tiny / "model")
    ids = torch.randint(0, model.config.vocab_size, (3, 24), generator=torch.Generator().manual_seed(0))
    # chunks of 7 rows: several chunks and a ragged last one
    monkeypatch.setattr(intrinsic, "TRAIN_CHUNK_LOGITS", 7 * model.config.vocab_size)
    ours = intrinsic.causal_lm_loss(model, ids)
    ours.backward()
    g_ours = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    theirs = model(input_ids=ids, labels=ids).loss
    theirs.backward()
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-6)
    for n, p in model.named_parameters():
        assert torch.allclose(g_ours[n], p.grad, rtol=1e-4, atol=1e-6), n
    # a whole RFT run on either loss: the same curve to float rounding
    tok = AutoTokenizer.from_pretrained(tiny / "model")
    cfg = RFTConfig(rft_samples=16, seq_len=32, dataset=str(tiny / "train.txt"), batch_size=4, lr=3e-3)
    _, chunked = recover(AutoModelForCausalLM.from_pretrained(tiny / "model"), tok, cfg)
    monkeypatch.setattr(rc, "causal_lm_loss", lambda m, x, **kw: m(input_ids=x, labels=x, **kw).loss)
    _, hf = recover(AutoModelForCausalLM.from_pretrained(tiny / "model"), tok, cfg)
    assert chunked.loss_curve == pytest.approx(hf.loss_curve, rel=1e-4)


def test_run_reads_an_experiment_config_with_overrides(tiny, tmp_path, capsys):
    """complaw run --config: the YAML, then the flags given, then key=value overrides (the sweep's machinery)."""
    import yaml

    from complaw.cli import main
    from complaw.recipe import load_experiment

    exp = {"model": str(tiny / "model"), "method": "random-ffn", "ratio": 0.5, "seed": 3,
           "rft": {"rft_samples": 0, "seq_len": 32, "dataset": str(tiny / "train.txt")},
           "eval": {"test_data": str(tiny / "test.jsonl"), "seq_len": 32, "max_blocks": 4, "tasks": []},
           "runtime": {"enabled": False}}
    f = tmp_path / "exp.yaml"
    f.write_text(yaml.safe_dump(exp))
    cfg = load_experiment(f, ["ratio=0.25", "method_options.round_to=8"])
    assert (cfg.ratio, cfg.method_options, cfg.seed, cfg.eval.max_blocks) == (0.25, {"round_to": 8}, 3, 4)
    assert main(["run", "--config", str(f), "--method", "magnitude-ffn", "ratio=0.25", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    c = rec["config"]
    assert (c["method"], c["ratio"], c["seed"], c["eval"]["max_blocks"]) == ("magnitude-ffn", 0.25, 3, 4)
    assert rec["compression"]["ratio"] == 0.25 and rec["status"] == "success"
    # the same experiment from flags alone has the same identity
    assert main(["run", str(tiny / "model"), "-m", "magnitude-ffn", "-r", "0.25", "--seed", "3", "--seq-len", "32",
                 "--test-data", str(tiny / "test.jsonl"), "--test-blocks", "4", "--no-tasks", "--no-runtime",
                 "--rft-dataset", str(tiny / "train.txt"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["config_hash"] == rec["config_hash"]
    for bad, fragment in ((["nosuch=1"], "nosuch: Extra inputs are not permitted"),
                          (["ratio=abc"], "ratio: Input should be a valid number"),
                          (["method_options.bogus=1"], "option bogus: method 'random-ffn' takes no such option"),
                          (["ratio=0.2", "rft"], "override 'rft': expected key=value")):
        assert main(["run", "--config", str(f), *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert fragment in err and "\n" not in err, err
