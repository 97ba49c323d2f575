"""RFT and evaluation on a zoo model: recovery helps, D = 0 is a no-op, and our zero-shot numbers are
lm-eval's own."""

import numpy as np
import pytest
import torch

from complaw import zoo
from complaw.compress import compress
from complaw.evaluate import lm_loss, zero_shot
from complaw.models import load
from complaw.recipe import load_tokenizer
from complaw.recover import RFTConfig, recover
from complaw.textdata import load_texts, token_blocks

MODEL = "zoo:llama-s"


@pytest.fixture(scope="module")
def setup():
    tok = load_tokenizer(MODEL)
    blocks = token_blocks(load_texts("zoo:test"), tok, 128, max_blocks=32)
    return tok, blocks


def test_rft_lowers_the_loss_of_a_half_pruned_model(setup):
    tok, blocks = setup
    torch.manual_seed(0)
    model, _ = compress(load(MODEL), "prunenet", 0.5, seed=0)
    pruned = lm_loss(model, blocks).loss
    same, rec = recover(model, tok, RFTConfig(rft_samples=0))
    assert rec.steps == 0 and lm_loss(same, blocks).loss == pruned
    tuned, rec = recover(model, tok, RFTConfig(rft_samples=128, seq_len=128, lr=2e-3))
    recovered = lm_loss(tuned, blocks).loss
    assert recovered < pruned - 0.05, (pruned, recovered)


def test_zero_shot_equals_lm_evals_own_run():
    import lm_eval
    from lm_eval.tasks import TaskManager

    tok = load_tokenizer(MODEL)
    model = load(MODEL)
    task = zoo.task_names()[0]
    ours = zero_shot(model, tok, [task], limit=60, batch_size=8)
    path = zoo.resolve_model(MODEL)
    theirs = lm_eval.simple_evaluate(
        model="hf", model_args=f"pretrained={path},tokenizer={path},device=cpu,dtype=float32", tasks=[task],
        limit=60, batch_size=8, task_manager=TaskManager(include_path=str(zoo.task_include_path())),
        log_samples=False, bootstrap_iters=0)["results"][task]
    assert ours.tasks[task]["acc"] == pytest.approx(theirs["acc,none"], abs=1e-12)
    assert ours.tasks[task]["acc_norm"] == pytest.approx(theirs["acc_norm,none"], abs=1e-12)
    assert ours.tasks[task]["n"] == 60
    # the chance level of the items evaluated: a uniform guess over each item's choices (the zoo's have 4)
    import json

    docs = [json.loads(line) for line in open(zoo.task_include_path() / f"{task}.jsonl")][:60]
    assert ours.tasks[task]["chance"] == pytest.approx(np.mean([1 / len(d["choices"]) for d in docs]))
    # lm-eval gives no stderr without bootstrap iterations: the standard error of a mean of 0/1 scores
    for key in ("acc", "acc_norm"):
        p = ours.tasks[task][key]
        assert ours.tasks[task][f"{key}_stderr"] == pytest.approx(np.sqrt(p * (1 - p) / 59))


def test_zero_shot_batches_within_the_logits_budget_give_the_same_numbers(monkeypatch):
    """A batch whose logits would pass the budget is split; every request is scored as before."""
    from complaw.evaluate import extrinsic

    assert extrinsic._budget_batch(16, 100, 49152) == 6  # 2 x 100 x 49152 x 4 B = 39 MB a request, 256 MiB
    assert extrinsic._budget_batch(16, 100, 8000) == 16 and extrinsic._budget_batch(16, 10**6, 49152) == 1
    tok, model, task = load_tokenizer(MODEL), load(MODEL), zoo.task_names()[0]
    wide = zero_shot(model, tok, [task], limit=40, batch_size=16)
    used = []
    real = extrinsic._budget_batch
    monkeypatch.setattr(extrinsic, "LOGITS_BUDGET_BYTES", 1)  # one request per forward pass
    monkeypatch.setattr(extrinsic, "_budget_batch", lambda *a, **k: used.append(real(*a, **k)) or used[-1])
    narrow = zero_shot(model, tok, [task], limit=40, batch_size=16)
    assert used and set(used) == {1}
    for key in ("acc", "acc_norm"):
        assert narrow.tasks[task][key] == pytest.approx(wide.tasks[task][key], abs=1e-12)
