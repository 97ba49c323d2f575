"""Commands create nothing until their input is valid (#26): the hostile-file catalogue.

Each case runs ``complaw.cli.main(argv)``: a bad input exits 2 with one ``error:`` line naming it, no
traceback, and no file or folder created or changed — not the output directory, not a ``-journal`` next to a
device, not a cache folder. Also here: outputs never land on an input (another model's checkpoint, the store
or table being read), an unusable cache is one line for the commands that need it and invisible to the
others, and a broken plugin is a warning, not a crash.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import types
from pathlib import Path

import pytest
import yaml
from tests.hostile import refused, refused_unchanged, tree

from complaw import logs, registry
from complaw.cli import main
from complaw.laws import simulate
from complaw.sweep import ResultStore

TRUTH = {"alpha": 0.98, "beta": -1.18, "gamma": -0.14}
COMPRESS = ["--method", "random-ffn", "--ratio", "0.3"]


@pytest.fixture
def files(tmp_path, tiny):
    """A results table, a sweep spec on the tiny model, a complaw store named like a table, a plain file."""
    df = simulate("sengupta2025", TRUTH, seed=0)
    df["method"], df["metric"] = "prunenet", "avg_acc"
    df.to_csv(tmp_path / "t.csv", index=False)
    spec = {"name": "t", "models": [str(tiny / "model")], "methods": ["random-ffn"], "ratios": [0.25],
            "rft_samples": [0], "threads": 1,
            "rft": {"seq_len": 32, "dataset": str(tiny / "train.txt"), "batch_size": 4},
            "eval": {"test_data": str(tiny / "test.jsonl"), "seq_len": 32, "max_blocks": 4, "tasks": []},
            "runtime": {"enabled": False}, "store": str(tmp_path / "results.db"), "report": None}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    ResultStore(tmp_path / "store.csv").close()  # a complaw store whose name ends in .csv
    (tmp_path / "afile").write_text("a plain file\n")
    os.mkfifo(tmp_path / "fifo")
    return {"tmp": str(tmp_path), "table": str(tmp_path / "t.csv"), "spec": str(tmp_path / "spec.yaml"),
            "file": str(tmp_path / "afile"), "fifo": str(tmp_path / "fifo")}


CATALOGUE = [
    # a store that is not a regular file is refused before SQLite opens it (it would make "-journal" files)
    ("sweep {spec} store=/dev/null --no-report", "store /dev/null: cannot be opened as a results store: it is "
                                                 "not a regular file but a character device"),
    ("sweep {spec} store={fifo} --no-report", "it is not a regular file but a named pipe (FIFO)"),
    ("sweep {spec} store={tmp} --no-report", "store {tmp}: is a directory"),
    ("results /dev/null", "store /dev/null: not a complaw results store: it is not a regular file"),
    ("results {fifo}", "not a regular file but a named pipe"),
    # every option is checked before the store, the report folder or the zoo folder is created
    ("sweep {spec} --executor bogus", "--executor 'bogus': unknown; use one of local, ray"),
    ("zoo build --only bogus --out {tmp}/zoo", "--only bogus: unknown; choose from splits"),
    ("report {table} --interval bogus --out {tmp}/rep", "--interval 'bogus': unknown; use one of auto"),
    ("report {table} --weights bogus --out {tmp}/rep", "--weights 'bogus': unknown; use one of none"),
    ("report {table} --group nosuch --out {tmp}/rep", "--group 'nosuch': no such column in"),
    ("report {table} --form nosuch --out {tmp}/rep", "nosuch"),
    # outputs never overwrite the input they read
    ("results {tmp}/store.csv --export {tmp}/store.csv", "--export {tmp}/store.csv: is the store it reads"),
    ("report {tmp}/rep/comparison.csv --out {tmp}/rep", "the report would overwrite the results table it reads"),
]


@pytest.mark.parametrize("line, fragment", CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_bad_input_creates_nothing(files, line, fragment, capsys):
    if "{tmp}/rep/comparison.csv" in line:  # a report folder whose comparison.csv is given as the table
        os.mkdir(Path(files["tmp"]) / "rep")
        shutil.copy(files["table"], Path(files["tmp"]) / "rep" / "comparison.csv")
    journal = Path("/dev/null-journal")
    had_journal = journal.exists()
    refused_unchanged(capsys, line, fragment, files)
    assert journal.exists() == had_journal


def test_report_direction_that_contradicts_the_metric_creates_no_folder(files, capsys):
    out = Path(files["tmp"]) / "rep"
    refused(capsys, main(["report", files["table"], "--direction", "lower", "--out", str(out), "-B", "0"]),
            "--direction lower: contradicts metric")
    assert not out.exists()


# --- read commands never create folders; an unusable cache ------------------------------------------------------
@pytest.fixture
def real_policy_cache(monkeypatch):
    """The policy cache where complaw puts it ($COMPLAW_CACHE/prunenet), not conftest's private folder."""
    monkeypatch.undo()  # conftest's autouse fixture pointed prunenet.policy_cache_dir at a test folder
    return monkeypatch


