"""The results store under hostile input and shared use (#17): readers never write, a file that is not a
complaw store is refused, a corrupt record does not hide the others, and two sweeps on one store never
compute the same unit twice."""

import hashlib
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from complaw.cli import main
from complaw.compress.registry import METHODS, register_method
from complaw.errors import ComplawError
from complaw.laws.data import read_table
from complaw.recipe import ExperimentConfig, ExperimentRecord, Metrics
from complaw.sweep import ResultStore, load_spec, run_sweep
from complaw.sweep.store import APPLICATION_ID, SCHEMA_VERSION, ClaimKeeper

OLD_SCHEMA = """
CREATE TABLE experiments (
    config_hash TEXT PRIMARY KEY, sweep TEXT, model TEXT, method TEXT, ratio REAL, rft_samples INTEGER,
    seed INTEGER, status TEXT, error TEXT, finished_at TEXT, record TEXT NOT NULL);
CREATE TABLE bases (base_key TEXT PRIMARY KEY, model TEXT, metrics TEXT NOT NULL, created_at TEXT);
CREATE TABLE law_rows (
    config_hash TEXT, metric TEXT, sweep TEXT, model TEXT, N REAL, method TEXT, direction TEXT, r REAL,
    D REAL, D_tokens REAL, seed INTEGER, L0 REAL, L REAL, S REAL, S0 REAL, param_reduction REAL,
    status TEXT, error TEXT, PRIMARY KEY (config_hash, metric));
"""


# --- helpers ---------------------------------------------------------------------------------------------------
def state(path: Path) -> tuple:
    """What must not change when a file is only read: its bytes, its mtime and its directory's entries."""
    return (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns,
            sorted(os.listdir(path.parent)))


def record(r: float, loss: float = 3.0, method: str = "prunenet") -> ExperimentRecord:
    cfg = ExperimentConfig(model="zoo:llama-xs", method=method, ratio=r)
    base = Metrics(test_loss=2.5, perplexity=12.2, test_tokens=100, params=1000, prefill_latency_s=0.01)
    rec = Metrics(test_loss=loss + r, perplexity=30.0, test_tokens=100, params=800, prefill_latency_s=0.01)
    return ExperimentRecord(config_hash=cfg.config_hash(), config=cfg, status="success", base=base,
                            compressed=rec, recovered=rec, finished_at="2026-01-01T00:00:00+00:00")


def make_store(path: Path, ratios=(0.2, 0.4, 0.6, 0.8)) -> Path:
    with ResultStore(path) as st:
        st.put([record(r) for r in ratios], "t")
    return path


def other_programs_db(path: Path) -> Path:
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE foo (a INTEGER, b TEXT)")
        con.execute("INSERT INTO foo VALUES (1, 'x')")
    return path


def refused(capsys, argv, *fragments) -> str:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for f in fragments:
        assert f in err, err
    return err


def spec_file(tiny, path: Path, **extra) -> Path:
    spec = {
        "name": "t", "models": [str(tiny / "model")], "methods": ["random-ffn", "magnitude-ffn"],
        "ratios": [0.25, 0.5, 0.75], "rft_samples": [0], "threads": 1,
        "rft": {"seq_len": 32, "dataset": str(tiny / "train.txt"), "batch_size": 4, "lr": 3.0e-3},
        "eval": {"test_data": str(tiny / "test.jsonl"), "seq_len": 32, "max_blocks": 4, "tasks": []},
        "runtime": {"enabled": False}, "store": str(path / "results.db"), "report": None,
    }
    spec.update(extra)
    f = path / "spec.yaml"
    f.write_text(yaml.safe_dump(spec))
    return f


# --- 1. readers never write; only complaw stores are written ---------------------------------------------------
def test_results_on_an_empty_file_refuses_and_leaves_it_empty(tmp_path, capsys):
    empty = tmp_path / "EMPTY.csv"
    empty.write_bytes(b"")
    before = state(empty)
    refused(capsys, ["results", empty], "EMPTY.csv", "empty", "not a complaw results store")
    assert state(empty) == before and empty.stat().st_size == 0


