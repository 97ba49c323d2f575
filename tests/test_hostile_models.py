"""Hostile and broken model inputs (#17): each ends in one line on stderr and exit code 2, before any work.

Checkpoints that are empty, half-copied, pickled or mislabelled; an ``--out`` that would overwrite its own
source or cannot be written; devices, seeds and data files that cannot be used; a hub id on a machine
without the hub. Every model is built here on the spot or is the bundled zoo's: nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest
import torch
from tests.hostile import refused
from transformers import LlamaConfig, LlamaForCausalLM

from complaw.cli import main
from complaw.models import io

COMPRESS = ["--method", "random-ffn", "--ratio", "0.3"]
RUN_FAST = ["--no-tasks", "--no-runtime", "--test-blocks", "2", "--seq-len", "16"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny Llama checkpoint (config.json + model.safetensors), never modified by a test."""
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64)
    path = tmp_path_factory.mktemp("m") / "tiny"
    LlamaForCausalLM(config).save_pretrained(path)
    return path


def copy_of(model_dir: Path, tmp_path: Path, name: str = "copy") -> Path:
    return Path(shutil.copytree(model_dir, tmp_path / name))


def digests(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.rglob("*")) if p.is_file()}


# --- pickled weights -----------------------------------------------------------------------------------
def pickled_dir(model_dir: Path, tmp_path: Path) -> Path:
    """The tiny model with its weights as pytorch_model.bin (a pickle) and no safetensors."""
    d = tmp_path / "pickled"
    d.mkdir()
    shutil.copy(model_dir / "config.json", d)
    model = LlamaForCausalLM.from_pretrained(model_dir)
    torch.save(model.state_dict(), d / "pytorch_model.bin")
    return d


