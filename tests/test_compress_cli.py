"""``complaw compress`` / ``complaw methods`` end to end on a tiny saved model."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from complaw.cli import main
from complaw.cli.compress import parse_options, run_compress
from complaw.errors import ComplawError


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=176, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64)
    path = tmp_path_factory.mktemp("m") / "tiny"
    LlamaForCausalLM(config).save_pretrained(path)
    return path


def test_parse_options():
    assert parse_options(["round_to=64", "selection=topk", "episodes=3", "baseline=false", "x-y=[1, 2]"]) == {
        "round_to": 64, "selection": "topk", "episodes": 3, "baseline": False, "x_y": [1, 2]}
    with pytest.raises(ComplawError, match="key=value"):
        parse_options(["round_to"])


def test_compress_json_and_reload(model_dir, tmp_path, capsys):
    out = tmp_path / "pruned"
    code = main(["compress", str(model_dir), "--method", "prunenet", "--ratio", "0.5", "--seed", "1",
                 "--option", "episodes=2", "--option", "round_to=8", "--out", str(out), "--json"])
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert record["method"] == "prunenet" and record["ratio"] == 0.5 and record["seed"] == 1
    assert record["kept_per_layer"] == [88, 88]
    # the record holds every option as resolved: the given ones, and the defaults of the others
    from complaw.compress import get_method

    assert record["options"]["episodes"] == 2 and record["options"]["round_to"] == 8
    assert set(record["options"]) == set(get_method("prunenet").options.model_fields)
    assert record["options"]["lr"] == 1e-3 and record["options"]["discount"] == 0.99
    assert 0 < record["param_reduction"] < 0.5
    reloaded = AutoModelForCausalLM.from_pretrained(out)
    assert reloaded.config.intermediate_size == 88
    assert json.loads((out / "complaw.json").read_text())["record"]["method"] == "prunenet"


def test_compress_prints_a_table(model_dir, capsys):
    assert main(["compress", str(model_dir), "--method", "magnitude-ffn", "--ratio", "0.3"]) == 0
    text = capsys.readouterr().out
    assert "param_reduction" in text and "123 × 2 layers" in text


def test_layer_drop_from_a_text_file(model_dir, tmp_path):
    calib = tmp_path / "calib.txt"
    calib.write_text("some calibration text " * 50)

    class Tok:  # stands in for the checkpoint's tokenizer (the tiny model has none)
        eos_token_id = None

        def __call__(self, text, add_special_tokens=False, **_):
            return {"input_ids": [b % 128 for b in text.encode()]}

    record = run_compress(str(model_dir), "layer-drop", 0.5, options={"calibration": str(calib), "tokenizer": Tok()})
    assert len(record.details["removed_layers"]) == 1
    assert "tokenizer" not in record.options


@pytest.mark.parametrize(
    "args, message",
    [
        (["--method", "prunenet", "--ratio", "1.2"], "ratio 1.2"),
        (["--method", "no-such", "--ratio", "0.3"], "unknown compression method"),
        (["--method", "random-ffn", "--ratio", "0.3", "--option", "bogus=1"], "no such option"),
        (["--method", "random-ffn", "--ratio", "0.3", "--dtype", "int8"], "--dtype"),
    ],
)
def test_user_errors_are_one_line_exit_2(model_dir, capsys, args, message):
    assert main(["compress", str(model_dir), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


def test_missing_model_is_a_user_error(tmp_path, capsys):
    assert main(["compress", str(tmp_path / "nope"), "--ratio", "0.3"]) == 2


def test_methods_listing(capsys):
    assert main(["methods", "--json"]) == 0
    names = {row["name"] for row in json.loads(capsys.readouterr().out)}
    assert {"prunenet", "random-ffn", "magnitude-ffn", "layer-drop"} <= names


def test_model_ids_missing_locally_are_named(tmp_path):
    from complaw.models.io import resolve_model_id

    for missing in ("./nope", str(tmp_path / "nope"), "a/b/c"):
        with pytest.raises(ComplawError, match="no such directory"):
            resolve_model_id(missing)
    assert resolve_model_id("Qwen/Qwen2.5-0.5B") == "Qwen/Qwen2.5-0.5B"  # a hub id is left to transformers
    assert resolve_model_id(str(tmp_path)) == str(tmp_path)


def test_a_second_compress_reuses_the_cached_policy_and_policy_lists_and_clears_it(model_dir, tmp_path, capsys):
    from complaw.compress import prunenet as pn

    pn.clear_policy_cache()
    args = ["compress", str(model_dir), "--method", "prunenet", "--option", "episodes=2"]
    assert main([*args, "--ratio", "0.3", "--out", str(tmp_path / "a")]) == 0
    pn.clear_policy_cache()  # memory gone, as in a new process
    assert main([*args, "--ratio", "0.5", "--out", str(tmp_path / "b")]) == 0
    first = json.loads((tmp_path / "a" / "complaw.json").read_text())
    second = json.loads((tmp_path / "b" / "complaw.json").read_text())
    find = lambda meta: json.dumps(meta)  # noqa: E731 — the source sits in the compression record's details
    assert '"policy_source": "trained"' in find(first) and '"policy_source": "disk"' in find(second)
    capsys.readouterr()
    assert main(["policy", "list"]) == 0
    listed = capsys.readouterr().out
    assert pn.model_fingerprint(AutoModelForCausalLM.from_pretrained(str(model_dir))) in listed
    assert main(["policy", "clear"]) == 0
    assert "removed 1 cached PruneNet policy" in capsys.readouterr().out
    assert pn.cached_policies() == []
