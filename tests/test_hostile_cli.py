"""The hostile-input catalogue (#17) for the law engine, the sweep spec and the entry point.

Each row is (command line, message fragment): the command must exit 2 with one ``error:`` line naming the
input, no traceback, and leave every file it was given as it was. ``{table}``, ``{spec}``, ``{tmp}`` and
``{file}`` are filled in per test (a good results table, a good sweep spec, the test's directory, a plain
file that blocks a path). Model loading and the store have their own catalogues (test_hostile_models.py,
test_store_safety.py). Also here: exit codes propagate (130 on Ctrl-C, 143 on SIGTERM, with the store intact
and the sweep resumable; a sweep started with SIGINT ignored keeps ignoring it) and the CLI keeps library
warnings off the console.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
import warnings

import pytest
import yaml
from tests.hostile import refused_unchanged

from complaw import logs
from complaw.cli import main
from complaw.laws import simulate

TRUTH = {"alpha": 0.98, "beta": -1.18, "gamma": -0.14}


@pytest.fixture
def files(tmp_path, tiny):
    df = simulate("sengupta2025", TRUTH, seed=0)
    df["method"], df["metric"] = "prunenet", "avg_acc"
    table = tmp_path / "t.csv"
    df.to_csv(table, index=False)
    huge = df.copy()
    huge.loc[3, "L"] = 1e308
    huge.to_csv(tmp_path / "huge.csv", index=False)
    df[["model", "method"]].to_csv(tmp_path / "nolaw.csv", index=False)
    spaced = df.rename(columns={"L": "acc (avg)"})
    spaced.to_csv(tmp_path / "spaced.csv", index=False)
    spec = {"name": "t", "models": [str(tiny / "model")], "methods": ["random-ffn"], "ratios": [0.25],
            "rft_samples": [0], "threads": 1,
            "rft": {"seq_len": 32, "dataset": str(tiny / "train.txt"), "batch_size": 4},
            "eval": {"test_data": str(tiny / "test.jsonl"), "seq_len": 32, "max_blocks": 4, "tasks": []},
            "runtime": {"enabled": False}, "store": str(tmp_path / "results.db"), "report": None}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    (tmp_path / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "afile").write_text("a plain file: nothing can be created under it\n")
    return {"table": str(table), "spec": str(tmp_path / "spec.yaml"), "tmp": str(tmp_path),
            "file": str(tmp_path / "afile")}


CATALOGUE = [
    # law engine: numbers that are not finite, out of range, or ask for unbounded work
    ("speedup --b nan", "--b nan: must be a finite number"),
    ("speedup --b inf", "--b inf: must be a finite number"),
    ("speedup --b 1e308", "--b 1e+308: must lie in [-100, 100]"),
    ("speedup --b -0.67 --r 1.5", "--r 1.5: must lie in [0, 1)"),
    ("speedup --b -0.67 --a nan", "--a nan"),
    ("critical --beta nan", "--beta nan: must be a finite number"),
    ("critical --beta -1 --sigma 1.5", "--sigma 1.5: must lie in (0, 1)"),
    ("critical --beta -1 --r -0.2", "--r -0.2: must lie in [0, 1)"),
    ("plan --beta -1 --sigma 0.9 --frontier -3", "--frontier -3: must lie in [0, 10000]"),
    ("plan --beta -1 --sigma 0.9 --r-step 1e-9", "--r-step 1e-09: must lie in [0.0001, 0.5]"),
    ("plan --beta -1 --sigma 0.9 --d-max -1", "--d-max -1: must be ≥ 0"),
    ("plan --beta -1 --sigma 0.9 --r-max 1.2", "--r-max 1.2: must lie in (0, 1)"),
    ("plan --beta -1 --budget nan", "--budget nan: must be a finite number"),
    ("fit {table} -B 100000000", "--bootstrap 100000000: at most 100000 resamples"),
    ("fit {table} -B -5", "--bootstrap -5: must be ≥ 0"),
    ("fit {table} --seed 99999999999999999999", "--seed 99999999999999999999: must lie in [0, 4294967295]"),
    ("fit {table} --seed -1", "--seed -1: must lie in [0"),
    ("fit {table} --cluster nosuch", "--cluster 'nosuch': no such column in"),
    ("fit {table} --d-scale 0", "--d-scale 0: must be > 0"),
    ("fit {table} --eps nan", "--eps nan"),
    ("fit {table} --sigma 0", "--sigma 0: must lie in (0, 1)"),
    ("validate {table} --d-scale -1", "--d-scale -1: must be > 0"),
    ("fit {tmp}/huge.csv", "'L' is beyond ±1e+100 in 1 row(s)"),
    ("fit {tmp}/nolaw.csv", "no law columns (L, L0, r"),
    ("capacity int4 --r -1", "--r -1: must lie in [0, 1)"),
    ("capacity int4 --samples 0", "--samples 0: must be ≥ 4096"),
    ("capacity int4 --samples 100000000000", "--samples 100000000000: at most 268435456"),
    ("report {table} -B 100000000", "--bootstrap 100000000: at most 100000"),
    ("report {table} --sigma 2", "--sigma 2: must lie in (0, 1)"),
    # outputs that cannot be written are refused before any work
    ("report {table} --out {file}/r", "--out {file}/r: {file} is not a directory"),
    ("demo --example --out {file}/report", "--out {file}/report: {file} is not a directory"),
    ("sweep {spec} report={file}/r", "report {file}/r: {file} is not a directory"),
    ("sweep {spec} store={file}/results.db", "store {file}/results.db: {file} is not a directory"),
    # sweep specs
    ("sweep {tmp}/binary.yaml", "binary.yaml: not a text file"),
    ("sweep {spec} report=reports/{{foo}}", "the only placeholder is {{name}}"),
    ("sweep {spec} models=[zoo:llama-xs,zoo:llama-xs]", "model 'zoo:llama-xs' is listed twice"),
    ("sweep {spec} ratios=[0.25,0.25]", "ratio 0.25 is listed twice"),
    ("sweep {spec} seeds=[1,1]", "seed 1 is listed twice"),
]


@pytest.mark.parametrize("line, fragment", CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_bad_input_is_one_line_and_exit_2(files, line, fragment, capsys):
    refused_unchanged(capsys, line, fragment, files)


def test_a_column_name_with_spaces_can_be_mapped(files, capsys):
    code = main(["fit", f"{files['tmp']}/spaced.csv", "--map", "L=acc (avg)", "-B", "0"])
    assert code == 0, capsys.readouterr().err
    assert "sengupta2025" in capsys.readouterr().out


def test_a_returned_exit_code_is_propagated(monkeypatch):
    import typer

    from complaw.cli import app

    @app.command("exit-with-5", hidden=True)
    def _five() -> int:
        raise typer.Exit(5)

    try:
        assert main(["exit-with-5"]) == 5
    finally:
        app.registered_commands[:] = [c for c in app.registered_commands if c.name != "exit-with-5"]


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("complaw ")


def test_library_warnings_go_to_the_log_file(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("COMPLAW_CACHE", str(tmp_path / "cache"))
    logs.capture()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            logs.capture()  # inside catch_warnings, as pytest runs tests
            warnings.warn("past_key_values is deprecated", FutureWarning, stacklevel=1)
            import logging

            logging.getLogger("transformers.modeling_utils").warning("a transformers warning")
    finally:
        logs.release()
    captured = capfd.readouterr()
    assert "deprecated" not in captured.err and "transformers warning" not in captured.err
    text = (tmp_path / "cache" / "complaw.log").read_text()
    assert "FutureWarning: past_key_values is deprecated" in text and "a transformers warning" in text


def _start_sweep(tiny, tmp_path, sigint=signal.SIG_DFL):
    """A sweep of 16 tiny units in a child process (SIGINT as given: the test runner's own may be ignored, as
    under nohup or a background shell), once it has stored two experiments."""
    _spec(tiny, tmp_path)
    db = tmp_path / "results.db"
    cmd = [sys.executable, "-m", "complaw", "sweep", str(tmp_path / "spec.yaml"), "--no-report"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, sigint))
    deadline, stored = time.time() + 300, 0
    while time.time() < deadline and proc.poll() is None and stored < 2:
        time.sleep(0.1)
        if db.exists():
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as con:
                    stored = con.execute("SELECT COUNT(*) FROM experiments").fetchone()[0]
            except sqlite3.OperationalError:
                continue
    assert proc.poll() is None, "the sweep finished before it could be interrupted"
    return proc, db


def _stopped_cleanly_and_resumes(tiny, tmp_path, db):
    """The store is intact, holds what finished (no claim left), and a rerun completes the sweep."""
    total = 8 * 2
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        kept = con.execute("SELECT COUNT(*) FROM experiments WHERE status = 'success'").fetchone()[0]
        assert con.execute("SELECT COUNT(*) FROM claims").fetchone()[0] == 0  # released
    assert 2 <= kept < total
    assert main(["sweep", str(tmp_path / "spec.yaml"), "--no-report"]) == 0  # resumes and completes
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        assert con.execute("SELECT COUNT(*) FROM experiments WHERE status = 'success'").fetchone()[0] == total


def test_ctrl_c_exits_130_and_the_sweep_resumes(tiny, tmp_path):
    proc, db = _start_sweep(tiny, tmp_path)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert "interrupted" in out + err and "Traceback" not in err
    assert "Warning" not in err and "fatal:" not in err  # library warnings go to the log file
    _stopped_cleanly_and_resumes(tiny, tmp_path, db)


def test_sigterm_exits_143_and_a_sweep_started_ignoring_sigint_keeps_ignoring_it(tiny, tmp_path):
    proc, db = _start_sweep(tiny, tmp_path, sigint=signal.SIG_IGN)  # as under nohup or `cmd &`
    proc.send_signal(signal.SIGINT)
    time.sleep(1.0)
    assert proc.poll() is None, proc.communicate()  # still running: SIGINT stays ignored
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, (out, err)
    assert "terminated" in out + err and "Traceback" not in err
    _stopped_cleanly_and_resumes(tiny, tmp_path, db)


def _spec(tiny, tmp_path):
    spec = {"name": "t", "models": [str(tiny / "model")], "methods": ["random-ffn"],
            "ratios": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], "rft_samples": [0, 8], "threads": 1,
            "rft": {"seq_len": 32, "dataset": str(tiny / "train.txt"), "batch_size": 4},
            "eval": {"test_data": str(tiny / "test.jsonl"), "seq_len": 32, "max_blocks": 8, "tasks": []},
            "runtime": {"enabled": False}, "store": str(tmp_path / "results.db"), "report": None}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_lm_eval_git_lookup_is_quiet_outside_a_checkout(tmp_path, monkeypatch, capfd):
    import lm_eval.evaluator as evaluator

    from complaw.evaluate.extrinsic import _quiet_git_hash

    monkeypatch.chdir(tmp_path)  # not a git checkout
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    original = evaluator.get_git_commit_hash
    with _quiet_git_hash():
        assert evaluator.get_git_commit_hash() is None
    assert evaluator.get_git_commit_hash is original
    assert "fatal" not in capfd.readouterr().err
