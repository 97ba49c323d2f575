"""What every registered compression method and law form must do — parametrised over the registries, so a new
method or form (a built-in module, or a plugin such as tests/plugins/first_rows_ffn.py) is tested without
editing this file."""

import json
import typing

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from complaw.cli import main
from complaw.compress import METHODS, compress, get_method
from complaw.compress.registry import RUNTIME_OPTIONS, check_options, unsupported_reason
from complaw.errors import ComplawError
from complaw.laws import fit, simulate
from complaw.laws.forms import FORMS
from complaw.models import load, save
from complaw.models.params import count_parameters

METHOD_NAMES = METHODS.names()
FORM_NAMES = FORMS.names()
#: Faster settings for the slow built-ins (a speed hint only: any other method runs with its defaults).
FAST = {"prunenet": {"episodes": 2}}
#: A wrong value of each option type.
WRONG = {int: "abc", float: "fast", bool: 1, str: 3}


def tiny_llama():
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=4,
                                        max_position_embeddings=64)).eval()


def options_for(name: str) -> dict:
    opts = dict(FAST.get(name, {}))
    if get_method(name).needs_calibration:
        opts["calibration"] = torch.randint(0, 128, (4, 32), generator=torch.Generator().manual_seed(0))
    return opts


def test_the_registries_hold_the_builtins_and_the_test_plugin():
    assert {"prunenet", "slicegpt", "layer-drop", "random-ffn", "rtn-int4"} <= set(METHOD_NAMES)
    assert "first-rows-ffn" in METHOD_NAMES  # registered by tests/plugins/first_rows_ffn.py alone
    assert {"sengupta2025", "pruning-law", "talk", "speed"} <= set(FORM_NAMES)


def test_a_second_registration_of_a_name_raises():
    spec = get_method("prunenet")
    with pytest.raises(ValueError, match="already registered"):
        METHODS.register("prunenet", spec)
    with pytest.raises(ValueError, match="already registered"):
        FORMS.register("talk", FORMS.get("talk"))
    assert get_method("prunenet") is spec


def test_a_lazy_entry_is_listed_with_its_help_and_imported_on_first_use():
    import sys

    from complaw.registry import Registry

    sys.modules.pop("xml.dom.minidom", None)
    reg = Registry("thing", unknown="thing {name!r}: unknown; have {available}")
    reg.lazy("parse", "xml.dom.minidom:parseString", help="parse XML")
    reg.register("one", 1, help="the number one")
    assert reg.entries() == [("one", "the number one"), ("parse", "parse XML")]
    assert "xml.dom.minidom" not in sys.modules  # listed, not imported
    assert reg.get("parse").__name__ == "parseString" and "xml.dom.minidom" in sys.modules
    with pytest.raises(ValueError, match="already registered"):
        reg.lazy("parse", "json:loads")
    with pytest.raises(ComplawError, match="thing 'two': unknown; have one, parse"):
        reg.get("two")


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_every_option_has_a_type_a_default_and_help(name):
    spec = get_method(name)
    for row in spec.option_rows():
        assert row["type"] and row["help"], (name, row)
    assert isinstance(spec.options().model_dump(), dict)  # the defaults validate


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_complaw_methods_lists_it_and_prints_every_option(name, capsys):
    assert main(["methods", "--json"]) == 0
    assert name in {row["name"] for row in json.loads(capsys.readouterr().out)}
    assert main(["methods", name, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [r["option"] for r in shown["options"]] == list(get_method(name).options.model_fields)
    assert all(r["type"] and r["default"] and r["help"] for r in shown["options"])


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_an_unknown_or_mistyped_option_is_one_line_before_any_work(name):
    with pytest.raises(ComplawError, match=f"no_such_option: method '{name}' takes no such option"):
        check_options(name, {"no_such_option": 1})
    for key, field in get_method(name).options.model_fields.items():
        kinds = typing.get_args(field.annotation) or (field.annotation,)
        wrong = next((WRONG[k] for k in kinds if k in WRONG), None)
        if wrong is None or any(isinstance(wrong, k) for k in kinds if isinstance(k, type)):
            continue
        with pytest.raises(ComplawError, match=f"option {key}=.*method '{name}' needs"):
            check_options(name, {key: wrong})


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_compress_measures_records_and_round_trips(name, tmp_path):
    model = tiny_llama()
    if unsupported_reason(name, model):
        pytest.skip(unsupported_reason(name, model))
    before = count_parameters(model)
    ids = torch.randint(0, 128, (2, 16), generator=torch.Generator().manual_seed(1))
    model, record = compress(model, name, 0.5, seed=0, **options_for(name))
    after = count_parameters(model)
    assert (record.method, record.ratio, record.params_before, record.params_after) == (name, 0.5, before, after)
    assert record.param_reduction == pytest.approx((before - after) / before)
    assert set(record.options) == set(get_method(name).options.model_fields) - set(RUNTIME_OPTIONS)
    logits = model(ids).logits
    assert torch.isfinite(logits).all()
    out = save(model, tmp_path / "m", record=record)
    assert torch.allclose(load(out)(ids).logits, logits, atol=1e-5)


@pytest.mark.parametrize("name", FORM_NAMES)
def test_every_form_recovers_its_own_parameters(name):
    form = FORMS.get(name)
    direction = form.fixed_direction or "higher"
    signs = form.sign_conditions(direction)
    truth = {p: 0.5 * signs.get(p, 1) for p in form.param_names}
    res = fit(simulate(form, truth, noise=0.005, seed=1), form, direction=direction, bootstrap=0)
    assert res.sign_ok
    for p, value in truth.items():
        assert res.params[p].estimate == pytest.approx(value, abs=0.02), (name, p)


def test_a_sweep_runs_every_registered_method(tiny, tmp_path):
    import yaml

    from complaw.sweep import ResultStore, load_spec, run_sweep

    names = [n for n in METHOD_NAMES if unsupported_reason(n, tiny_llama()) is None]
    spec = {
        "name": "contract", "models": [str(tiny / "model")], "ratios": [0.5], "rft_samples": [0], "threads": 1,
        "methods": [{"name": n, "options": FAST.get(n, {}),
                     "calibration": str(tiny / "train.txt") if get_method(n).needs_calibration else None}
                    for n in names],
        "eval": {"test_data": str(tiny / "test.jsonl"), "seq_len": 32, "max_blocks": 4, "tasks": []},
        "runtime": {"enabled": False}, "store": str(tmp_path / "results.db"), "report": None,
    }
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    result = run_sweep(load_spec(tmp_path / "spec.yaml"), show_progress=False)
    with ResultStore(tmp_path / "results.db", readonly=True) as store:
        frame = store.frame()
    assert result.counts == {"success": len(names)}
    assert sorted(frame["method"]) == sorted(names)
