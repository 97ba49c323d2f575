"""The real-model presets, old stores and config hashes across the new settings, noisy runtimes (#14)."""

import sqlite3

import numpy as np
import pandas as pd
import pytest

from complaw.laws.data import runtime_rows
from complaw.recipe import ExperimentConfig, ExperimentRecord, Metrics, RuntimeConfig, loss_metric_name
from complaw.report import build_report
from complaw.sweep.spec import PRESETS, load_spec
from complaw.sweep.store import ResultStore, law_rows_of


def test_real_presets_are_the_study_on_smollm2():
    real = load_spec("real")
    assert real.models == ["real:smollm2-135m"]
    assert [m.name for m in real.methods] == ["prunenet", "slicegpt", "magnitude-ffn", "random-ffn"]
    assert real.ratios == [0.1, 0.3, 0.5, 0.7, 0.9] and len(real.rft_samples) >= 3 and 0 in real.rft_samples
    assert real.eval.extra_test_data == ["zoo:prose-test"] and real.runtime.protocol == "interleaved"
    assert len(real.units()) == 20 and sum(len(u.configs) for u in real.units()) == 60
    quick = load_spec("real-quick")
    assert quick.models == real.models and len(quick.units()) == 4 and quick.eval.extra_test_data
    assert {"quick", "demo", "real-quick", "real"} <= set(PRESETS)