@pytest.mark.parametrize("argv", [["results"], ["results", "--law-rows"]])
def test_results_on_another_programs_db_refuses_and_changes_nothing(tmp_path, capsys, argv):
    db = other_programs_db(tmp_path / "other-program.db")
    before = state(db)
    refused(capsys, [*argv, db], "other-program.db", "another program", "foo")
    assert state(db) == before
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        assert [r[0] for r in con.execute("SELECT name FROM sqlite_master")] == ["foo"]
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_results_on_a_text_file_or_a_missing_store(tmp_path, capsys):
    text = tmp_path / "notes.db"
    text.write_text("just text, not SQLite " * 100)
    before = state(text)
    refused(capsys, ["results", text], "notes.db", "not an SQLite file")
    assert state(text) == before
    refused(capsys, ["results", tmp_path / "nope.db"], "nope.db", "no such results store")
    assert not (tmp_path / "nope.db").exists()


def test_sweep_refuses_another_programs_db_before_any_work(tmp_path, capsys):
    db = other_programs_db(tmp_path / "other-program.db")
    before = state(db)
    # an unknown method, or the store: either is refused before anything is written
    refused(capsys, ["sweep", "quick", "methods=[nosuch]", f"store={db}", "--no-report"])
    assert state(db) == before
    refused(capsys, ["sweep", "quick", f"store={db}", "--no-report"], "other-program.db", "another program")
    assert state(db) == before
    with pytest.raises(ComplawError, match="cannot be opened as a results store: it is an SQLite database"):
        ResultStore(db)
    assert state(db) == before


def test_a_new_store_is_not_created_before_the_settings_are_checked(tiny, tmp_path):
    f = spec_file(tiny, tmp_path, methods=["nosuch-method"])
    with pytest.raises(ComplawError, match="nosuch-method"):
        run_sweep(load_spec(f), show_progress=False)
    assert not (tmp_path / "results.db").exists()


def test_readonly_open_quotes_the_path_and_changes_nothing(tmp_path, capsys):
    odd = tmp_path / "we#ird?name%20.db"
    make_store(odd)
    before = state(odd)
    with ResultStore(odd, readonly=True) as st:
        assert len(st.frame()) == 4 and len(st.law_frame()) == 4
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            st.put([record(0.1)])
    assert main(["results", str(odd)]) == 0
    assert "4 rows" in capsys.readouterr().out
    assert len(read_table(odd)) == 4  # the law engine's reader: the same file, not "we" (nor a new one)
    assert state(odd) == before  # no stray "we" file, no -wal or -shm left behind
    with pytest.raises(ComplawError, match="no such results store"):
        ResultStore(tmp_path / "missing#x.db", readonly=True)
    assert sorted(os.listdir(tmp_path)) == before[2]


def test_fit_and_report_read_the_store_without_changing_it(tmp_path, capsys):
    (tmp_path / "s").mkdir()
    db = make_store(tmp_path / "s" / "sweep#1.db", ratios=(0.1, 0.3, 0.5, 0.7, 0.9))
    before = state(db)
    code = main(["fit", str(db), "--form", "pruning-law", "--bootstrap", "0"])
    err = capsys.readouterr().err
    assert code in (0, 1, 2) and "Traceback" not in err
    main(["report", str(db), "--out", str(tmp_path / "rep"), "--bootstrap", "0"])
    assert "Traceback" not in capsys.readouterr().err
    assert state(db) == before  # and no stray "sweep" file beside it


