"""Bounded metrics stay bounded (#18): a law for a metric in [0, 1] that leaves it inside the fitted range is
marked; a task at ceiling or floor for the base model is left out of the average, with its reason."""

import numpy as np
import pandas as pd
import pytest

from complaw.evaluate.extrinsic import saturated, saturated_tasks
from complaw.laws import fit
from complaw.laws.data import unit_interval_metric
from complaw.recipe import ExperimentConfig, ExperimentRecord, Metrics
from complaw.report import build_report
from complaw.sweep.store import ResultStore, law_rows_of


def accuracy_table(p0: float) -> pd.DataFrame:
    """Accuracy falling with r as L0·P0·(1−r): with P0 > 1/L0 the law's own value at r = 0 is above 1."""
    rows = []
    rng = np.random.default_rng(0)
    for model, l0 in (("a", 0.90), ("b", 0.85)):
        for r in (0.3, 0.5, 0.7):
            rows.append({"model": model, "metric": "avg_acc", "direction": "higher", "r": r, "L0": l0,
                         "L": l0 * p0 * (1 - r) * float(np.exp(rng.normal(0, 0.005)))})
    return pd.DataFrame(rows)


def test_a_bounded_law_that_leaves_the_unit_interval_is_marked():
    res = fit(accuracy_table(1.3), "pruning-law", bootstrap=0)
    assert res.bounded
    assert "> 1 for a metric in [0, 1]" in res.out_of_bounds and "r = 0" in res.out_of_bounds
    assert "not clipped" in res.out_of_bounds
    assert res.status == "unreliable" and res.out_of_bounds in res.unreliable
    assert any(w.code == "out-of-bounds" for w in res.warnings)
    assert res.to_dict()["out_of_bounds"] == res.out_of_bounds
    # the same law where the data stay inside: not marked
    ok = fit(accuracy_table(1.0), "pruning-law", bootstrap=0)
    assert ok.bounded and ok.out_of_bounds == "" and ok.to_dict()["out_of_bounds"] is None
    # a loss is not a bounded metric, whatever its values
    loss = accuracy_table(1.3).assign(metric="test_loss", direction="lower")
    assert not fit(loss, "pruning-law", bootstrap=0).bounded


def test_the_report_says_the_law_left_the_interval(tmp_path):
    rep = build_report(accuracy_table(1.3), tmp_path, forms=["pruning-law"], bootstrap=0, figures=False)
    g = rep.data["groups"][0]
    assert "> 1 for a metric in [0, 1]" in g["fits"]["pruning-law"]["out_of_bounds"]
    assert g["fit_status"]["pruning-law"] != "ok"
    text = rep.md.read_text() + rep.html.read_text()
    assert "not clipped" in text and "> 1 for a metric in [0, 1]" in text


def test_unit_interval_metric_rule():
    t = accuracy_table(1.0)
    assert unit_interval_metric(t)
    assert not unit_interval_metric(t.assign(metric="retention"))
    assert not unit_interval_metric(t.assign(L=t["L"] * 100, L0=t["L0"] * 100))


@pytest.mark.parametrize(("metrics", "kind"), [
    ({"acc": 1.0, "acc_stderr": 0.0, "n": 20}, "ceiling"),
    ({"acc": 0.9, "acc_norm": 0.97, "acc_norm_stderr": 0.04, "n": 20}, "ceiling"),
    ({"acc": 0.26, "acc_stderr": 0.03, "chance": 0.25, "n": 200}, "floor"),
    ({"acc": 0.0, "acc_stderr": 0.0, "n": 50}, "floor"),
    ({"acc": 0.60, "acc_stderr": 0.035, "chance": 0.25, "n": 200}, None),
    ({"acc": 0.95, "acc_stderr": 0.015, "n": 200}, None),
])
def test_saturated(metrics, kind):
    why = saturated(metrics)
    assert (why is None) if kind is None else why.startswith(kind)
    if kind:
        assert "standard error" in why


def _metrics(tasks, loss=2.7):
    avg = sum(m.get("acc_norm", m["acc"]) for m in tasks.values()) / len(tasks)
    return Metrics(test_loss=loss, perplexity=float(np.exp(loss)), test_tokens=1000, tasks=tasks, avg_acc=avg,
                   avg_acc_raw=avg, params=100, prefill_latency_s=0.01)


def _record(r, easy_acc, hard_acc, D=0):
    cfg = ExperimentConfig(model="real:smollm2-135m", method="prunenet", ratio=r, rft={"rft_samples": D})
    base = _metrics({"zoo_easy": {"acc": 1.0, "acc_stderr": 0.0, "n": 20.0},
                     "zoo_hard": {"acc": 0.62, "acc_stderr": 0.034, "chance": 0.25, "n": 200.0}})
    comp = _metrics({"zoo_easy": {"acc": easy_acc, "acc_stderr": 0.05, "n": 20.0},
                     "zoo_hard": {"acc": hard_acc, "acc_stderr": 0.035, "chance": 0.25, "n": 200.0}}, loss=3 + r)
    return ExperimentRecord(config_hash=cfg.config_hash(), config=cfg, status="success", base=base,
                            compressed=comp, recovered=comp, base_latency_s=0.01)


def test_a_ceiling_task_is_left_out_of_the_average_with_its_reason():
    rec = _record(0.3, easy_acc=0.95, hard_acc=0.50)
    assert set(saturated_tasks(rec.base.tasks)) == {"zoo_easy"}
    rows = {row["metric"]: row for row in law_rows_of(rec)}
    assert rows["zoo_easy"]["status"] == "excluded" and "ceiling" in rows["zoo_easy"]["error"]
    assert "left out of avg_acc" in rows["zoo_easy"]["error"]
    # the average of base and compressed alike is over zoo_hard alone
    assert rows["avg_acc"]["L0"] == pytest.approx(0.62) and rows["avg_acc"]["L"] == pytest.approx(0.50)
    assert rows["avg_acc"]["status"] == "success" and rows["zoo_hard"]["status"] == "success"
    # without the default, the record's own average (over both tasks) is kept
    keep = {row["metric"]: row for row in law_rows_of(rec, exclude_saturated=False)}
    assert keep["avg_acc"]["L0"] == pytest.approx(0.81) and keep["zoo_easy"]["status"] == "success"


def test_the_report_names_the_excluded_task_and_does_not_count_it_failed(tmp_path):
    db = tmp_path / "s.db"
    with ResultStore(db) as store:
        store.put([_record(r, easy_acc=1.0 - r / 4, hard_acc=0.62 * (1 - r) ** 0.5) for r in (0.2, 0.4, 0.6, 0.8)])
    rep = build_report(db, tmp_path / "rep", bootstrap=0, figures=False)
    notes = " ".join(rep.data["notes"])
    assert "zoo_easy on real:smollm2-135m excluded from the average and from every fit: ceiling" in notes
    assert rep.data["n_failed"] == 0
    assert all(g["group"].get("metric") != "zoo_easy" for g in rep.data["groups"])
    assert "ceiling" in rep.md.read_text()