def test_new_settings_at_their_default_keep_the_config_hash():
    """An old store's records keep matching: the runtime protocol, the noisy bound and extra test sets were
    added after stores were written; at their defaults they stay out of the hash. Settings renamed since (#16:
    rft.samples → rft_samples, rft.warmup → warmup_fraction) hash under their first names."""
    cfg = ExperimentConfig(model="zoo:llama-xs", method="prunenet", ratio=0.3)
    d = cfg.model_dump(mode="json")
    for section, key in (("runtime", "protocol"), ("runtime", "noisy_dispersion"), ("eval", "extra_test_data")):
        d[section].pop(key)
    d["rft"]["samples"], d["rft"]["warmup"] = d["rft"].pop("rft_samples"), d["rft"].pop("warmup_fraction")
    import hashlib
    import json

    old = hashlib.sha256(json.dumps(d, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
    assert cfg.config_hash() == old
    other = cfg.model_copy(update={"runtime": RuntimeConfig(protocol="sequential")})
    assert other.config_hash() != old


def test_loss_metric_names():
    assert loss_metric_name("zoo:prose-test") == "loss_prose_test"
    assert loss_metric_name("/data/My Text.txt") == "loss_my_text"


def _record(r: float, noisy: bool = False) -> ExperimentRecord:
    cfg = ExperimentConfig(model="real:smollm2-135m", method="prunenet", ratio=r)
    tasks = {"zoo_nextline": {"acc": 0.8 - r / 2, "acc_stderr": 0.06, "n": 40.0, "chance": 0.25}}
    base = Metrics(test_loss=2.7, perplexity=14.9, test_tokens=2000, params=100, avg_acc=0.8,
                   tasks={"zoo_nextline": {"acc": 0.8, "acc_stderr": 0.064, "n": 40.0, "chance": 0.25}},
                   losses={"loss_prose_test": 3.2})
    comp = Metrics(test_loss=2.7 * (1 + r) ** 2, perplexity=1.0, test_tokens=2000, params=80, avg_acc=0.8 - r / 2,
                   tasks=tasks, losses={"loss_prose_test": 3.2 * (1 + r)}, prefill_latency_s=0.02)
    rt = {"speedup": (1 + r) ** 0.8, "noisy": noisy, "dispersion": 0.3 if noisy else 0.02,
          "flop_ideal_speedup": 1 / (1 - r / 2)}
    return ExperimentRecord(config_hash=cfg.config_hash(), config=cfg, status="success", base=base,
                            compressed=comp, recovered=comp, base_latency_s=0.025, runtime=rt)


def test_law_rows_carry_standard_errors_extra_losses_and_the_paired_speedup():
    rows = {row["metric"]: row for row in law_rows_of(_record(0.5))}
    assert set(rows) == {"test_loss", "loss_prose_test", "avg_acc", "zoo_nextline"}
    assert rows["loss_prose_test"]["direction"] == "lower" and rows["loss_prose_test"]["L"] == pytest.approx(4.8)
    assert rows["zoo_nextline"]["L_se"] == 0.06 and rows["zoo_nextline"]["L0_se"] == 0.064
    assert rows["avg_acc"]["L_se"] == pytest.approx(0.06)  # one task: sqrt(se²) / 1
    assert rows["test_loss"]["L_se"] is None
    # S0/S is the interleaved measurement's median per-round speedup, beside the FLOP-ideal one
    assert rows["test_loss"]["S0"] / rows["test_loss"]["S"] == pytest.approx(1.5 ** 0.8)
    assert rows["test_loss"]["S_ideal_speedup"] == pytest.approx(1 / 0.75) and rows["test_loss"]["noisy"] == 0


def test_an_old_store_gains_the_new_columns_and_its_rows_are_derived_again(tmp_path):
    db = tmp_path / "old.db"
    rec = _record(0.3)
    with sqlite3.connect(db) as con:  # the schema before this change, with a row set written by it
        con.executescript("""
        CREATE TABLE experiments (config_hash TEXT PRIMARY KEY, sweep TEXT, model TEXT, method TEXT, ratio REAL,
            rft_samples INTEGER, seed INTEGER, status TEXT, error TEXT, finished_at TEXT, record TEXT NOT NULL);
        CREATE TABLE bases (base_key TEXT PRIMARY KEY, model TEXT, metrics TEXT NOT NULL, created_at TEXT);
        CREATE TABLE law_rows (config_hash TEXT, metric TEXT, sweep TEXT, model TEXT, N REAL, method TEXT,
            direction TEXT, r REAL, D REAL, D_tokens REAL, seed INTEGER, L0 REAL, L REAL, S REAL, S0 REAL,
            param_reduction REAL, status TEXT, error TEXT, PRIMARY KEY (config_hash, metric));""")
        con.execute("INSERT INTO experiments VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (rec.config_hash, "old", rec.config.model, "prunenet", 0.3, 0, 0, "success", None, None,
                     rec.model_dump_json()))
        con.execute("INSERT INTO law_rows (config_hash, metric, sweep, L0, L, status) VALUES (?,?,?,?,?,?)",
                    (rec.config_hash, "test_loss", "old", 2.7, 4.0, "success"))
    with ResultStore(db) as store:
        got = store.law_frame()
    assert {"L_se", "L0_se", "noisy", "S_dispersion", "S_ideal_speedup"} <= set(got.columns)
    assert set(got["metric"]) == {"test_loss", "loss_prose_test", "avg_acc", "zoo_nextline"}
    assert got.loc[got["metric"] == "test_loss", "L"].item() == pytest.approx(2.7 * 1.3 ** 2)
    assert (got["sweep"] == "old").all()


def test_noisy_measurements_are_shown_but_not_fitted(tmp_path):
    db = tmp_path / "s.db"
    recs = [_record(r) for r in (0.1, 0.3, 0.5, 0.7)] + [_record(0.9, noisy=True)]
    recs[-1].runtime["speedup"] = 9.0  # a wild one, as a busy machine gives
    with ResultStore(db) as store:
        store.put(recs)
        frame = store.law_frame()
    assert len(runtime_rows(frame)) == 5
    rep = build_report(db, tmp_path / "rep", bootstrap=50, figures=False)
    sp = rep.analysis.speed[0]
    assert sp.n_noisy == 1 and sp.fit.n_obs == 4
    assert sp.fit.params["b"].estimate == pytest.approx(-0.8, abs=1e-6)  # the wild point did not move it
    assert sp.table["noisy"].sum() == 1 and len(sp.table) == 5
    md = rep.md.read_text()
    assert "noisy (not fitted)" in md and "1 noisy, not fitted" in md
    assert "FLOP-ideal" in md and f"{1 / (1 - 0.45):.3f}×" in md


def test_weighted_fits_from_the_store_say_so(tmp_path):
    db = tmp_path / "w.db"
    rng = np.random.default_rng(0)
    recs = []
    for r in (0.1, 0.3, 0.5, 0.7, 0.9):
        rec = _record(r)
        rec.compressed.tasks["zoo_nextline"]["acc"] = max(0.3, 0.8 * (1 - r) ** 0.7 + rng.normal(0, 0.01))
        rec.compressed.avg_acc = rec.compressed.tasks["zoo_nextline"]["acc"]
        recs.append(rec)
    with ResultStore(db) as store:
        store.put(recs)
    rep = build_report(db, tmp_path / "rep", bootstrap=20, figures=False)
    groups = {g["label"]: g for g in rep.data["groups"]}
    assert groups["prunenet / avg_acc"]["weighting"].startswith("inverse-variance")
    assert groups["prunenet / test_loss"]["weighting"].startswith("none (OLS)")
    assert pd.notna(rep.data["groups"][0]["weighting"])