@pytest.mark.parametrize("cmd", [["policy", "list"], ["policy", "clear"], ["zoo", "clear", "smollm2-135m"],
                                 ["zoo", "list"]])
def test_read_commands_create_no_cache_folder(real_policy_cache, tmp_path, cmd, capsys):
    cache = tmp_path / "no" / "cache"
    real_policy_cache.setenv("COMPLAW_CACHE", str(cache))
    assert main(cmd) == 0, capsys.readouterr().err
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("where", ["/dev/null", "{file}", "{file}/sub"])
@pytest.mark.parametrize("cmd", [["policy", "list"], ["policy", "clear"],
                                 # PruneNet's policy cache: refused before the model loads (no progress bar)
                                 ["compress", "zoo:llama-xs", "--method", "prunenet", "--ratio", "0.3"]])
def test_a_cache_that_is_not_a_directory_is_one_line(real_policy_cache, files, where, cmd, capsys):
    cache = where.format(**files)
    real_policy_cache.setenv("COMPLAW_CACHE", cache)
    before = tree(files["tmp"])
    refused(capsys, main(cmd), f"COMPLAW_CACHE={cache}", "is not a directory", "set COMPLAW_CACHE")
    assert tree(files["tmp"]) == before


def test_commands_that_do_not_need_the_cache_work_without_one(files, monkeypatch, capsys):
    monkeypatch.setenv("COMPLAW_CACHE", "/dev/null")
    assert main(["fit", files["table"], "-B", "0"]) == 0, capsys.readouterr().err
    assert main(["critical", "--beta", "-1", "--sigma", "0.8"]) == 0
    assert main(["forms"]) == 0
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("cache", ["/dev/null", "{file}"])
def test_warnings_with_an_unusable_cache_go_to_a_temporary_log(files, monkeypatch, tmp_path, cache, capfd):
    monkeypatch.setenv("COMPLAW_CACHE", cache.format(**files))
    monkeypatch.setattr(logs, "fallback_log_path", lambda: tmp_path / "tmp" / "complaw-me.log")
    (tmp_path / "tmp").mkdir()
    logs.capture()
    try:
        logging.getLogger("transformers.modeling_utils").warning("a transformers warning")
    finally:
        logs.release()
    assert "transformers warning" not in capfd.readouterr().err
    (log,) = (tmp_path / "tmp").glob("complaw-*.log")
    assert "a transformers warning" in log.read_text()
    assert Path(files["file"]).read_text() == "a plain file\n"


def test_nowhere_to_log_drops_the_warning_silently(monkeypatch, tmp_path, capfd):
    monkeypatch.setenv("COMPLAW_CACHE", "/dev/null")
    monkeypatch.setattr(logs, "fallback_log_path", lambda: Path("/dev/null/complaw.log"))
    logs.capture()
    try:
        logging.getLogger("transformers").warning("dropped")
    finally:
        logs.release()
    err = capfd.readouterr().err
    assert "dropped" not in err and "Logging error" not in err


# --- a model is never saved over another model, nor into its folder -----------------------------------------------
@pytest.fixture
def checkpoint(tiny, tmp_path) -> Path:
    """Another model's checkpoint folder (config.json, model.safetensors, tokenizer)."""
    return Path(shutil.copytree(tiny / "model", tmp_path / "other"))


def test_compress_refuses_an_out_that_holds_another_checkpoint(tiny, checkpoint, tmp_path, capsys):
    before = tree(tmp_path)
    refused(capsys, main(["compress", str(tiny / "model"), *COMPRESS, "--out", str(checkpoint)]),
            f"--out {checkpoint}: already holds a model checkpoint", "config.json", "--overwrite")
    refused(capsys, main(["compress", str(tiny / "model"), *COMPRESS, "--out", str(checkpoint / "sub")]),
            f"is inside the model checkpoint {checkpoint}")
    assert tree(tmp_path) == before


def test_compress_overwrite_replaces_another_checkpoint_but_never_its_source(tiny, checkpoint, capsys):
    refused(capsys, main(["compress", str(checkpoint), *COMPRESS, "--out", str(checkpoint), "--overwrite"]),
            "is (inside) the source")
    before = tree(checkpoint)
    assert main(["compress", str(tiny / "model"), *COMPRESS, "--out", str(checkpoint), "--overwrite"]) == 0
    assert tree(checkpoint)["model.safetensors"] != before["model.safetensors"]
    assert json.loads((checkpoint / "complaw.json").read_text())["record"]["method"] == "random-ffn"


