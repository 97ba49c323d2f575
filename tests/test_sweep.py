"""Sweeps: spec and overrides, the store, resuming after SIGKILL, failing units, and Ray = local."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import torch
import yaml

from complaw.cli import main
from complaw.compress.registry import METHODS, register_method
from complaw.errors import ComplawError
from complaw.laws import load_results
from complaw.sweep import ResultStore, load_spec, run_sweep

STABLE = ["config_hash", "metric", "model", "method", "r", "D", "L0", "L", "param_reduction", "status"]


def spec_file(tiny, path, **extra):
    spec = {
        "name": "t", "models": [str(tiny / "model")], "methods": ["random-ffn", "magnitude-ffn"],
        "ratios": [0.25, 0.5, 0.75], "rft_samples": [0, 8], "threads": 1,
        "rft": {"seq_len": 32, "dataset": str(tiny / "train.txt"), "batch_size": 4, "lr": 3.0e-3},
        "eval": {"test_data": str(tiny / "test.jsonl"), "seq_len": 32, "max_blocks": 8, "tasks": []},
        "runtime": {"enabled": False}, "store": str(path / "results.db"), "report": None,
    }
    spec.update(extra)
    f = path / "spec.yaml"
    f.write_text(yaml.safe_dump(spec))
    return f


def stable_rows(db):
    with ResultStore(db) as st:
        frame = st.law_frame()
    return frame[STABLE].sort_values(["config_hash", "metric"]).reset_index(drop=True)


def test_spec_overrides_and_errors(tiny, tmp_path):
    f = spec_file(tiny, tmp_path)
    s = load_spec(f, ["ratios=[0.1,0.2]", "rft.lr=5e-4", "eval.max_blocks=4"])
    assert s.ratios == [0.1, 0.2] and s.rft.lr == 5e-4 and s.eval.max_blocks == 4
    units = s.units()
    assert len(units) == 2 * 2 and all(len(u.configs) == 2 for u in units)
    assert [c.rft.rft_samples for c in units[0].configs] == [0, 8]
    with pytest.raises(ComplawError, match="ratios"):
        load_spec(f, ["ratios=[1.5]"])
    with pytest.raises(ComplawError, match="no such file"):
        load_spec(tmp_path / "nope.yaml")
    with pytest.raises(ComplawError, match="key=value"):
        load_spec(f, ["ratios"])
    with pytest.raises(ComplawError, match="bogus"):
        load_spec(f, ["bogus=1"])
    assert load_spec("quick").name == "quick" and load_spec("demo").name == "demo"


def test_sweep_stores_everything_and_reruns_nothing(tiny, tmp_path):
    s = load_spec(spec_file(tiny, tmp_path, runtime={"seq_len": 8, "new_tokens": 2, "repeats": 1}))
    first = run_sweep(s, show_progress=False)
    assert first.units_run == 6 and first.counts == {"success": 12}
    again = run_sweep(s, show_progress=False)
    assert again.units_run == 0 and again.units_skipped == 6
    rows = load_results(tmp_path / "results.db")  # the law engine reads the store directly
    assert set(rows.frame["metric"]) == {"test_loss"} and len(rows.frame) == 12
    # D = 0 and D = 8 share one compression: same param_reduction, same compressed model
    with ResultStore(tmp_path / "results.db") as st:
        recs = st.records()
    by_unit = {}
    for r in recs:
        by_unit.setdefault((r.config.method, r.config.ratio), []).append(r)
    for pair in by_unit.values():
        assert pair[0].compressed == pair[1].compressed
        # the base runtime is timed once per unit, next to the compressed model's, and is S0 of its rows
        assert pair[0].base_latency_s == pair[1].base_latency_s and pair[0].base_latency_s > 0
    s0 = dict(zip(rows.frame["config_hash"], rows.frame["S0"], strict=True))
    assert all(s0[r.config_hash] == r.base_latency_s != r.base.prefill_latency_s for r in recs)


def test_sigkill_midway_then_resume_equals_uninterrupted(tiny, tmp_path):
    ref_dir, run_dir = tmp_path / "ref", tmp_path / "run"
    ref_dir.mkdir()
    run_dir.mkdir()
    many = {"ratios": [0.1, 0.25, 0.4, 0.5, 0.6, 0.75]}  # 12 units: room to kill it mid-way on a busy machine
    run_sweep(load_spec(spec_file(tiny, ref_dir, **many)), show_progress=False)
    f = spec_file(tiny, run_dir, **many)
    db = run_dir / "results.db"
    cmd = [sys.executable, "-m", "complaw", "sweep", str(f), "--no-report"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    stored = 0
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
        if db.exists():
            try:
                with sqlite3.connect(db, timeout=5) as con:
                    stored = con.execute("SELECT COUNT(*) FROM experiments").fetchone()[0]
            except sqlite3.OperationalError:
                continue
            if stored >= 4:
                break
    assert proc.poll() is None, "the sweep finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    with ResultStore(db) as st:
        before = {r.config_hash: r.finished_at for r in st.records()}
    assert 4 <= len(before) < 24
    resumed = run_sweep(load_spec(f), show_progress=False)
    assert resumed.units_skipped >= 2 and resumed.units_run <= 10
    with ResultStore(db) as st:
        after = {r.config_hash: r.finished_at for r in st.records()}
    assert all(after[h] == t for h, t in before.items())  # nothing finished was recomputed
    assert stable_rows(db).equals(stable_rows(ref_dir / "results.db"))  # nothing lost, same numbers


@pytest.fixture
def exploding_method():
    @register_method("explode-at-half", description="test-only: fails at ratio 0.5")
    def explode(model, ratio, *, seed=0):
        if ratio == 0.5:
            raise RuntimeError("injected failure at r=0.5")
        from complaw.compress.ffn import random_ffn

        return random_ffn(model, ratio, seed=seed)

    yield "explode-at-half"
    METHODS.unregister("explode-at-half")


def test_a_failing_unit_is_stored_and_excluded(tiny, tmp_path, exploding_method):
    s = load_spec(spec_file(tiny, tmp_path, methods=[exploding_method], report=str(tmp_path / "report"),
                            laws={"bootstrap": 20, "forms": ["sengupta2025", "pruning-law"]}))
    res = run_sweep(s, show_progress=False)
    assert res.counts == {"success": 4, "failed": 2}
    from complaw.report.build import sweep_report

    with ResultStore(tmp_path / "results.db", readonly=True) as st:
        sweep_report(st.law_frame(), s)
    html = (tmp_path / "report" / "index.html").read_text()
    assert "injected failure at r=0.5" in html  # the report lists the failure with its reason
    with ResultStore(tmp_path / "results.db") as st:
        failed = st.records("status = 'failed'")
    assert {r.config.ratio for r in failed} == {0.5} and "injected failure" in failed[0].error
    rows = load_results(tmp_path / "results.db")
    assert rows.dropped == {"status is not success": 2} and 0.5 not in set(rows.frame["r"])
    # a rerun keeps the stored failure; --retry-failed runs it again (and it fails again, for the same reason)
    assert run_sweep(s, show_progress=False).units_run == 0
    again = run_sweep(s, show_progress=False, retry_failed=True)
    assert again.units_run == 1 and again.counts == {"success": 4, "failed": 2}


def test_ray_executor_gives_the_same_records(tiny, tmp_path, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    import ray

    local_dir, ray_dir = tmp_path / "local", tmp_path / "ray"
    local_dir.mkdir()
    ray_dir.mkdir()
    over = {"methods": ["magnitude-ffn"], "ratios": [0.25, 0.5]}
    run_sweep(load_spec(spec_file(tiny, local_dir, **over)), show_progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        res = run_sweep(load_spec(spec_file(tiny, ray_dir, **over)), executor="ray", show_progress=False)
    finally:
        ray.shutdown()
    assert res.counts == {"success": 4}
    assert stable_rows(ray_dir / "results.db").equals(stable_rows(local_dir / "results.db"))
    assert torch.get_num_threads() >= 1


def test_unopenable_store_is_a_user_error(tmp_path, capsys):
    not_a_db = tmp_path / "notes.db"
    not_a_db.write_text("just text, not SQLite " * 100)
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    for path in (not_a_db, blocked / "results.db"):
        with pytest.raises(ComplawError, match="cannot be opened as a results store"):
            ResultStore(path)
    assert main(["results", str(not_a_db)]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_a_renamed_spec_reports_its_stored_experiments(tiny, tmp_path):
    """The report of a sweep covers its own experiments (by config hash) even when they were stored under
    another name; a renamed spec used to end in "table: the table has no rows" with exit 2."""
    from complaw.report.build import sweep_report

    s = load_spec(spec_file(tiny, tmp_path, methods=["random-ffn"], ratios=[0.25, 0.5, 0.75], rft_samples=[0]))
    run_sweep(s, show_progress=False)
    renamed = load_spec(spec_file(tiny, tmp_path, name="renamed", methods=["random-ffn"], ratios=[0.25, 0.5, 0.75],
                                  rft_samples=[0], report=str(tmp_path / "report")))
    with ResultStore(tmp_path / "results.db", readonly=True) as st:
        frame = st.law_frame()
    assert set(frame["sweep"]) == {"t"}
    out, lines = sweep_report(frame, renamed)
    assert (out / "index.html").is_file()
    assert "from 3 experiment rows" in lines[0], lines[0]  # r = 0.25, 0.5, 0.75 at D = 0, one metric