def test_an_old_store_is_read_as_is_and_gains_the_marker_when_written(tmp_path):
    db = tmp_path / "old.db"
    rec = record(0.3)
    with sqlite3.connect(db) as con:
        con.executescript(OLD_SCHEMA)
        con.execute("INSERT INTO experiments VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (rec.config_hash, "old", "zoo:llama-xs", "prunenet", 0.3, 0, 0, "success", None,
                     rec.finished_at, rec.model_dump_json()))
    before = state(db)
    with ResultStore(db, readonly=True) as st:  # read: the rows derived in memory, the file untouched
        frame = st.law_frame()
        assert {"L_se", "noisy"} <= set(frame.columns) and list(frame["metric"]) == ["test_loss"]
        assert st.frame()["status"].tolist() == ["success"]
    assert state(db) == before
    with ResultStore(db) as st:  # written: migrated and marked
        assert len(st.law_frame()) == 1
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
        assert {"claims", "meta"} <= {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # at rest: readers make no files
    # a store of a newer complaw is read, not written
    with sqlite3.connect(db) as con:
        con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    with pytest.raises(ComplawError, match="newer complaw"):
        ResultStore(db)
    with ResultStore(db, readonly=True) as st:
        assert len(st.frame()) == 1


def test_empty_file_or_empty_sqlite_may_become_a_store_for_writing(tmp_path):
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    bare = tmp_path / "bare.db"
    con = sqlite3.connect(bare)
    con.execute("PRAGMA user_version = 7")  # an SQLite file without a single table
    con.close()
    assert bare.stat().st_size > 0
    for p in (empty, bare):
        with ResultStore(p) as st:
            st.put([record(0.5)])
        with ResultStore(p, readonly=True) as st:
            assert len(st.records()) == 1


# --- 2. corrupt records, empty stores and bad options ------------------------------------------------------------
def test_results_lists_the_other_rows_when_one_record_is_corrupt(tmp_path, capsys):
    db = make_store(tmp_path / "r.db")
    with sqlite3.connect(db) as con:
        bad = con.execute("SELECT config_hash FROM experiments ORDER BY rowid LIMIT 1").fetchone()[0]
        con.execute("UPDATE experiments SET record = '{not json' WHERE config_hash = ?", (bad,))
    before = state(db)
    code = main(["results", str(db)])
    out, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in err
    warnings = err.strip().splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("warning:") and bad in warnings[0]
    assert "4 rows" in out and out.count("success") == 3 and "unreadable" in out
    assert main(["results", str(db), "--status", "unreadable"]) == 0
    assert "1 rows" in capsys.readouterr().out
    assert main(["results", str(db), "--law-rows"]) == 0  # the law rows need no parsing
    assert state(db) == before
    with ResultStore(db, readonly=True) as st:
        assert len(st.records()) == 3 and list(st.unreadable) == [bad]


def test_results_on_an_empty_store(tmp_path, capsys):
    db = tmp_path / "new.db"
    ResultStore(db).close()
    before = state(db)
    for extra in (["--status", "success"], ["--law-rows", "--status", "excluded"], ["--model", "m"]):
        code = main(["results", str(db), *extra])
        out, err = capsys.readouterr()
        assert code == 0 and "Traceback" not in err and "0 rows" in out
    assert state(db) == before


def test_results_refuses_bad_options_before_reading(tmp_path, capsys):
    db = make_store(tmp_path / "r.db")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    before = state(db)
    refused(capsys, ["results", db, "--limit", "-1"], "--limit -1: must be ≥ 0")
    refused(capsys, ["results", db, "--status", "nosuch"], "--status nosuch", "success, failed, invalid")
    refused(capsys, ["results", db, "--export", blocker / "dir" / "x.csv"], "--export", "not a directory")
    refused(capsys, ["results", db, "--export", tmp_path / "x.txt"], "--export", ".csv or .parquet")
    assert state(db) == before
    assert main(["results", str(db), "--export", str(tmp_path / "out" / "x.csv")]) == 0
    assert len((tmp_path / "out" / "x.csv").read_text().splitlines()) == 5
    assert main(["results", str(db), "--limit", "0"]) == 0
    capsys.readouterr()


# --- 3. claims: two sweeps on one store --------------------------------------------------------------------------
def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_claims_are_exclusive_stale_ones_taken_over_and_released_on_store(tmp_path):
    db = tmp_path / "c.db"
    rec = record(0.5)
    h = [rec.config_hash, "other-hash"]
    with ResultStore(db) as a, ResultStore(db) as b:
        seen = a.stamps()
        assert a.claim(h, "hostA:1:a", seen=seen) == (h, [], [])
        assert b.claim(h, "hostB:2:b", seen=seen) == ([], h, [])
        assert a.claim(h, "hostA:1:a", seen=seen) == (h, [], [])  # one's own claim: kept
        a.put([rec], owner="hostA:1:a")  # stored: its claim released in the same transaction
        assert set(b.claims()) == {"other-hash"}
        assert b.claim(h, "hostB:2:b", seen=seen) == ([], ["other-hash"], [rec.config_hash])
        assert b.claim(["other-hash"], "hostB:2:b", seen=seen, stale_s=0.0) == (["other-hash"], [], [])
        me = socket.gethostname()
        gone = f"{me}:{_dead_pid()}:x"
        assert a.claim(["third"], gone, seen=seen) == (["third"], [], [])
        assert b.claim(["third"], "hostB:2:b", seen=seen) == (["third"], [], [])  # its process is gone
        b.release("hostB:2:b")
        assert b.claims() == {}


def test_the_heartbeat_keeps_a_claim_fresh(tmp_path):
    db = tmp_path / "c.db"
    with ResultStore(db) as st:
        st.claim(["h"], "me:1:x", seen={})
        first = st.claims()["h"][2]
        with ClaimKeeper(db, "me:1:x", every_s=0.05):
            time.sleep(0.4)
        assert st.claims()["h"][2] > first


@pytest.mark.parametrize("holder,taken_over", [("old", True), ("dead", True), ("live", False)])
def test_a_sweep_takes_over_a_stale_claim_and_leaves_a_live_one(tiny, tmp_path, holder, taken_over):
    f = spec_file(tiny, tmp_path, methods=["random-ffn"], ratios=[0.5])
    spec = load_spec(f)
    hashes = spec.units()[0].hashes
    owner = {"old": "elsewhere:1:old", "dead": f"{socket.gethostname()}:{_dead_pid()}:dead",
             "live": "elsewhere:1:live"}[holder]
    beat = time.time() - (1000 if holder == "old" else 0)
    with ResultStore(spec.store) as st:
        with st.con:
            st.con.executemany("INSERT INTO claims VALUES (?,?,?,?)", [(h, owner, beat, beat) for h in hashes])
    res = run_sweep(spec, show_progress=False)
    with ResultStore(spec.store, readonly=True) as st:
        claims, stored = st.claims(), st.statuses()
    if taken_over:
        assert res.units_run == 1 and res.units_elsewhere == 0 and claims == {}
        assert stored == {h: "success" for h in hashes}
    else:
        assert res.units_run == 0 and res.units_elsewhere == 1 and stored == {}
        assert set(claims) == set(hashes) and {c[0] for c in claims.values()} == {owner}


@pytest.fixture
def interrupting_method():
    @register_method("interrupt-at-half", description="test-only: Ctrl-C at ratio 0.5")
    def interrupt(model, ratio, *, seed=0):
        if ratio == 0.5:
            raise KeyboardInterrupt
        from complaw.compress.ffn import random_ffn

        return random_ffn(model, ratio, seed=seed)

    yield "interrupt-at-half"
    METHODS.unregister("interrupt-at-half")


def test_an_interrupted_sweep_releases_its_claims(tiny, tmp_path, interrupting_method):
    spec = load_spec(spec_file(tiny, tmp_path, methods=[interrupting_method], ratios=[0.25, 0.5, 0.75]))
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, show_progress=False)
    with ResultStore(spec.store, readonly=True) as st:
        assert st.claims() == {} and len(st.statuses()) == 1  # r=0.25 stored, r=0.5 interrupted, 0.75 not begun