@pytest.mark.parametrize("key, delta", [("intermediate_size", 3), ("hidden_size", 8)])
def test_a_config_that_disagrees_with_the_weights_is_one_line(checkpoint, key, delta, capsys):
    cfg = json.loads((checkpoint / "config.json").read_text())
    cfg[key] += delta
    (checkpoint / "config.json").write_text(json.dumps(cfg))
    before = tree(checkpoint.parent)
    line = refused(capsys, main(["compress", str(checkpoint), *COMPRESS]),
                   str(checkpoint), "config.json and the weights disagree", "the weights hold")
    assert ".weight" in line
    assert tree(checkpoint.parent) == before


# --- a broken plugin is a warning, once; the commands that do not need it work ----------------------------------
@pytest.fixture
def fresh_plugins(monkeypatch):
    """The plugin loader's memory of what it imported and what failed, restored after the test."""
    monkeypatch.setattr(registry, "_plugins_failed", {})
    monkeypatch.setattr(registry, "_plugins_loaded", set(registry._plugins_loaded))
    return monkeypatch


def _warned_once(capsys, *fragments) -> None:
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("warning: plugin "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_a_missing_plugin_module_is_a_warning(files, fresh_plugins, capsys):
    fresh_plugins.setenv("COMPLAW_PLUGINS", os.environ.get("COMPLAW_PLUGINS", "") + ",nonexistent_module")
    assert main(["fit", files["table"], "-B", "0"]) == 0
    _warned_once(capsys, "plugin nonexistent_module: cannot be imported", "ModuleNotFoundError", "COMPLAW_PLUGINS")
    assert main(["fit", files["table"], "-B", "0"]) == 0
    assert "warning" not in capsys.readouterr().err  # once per process
    assert main(["methods"]) == 0  # the registries work, without the plugin's entries


def test_a_broken_entry_point_is_a_warning(files, fresh_plugins, capsys):
    def load():
        raise ImportError("No module named 'gone_package'")

    ep = types.SimpleNamespace(name="broken", value="gone_package:plugin", load=load)
    fresh_plugins.setattr(registry, "_read_entry_points", lambda: [ep])
    fresh_plugins.setattr(registry, "_entry_points", [])
    fresh_plugins.setattr(registry, "_entry_points_read", False)
    assert main(["fit", files["table"], "-B", "0"]) == 0
    _warned_once(capsys, "plugin entry point broken (gone_package:plugin): cannot be imported", "gone_package")
    assert main(["critical", "--beta", "-1", "--sigma", "0.8"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_a_plugin_that_raises_on_import_is_a_warning(files, fresh_plugins, tmp_path, capsys):
    bad = tmp_path / "raises.py"
    bad.write_text("raise RuntimeError('plugin bug')\n")
    fresh_plugins.setenv("COMPLAW_PLUGINS", f"{os.environ.get('COMPLAW_PLUGINS', '')},{bad}")
    assert main(["fit", files["table"], "-B", "0"]) == 0
    _warned_once(capsys, f"plugin {bad}: cannot be imported (RuntimeError: plugin bug)")


LONG = "x" * 300  # a name longer than any file system allows (ENAMETOOLONG wherever the path is first touched)


@pytest.mark.parametrize("line", [
    f"fit {LONG}.csv", f"report {LONG}.csv", f"sweep {LONG}.yaml", f"run --config {LONG}.yaml",
    f"compress {LONG} --method random-ffn --ratio 0.3",
    f"compress zoo:llama-xs --method random-ffn --ratio 0.3 --out {{tmp}}/{LONG}",
    f"run zoo:llama-xs --no-tasks --out {{tmp}}/{LONG}.json", f"run zoo:llama-xs --test-data {LONG}.txt",
    f"zoo example --out {{tmp}}/{LONG}.csv", f"report {{table}} --out {{tmp}}/{LONG}",
    f"sweep {{spec}} store={{tmp}}/{LONG}.db",
    f"compress zoo:llama-xs --method layer-drop --ratio 0.3 --option calibration={LONG}.txt",
], ids=lambda line: line.replace(LONG, "LONG")[:60])
def test_a_path_too_long_is_one_line(files, line, capsys, monkeypatch):
    monkeypatch.chdir(files["tmp"])
    refused_unchanged(capsys, line, "the path is longer than the file system allows", files)


def test_a_model_is_never_saved_into_a_folder_of_other_files(files, capsys, monkeypatch):
    """`compress --out ""` reads as the working directory: a checkpoint would be scattered among its files."""
    monkeypatch.chdir(files["tmp"])
    for out in ("", files["tmp"]):
        refused_unchanged(capsys, ["compress", "zoo:llama-xs", "--method", "random-ffn", "--ratio", "0.3",
                                   "--out", out], "is a folder that already holds other files", files)