def test_pickled_weights_are_refused_without_allow_pickle(model_dir, tmp_path, capsys, monkeypatch):
    d = pickled_dir(model_dir, tmp_path)
    capsys.readouterr()  # the progress bars of building it

    def no_unpickling(*args, **kwargs):
        raise AssertionError("torch.load called without --allow-pickle")

    with monkeypatch.context() as m:
        m.setattr(torch, "load", no_unpickling)
        refused(capsys, main(["compress", str(d), *COMPRESS]), str(d), "pytorch_model.bin", "pickled",
                "safetensors", "--allow-pickle")
        refused(capsys, main(["run", str(d), *RUN_FAST]), "pickled", "--allow-pickle")
    assert main(["compress", str(d), *COMPRESS, "--allow-pickle", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["method"] == "random-ffn"


def test_allow_pickle_help_names_the_risk(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    for command in ("compress", "run"):
        assert main([command, "--help"]) == 0
        text = " ".join(re.sub("[│╭╮╰╯─]", " ", capsys.readouterr().out).split())
        assert "--allow-pickle" in text and "can run arbitrary code" in text


def test_loads_are_safetensors_only_and_without_remote_code(model_dir, monkeypatch):
    from transformers import AutoModelForCausalLM

    seen = {}
    real = AutoModelForCausalLM.from_pretrained

    def spy(path, **kwargs):
        seen.update(kwargs)
        return real(path, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", spy)
    io.load(str(model_dir))
    assert seen["use_safetensors"] is True and seen["trust_remote_code"] is False


# --- --out that would overwrite the source ---------------------------------------------------------------
@pytest.mark.parametrize("where", [".", "sub", "sub/deeper"])
def test_out_equal_to_or_inside_the_source_is_refused(model_dir, tmp_path, capsys, where):
    src = copy_of(model_dir, tmp_path)
    before = digests(src)
    out = src if where == "." else src / where
    refused(capsys, main(["compress", str(src), *COMPRESS, "--out", str(out)]), "--out", "overwrite")
    assert digests(src) == before and not (src / "sub").exists()


# --- broken checkpoint directories ------------------------------------------------------------------------
def _empty(d: Path) -> None:
    for p in d.iterdir():
        p.unlink()


def _no_config(d: Path) -> None:
    (d / "config.json").unlink()


def _garbage_config(d: Path) -> None:
    (d / "config.json").write_text("{this is not json")


def _truncated(d: Path) -> None:
    f = d / "model.safetensors"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])


def _unknown_type(d: Path) -> None:
    cfg = json.loads((d / "config.json").read_text())
    cfg["model_type"] = "nosuchfamily"
    (d / "config.json").write_text(json.dumps(cfg))


def _garbage_meta(d: Path) -> None:
    (d / "complaw.json").write_text("\x00garbage{")


def _damaged_slicegpt_meta(d: Path) -> None:
    (d / "complaw.json").write_text(json.dumps({"format": "slicegpt", "slicegpt": {"structure": "nonsense"}}))


def _no_weights(d: Path) -> None:
    (d / "model.safetensors").unlink()


@pytest.mark.parametrize("damage, fragment", [
    (_empty, "empty directory"),
    (_no_config, "no config.json"),
    (_garbage_config, "config.json is not valid JSON"),
    (_truncated, "model.safetensors is truncated"),
    (_unknown_type, "model_type 'nosuchfamily'"),
    (_garbage_meta, "complaw.json is not valid JSON"),
    (_damaged_slicegpt_meta, "SliceGPT structure is damaged"),
    (_no_weights, "no model.safetensors"),
])
def test_broken_checkpoints_are_one_line(model_dir, tmp_path, capsys, damage, fragment):
    d = copy_of(model_dir, tmp_path)
    damage(d)
    refused(capsys, main(["compress", str(d), *COMPRESS]), str(d), fragment)


@pytest.mark.parametrize("damage, fragment", [
    (_truncated, "model.safetensors is truncated"),
    (_garbage_config, "config.json is not valid JSON"),
    (_garbage_meta, "complaw.json is not valid JSON"),
])
def test_broken_checkpoints_are_refused_by_run_before_any_work(model_dir, tmp_path, capsys, damage, fragment):
    d = copy_of(model_dir, tmp_path)
    damage(d)
    refused(capsys, main(["run", str(d), *RUN_FAST]), str(d), fragment)


# --- devices and seeds ---------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["compress", "run"])
def test_unknown_device_is_one_line(model_dir, capsys, command):
    refused(capsys, main([command, str(model_dir), *COMPRESS, "--device", "nosuch"]), "--device 'nosuch'")
    refused(capsys, main([command, str(model_dir), *COMPRESS, "--device", "meta"]), "--device meta")


@pytest.mark.parametrize("command", ["compress", "run"])
def test_cuda_on_a_cpu_only_torch_is_one_line(model_dir, capsys, monkeypatch, command):
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.version, "hip", None, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    line = refused(capsys, main([command, str(model_dir), *COMPRESS, "--device", "cuda"]))
    assert line == "error: --device cuda: this torch build has no CUDA; use --device cpu"


@pytest.mark.parametrize("command", ["compress", "run"])
@pytest.mark.parametrize("seed", ["99999999999999999999", "-1"])
def test_seeds_out_of_range_are_one_line(model_dir, capsys, command, seed):
    refused(capsys, main([command, str(model_dir), *COMPRESS, "--seed", seed]), f"--seed {seed}")


# --- outputs that cannot be written ---------------------------------------------------------------------
def test_unwritable_compress_out_is_refused_before_loading(model_dir, tmp_path, capsys, monkeypatch):
    (tmp_path / "a-file").write_text("x")

    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded before --out was checked")

    monkeypatch.setattr("complaw.models.load", no_loading)
    out = tmp_path / "a-file" / "out"
    refused(capsys, main(["compress", str(model_dir), *COMPRESS, "--out", str(out)]), "--out", str(out))


def test_unwritable_run_out_is_refused_before_the_experiment(tmp_path, capsys, monkeypatch):
    (tmp_path / "a-file").write_text("x")

    def no_work(*args, **kwargs):
        raise AssertionError("the experiment ran before --out was checked")

    monkeypatch.setattr("complaw.recipe.run_unit", no_work)
    out = tmp_path / "a-file" / "record.json"
    refused(capsys, main(["run", "zoo:llama-xs", *RUN_FAST, "--out", str(out)]), "--out", str(out))


def test_a_run_record_that_cannot_be_written_at_the_end_goes_to_a_fallback(tmp_path, capsys, monkeypatch):
    import tempfile

    from complaw import recipe

    out = tmp_path / "sub" / "record.json"  # writable when checked; "sub" becomes a file during the run

    def run_unit(cfgs, **_):
        (tmp_path / "sub").write_text("in the way")
        return [recipe.ExperimentRecord(config_hash=c.config_hash(), config=c, status="success") for c in cfgs]

    monkeypatch.setattr(recipe, "run_unit", run_unit)
    fallback = tmp_path / "fallback"
    fallback.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(fallback))
    assert main(["run", "zoo:llama-xs", *RUN_FAST, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    kept = fallback / "record.json"
    assert f"written to {kept}" in err and "Traceback" not in err
    assert json.loads(kept.read_text())["status"] == "success"


# --- data and policy files named by options -----------------------------------------------------------
def test_calibration_files_are_checked_before_loading(model_dir, tmp_path, capsys):
    calibrate = ["--method", "layer-drop", "--ratio", "0.5"]
    missing = tmp_path / "missing.txt"
    refused(capsys, main(["compress", str(model_dir), *calibrate, "--option", f"calibration={missing}"]),
            f"calibration {missing}", "no such file")
    refused(capsys, main(["compress", str(model_dir), *calibrate, "--option", f"calibration={tmp_path}"]),
            f"calibration {tmp_path}", "directory")
    binary = tmp_path / "calib.txt"
    binary.write_bytes(bytes(range(256)) * 8)
    refused(capsys, main(["compress", str(model_dir), *calibrate, "--option", f"calibration={binary}"]),
            f"calibration {binary}", "not UTF-8")
    refused(capsys, main(["run", str(model_dir), *RUN_FAST, "--method", "slicegpt", "--calibration", str(missing)]),
            f"--calibration {missing}", "no such file")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_calibration_file_is_one_line(model_dir, tmp_path, capsys):
    f = tmp_path / "calib.txt"
    f.write_text("text " * 100)
    f.chmod(0)
    refused(capsys, main(["compress", str(model_dir), "--method", "layer-drop", "--ratio", "0.5",
                          "--option", f"calibration={f}"]), str(f), "cannot be read")


def test_test_data_files_are_one_line(tmp_path, capsys):
    run = ["run", "zoo:llama-xs", *RUN_FAST]
    missing = tmp_path / "missing.txt"
    refused(capsys, main([*run, "--test-data", str(missing)]), f"--test-data {missing}", "no such file")
    refused(capsys, main([*run, "--test-data", str(tmp_path)]), f"--test-data {tmp_path}", "directory")
    blob = tmp_path / "blob.bin"
    blob.write_bytes(bytes(range(256)) * 8)
    refused(capsys, main([*run, "--test-data", str(blob)]), str(blob), "unknown text file type")
    binary_txt = tmp_path / "blob.txt"
    binary_txt.write_bytes(bytes(range(256)) * 8)
    refused(capsys, main([*run, "--test-data", str(binary_txt)]), str(binary_txt), "not UTF-8")


def test_prunenet_policy_files_are_one_line(model_dir, tmp_path, capsys):
    prune = ["compress", str(model_dir), "--method", "prunenet", "--ratio", "0.3", "--option", "episodes=1"]
    garbage = tmp_path / "policy.safetensors"
    garbage.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header}")
    refused(capsys, main([*prune, "--option", f"policy={garbage}"]), str(garbage), "not a complaw PruneNet policy")
    refused(capsys, main([*prune, "--option", f"policy={tmp_path}"]), f"policy {tmp_path}", "directory")
    (tmp_path / "a-file").write_text("x")
    unwritable = tmp_path / "a-file" / "policy.safetensors"
    refused(capsys, main([*prune, "--option", f"policy={unwritable}"]), f"policy {unwritable}")


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_include_path_must_be_a_directory(tmp_path, capsys, kind):
    path = tmp_path / "nonexistent"
    if kind == "file":
        path.write_text("task: x")
    refused(capsys, main(["run", "zoo:llama-xs", *RUN_FAST, "--include-path", str(path)]),
            f"--include-path {path}", "no such directory" if kind == "missing" else "not a directory")


# --- a hub id without the hub ------------------------------------------------------------------------------
@pytest.fixture
def no_hub(tmp_path, monkeypatch):
    """An unreachable hub and an empty Hugging Face cache; offline switches restored afterwards."""
    import huggingface_hub.constants as hub_constants

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", hub_constants.HF_HUB_OFFLINE)
    monkeypatch.setattr(io, "_HUB", {})
    asked = []

    def unreachable(host, port, timeout_s):
        asked.append((host, port))
        return False

    monkeypatch.setattr(io, "_can_connect", unreachable)
    return asked


@pytest.mark.parametrize("command", ["compress", "run"])
def test_a_hub_id_without_the_hub_is_one_line_and_quick(no_hub, capsys, command):
    start = time.perf_counter()
    code = main([command, "someorg/nosuchmodel", *COMPRESS])
    elapsed = time.perf_counter() - start
    refused(capsys, code, "model 'someorg/nosuchmodel': not a local directory and the Hugging Face hub cannot "
            "be reached (offline); pass a local checkpoint directory, zoo:NAME or real:NAME")
    assert elapsed < 5
    assert no_hub == [("huggingface.co", 443)]  # asked once
    assert os.environ["HF_HUB_OFFLINE"] == "1"  # offline for the rest of the process: no retries anywhere


def test_user_offline_mode_is_honoured_without_asking_the_hub(no_hub, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    refused(capsys, main(["compress", "someorg/nosuchmodel", *COMPRESS]), "cannot be reached (offline)")
    assert no_hub == []


def test_a_hub_id_in_the_local_cache_passes_offline(no_hub, tmp_path):
    snapshot = tmp_path / "hf" / "hub" / "models--someorg--cached" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc123")
    assert io.in_hub_cache("someorg/cached") and not io.in_hub_cache("someorg/other")
    assert io.check_model("someorg/cached") == "someorg/cached"