_SWEEPER = """
import pathlib, sys, time
from rich.console import Console
from complaw.sweep import load_spec, run_sweep
spec = load_spec(sys.argv[1])
pathlib.Path(sys.argv[2]).touch()  # imported and ready
go = pathlib.Path(sys.argv[3])
while not go.exists():
    time.sleep(0.01)
r = run_sweep(spec, show_progress=False, console=Console(quiet=True))
print("RESULT", r.units_run, r.units_elsewhere, r.units_skipped)
"""


def test_two_sweeps_on_one_store_compute_each_unit_once(tiny, tmp_path):
    f = spec_file(tiny, tmp_path)  # 6 units
    n_units = len(load_spec(f).units())
    go = tmp_path / "go"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", _SWEEPER, str(f), str(tmp_path / f"ready{i}"), str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for i in range(2)]
    try:
        deadline = time.time() + 120
        while not all((tmp_path / f"ready{i}").exists() for i in range(2)):
            assert time.time() < deadline and all(p.poll() is None for p in procs), "a sweeper did not start"
            time.sleep(0.05)
        go.touch()  # both start at once
        outs = [p.communicate(timeout=180) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    results = []
    for (out, err), p in zip(outs, procs, strict=True):
        assert p.returncode == 0, err
        line = [ln for ln in out.splitlines() if ln.startswith("RESULT")][0]
        results.append(tuple(int(x) for x in line.split()[1:]))
    ran = [r[0] for r in results]
    assert sum(ran) == n_units, results  # every unit computed by exactly one of the two
    for run, elsewhere, skipped in results:  # each accounts for every unit, without calling the other's its own
        assert run + elsewhere + skipped == n_units, results
    assert all(r[0] > 0 for r in results) or any(r[1] > 0 for r in results), f"the sweeps did not overlap: {results}"
    with ResultStore(tmp_path / "results.db", readonly=True) as st:
        assert st.counts() == {"success": n_units} and st.claims() == {}


def _as_schema_2(path: Path) -> None:
    """Rewrite a store as complaw wrote it before #16: records under the old names, schema_version 2."""
    old = {'"rft_samples"': '"samples"', '"warmup_fraction"': '"warmup"', '"prefill_latency_s"': '"latency_s"'}
    with sqlite3.connect(path) as con:
        for h, text in con.execute("SELECT config_hash, record FROM experiments").fetchall():
            for new, first in old.items():
                text = text.replace(new, first)
            con.execute("UPDATE experiments SET record = ? WHERE config_hash = ?", (text, h))
        con.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")


def test_a_store_of_the_old_names_is_read_and_migrated_on_open(tmp_path, capsys):
    db = make_store(tmp_path / "old.db")
    with ResultStore(db, readonly=True) as st:
        rows_now = st.law_frame()
    _as_schema_2(db)
    with sqlite3.connect(db) as con:
        text = con.execute("SELECT record FROM experiments").fetchone()[0]
    assert '"latency_s"' in text and '"samples"' in text and '"rft_samples"' not in text
    before = state(db)
    with ResultStore(db, readonly=True) as st:  # a reader reads the old names as the new ones, changing nothing
        frame, law = st.frame(), st.law_frame()
    assert state(db) == before and not st.unreadable
    assert frame["prefill_latency_s"].tolist() == [0.01] * 4 and frame["rft_samples"].tolist() == [0] * 4
    assert main(["report", str(db), "--out", str(tmp_path / "rep"), "--bootstrap", "0", "--no-figures"]) == 0
    with ResultStore(db) as st:  # a writer migrates: records under the new names, schema 3, same law rows
        migrated = st.law_frame()
    with sqlite3.connect(db) as con:
        text = con.execute("SELECT record FROM experiments").fetchone()[0]
        version = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    assert version == "3" and '"prefill_latency_s"' in text and '"latency_s"' not in text
    assert '"rft_samples"' in text and '"warmup_fraction"' in text
    for got in (law, migrated):
        assert got.drop(columns="error").equals(rows_now.drop(columns="error"))
