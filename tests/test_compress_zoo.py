"""Every method on the smallest zoo model of each family: save, reload, identical logits (skipped without a zoo)."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from complaw.compress import compress
from complaw.errors import ComplawError
from complaw.models import load, save

zoo = pytest.importorskip("complaw.zoo")


def smallest_zoo_model(family_prefix: str) -> str:
    for name in (f"{family_prefix}-xs", f"{family_prefix}-s"):
        try:
            zoo.resolve_model(name)
        except ComplawError:
            continue
        return f"zoo:{name}"
    pytest.skip(f"no {family_prefix} model in the zoo yet (run `complaw zoo build`)")


@pytest.mark.parametrize("family", ["llama", "qwen"])
@pytest.mark.parametrize("method, options", [
    ("prunenet", {"episodes": 2}),
    ("random-ffn", {}),
    ("magnitude-ffn", {}),
    ("maxabs-ffn", {}),
    ("layer-drop", {"max_batches": 1, "batch_size": 2}),  # default calibration: the zoo's split
])
def test_zoo_model_roundtrip(family, method, options, tmp_path):
    model_id = smallest_zoo_model(family)
    model = load(model_id).eval()
    ids = torch.randint(0, model.config.vocab_size, (2, 24), generator=torch.Generator().manual_seed(0))
    ratio = 0.5
    model, record = compress(model, method, ratio, **options)
    assert record.param_reduction > 0
    with torch.inference_mode():
        expected = model(input_ids=ids).logits
    out = save(model, tmp_path / "m", record=record)
    for reloaded in (AutoModelForCausalLM.from_pretrained(out).eval(), load(str(out)).eval()):
        with torch.inference_mode():
            assert torch.equal(reloaded(input_ids=ids).logits, expected)


@pytest.mark.parametrize("method, options", [
    ("layer-drop", {"max_batches": 1, "batch_size": 2, "seq_len": 64}),
    ("slicegpt", {"calibration_samples": 4, "calibration_seqlen": 64}),
])
def test_calibration_sources_are_the_same_for_every_method(method, options, tmp_path):
    """zoo:SPLIT, a JSONL file and a list of records are read alike by every calibration-based method."""
    import json

    from complaw.textdata import load_texts

    texts = load_texts("zoo:calibration")[:20]
    texts = [t if isinstance(t, str) else t[-1] for t in texts]
    jsonl = tmp_path / "calib.jsonl"
    jsonl.write_text("\n".join(json.dumps({"text": t}) for t in texts))
    model_id = smallest_zoo_model("llama")
    tokens = []
    for source in ("zoo:calibration", str(jsonl), [{"text": t} for t in texts]):
        _, record = compress(load(model_id).eval(), method, 0.5, calibration=source, **options)
        assert record.param_reduction > 0
        tokens.append(record.details["calibration"]["tokens"] if method == "slicegpt"
                      else record.details["calibration_tokens"])
    assert tokens[1] == tokens[2] > 0
