"""One speed law, used consistently (#18): fitted on one row per runtime measurement, every printed speedup is
its own prediction, the measured points lie inside the drawn band, a slowdown is reported as one."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from complaw.cli import main
from complaw.decide import Law, speed_law, speedup, speedup_at
from complaw.errors import ComplawError
from complaw.laws.data import runtime_rows
from complaw.report import build_report


def sweep_like_table(seed: int = 0) -> pd.DataFrame:
    """What the store gives for a sweep of 2 methods × r ∈ {0.2, 0.5, 0.8} × D ∈ {0, 16} × 2 metrics on one model:
    each unit times the base and the compressed model once (paired, noisy) and copies that runtime onto every D
    and metric row. PruneNet gets faster with r, SliceGPT slower (its extra rotation matmuls at small widths)."""
    rng = np.random.default_rng(seed)
    rows = []
    for method, b in (("prunenet", -0.9), ("slicegpt", 0.35)):
        for r in (0.2, 0.5, 0.8):
            s0 = 0.050 * float(np.exp(rng.normal(0, 0.03)))
            s = s0 * (1 + r) ** b * float(np.exp(rng.normal(0, 0.03)))
            for D in (0.0, 16.0):
                for metric, direction, L0 in (("test_loss", "lower", 2.7), ("avg_acc", "higher", 0.5)):
                    L = L0 * (1 + r) ** (1.0 if direction == "lower" else -0.8) * (1 + 1 / (D + 1)) ** (
                        0.1 if direction == "lower" else -0.1)
                    rows.append({"model": "real:smollm2-135m", "N": 1.35e8, "method": method, "metric": metric,
                                 "direction": direction, "r": r, "D": D, "L0": L0, "L": L, "S": s, "S0": s0,
                                 "status": "success"})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    return build_report(sweep_like_table(), tmp_path_factory.mktemp("speed"), bootstrap=200)


def test_runtime_rows_are_one_per_measurement():
    df = sweep_like_table()
    rows = runtime_rows(df)
    # 2 methods × 3 ratios measured once each, although the table has 24 rows per method
    assert len(df) == 24 and len(rows) == 6
    assert set(map(tuple, rows[["method", "r"]].to_numpy())) == {(m, r) for m in ("prunenet", "slicegpt")
                                                                 for r in (0.2, 0.5, 0.8)}
    # a second, distinct measurement of the same unit (another seed) is a row of its own
    extra = df[(df["method"] == "prunenet") & (df["r"] == 0.5)].assign(S=lambda f: f["S"] * 1.1)
    assert len(runtime_rows(pd.concat([df, extra]))) == 7


def test_the_speed_law_is_fitted_on_the_distinct_measurements(report):
    speed = {s["label"]: s for s in report.data["speed"]}
    for label in ("prunenet", "slicegpt"):
        assert speed[label]["form"] == "speed-ratio"
        assert speed[label]["fit"]["n_obs"] == 3 == len(speed[label]["measured_vs_predicted"])
        # three noisy points, one parameter: an honest SE, not the 1e-16 of duplicated rows
        assert speed[label]["fit"]["params"]["b"]["se"] > 1e-3


def test_every_printed_speedup_is_the_law_prediction(report):
    a = report.analysis
    lines = report.summary_lines()
    md = report.md.read_text()
    for s in a.speed:
        law = Law.from_fit(s.fit)
        for r, d in s.speedups.items():
            assert d.value == pytest.approx(speedup_at(law, r))
            lo, hi = d.interval
            assert lo <= d.value <= hi
            assert f"{d.value:.3f}×" in md
        assert any(s.label in ln and f"speedup@0.5 {s.speedups[0.5].value:.2f}×" in ln for ln in lines)
        # the table's prediction at each measurement's own S0 is the same law
        for t in s.table.itertuples():
            assert t.predicted == pytest.approx(speedup_at(law, t.r, t.S0))


def test_measured_points_lie_inside_the_drawn_band(report):
    for s in report.analysis.speed:
        assert len(s.table) == 3 and s.table["inside"].all(), s.table
        assert "prediction interval" in s.band_note
    html = report.html.read_text()
    assert "3 of 3 measurements inside the prediction band" in html
    assert "Measured vs predicted speedup" in html


def test_a_slowdown_is_reported_as_one(report):
    sg = next(s for s in report.analysis.speed if s.label == "slicegpt")
    pn = next(s for s in report.analysis.speed if s.label == "prunenet")
    assert all(d.value < 1 and d.regime == "slowdown" and "slower" in d.message for d in sg.speedups.values())
    assert all(d.value > 1 and d.regime == "speed" for d in pn.speedups.values())
    assert (sg.table["measured"] < 1).all()
    assert re.search(r"0\.\d{3}× \[[^]]+\] slowdown", report.md.read_text())


def test_speedup_with_a_not_one_needs_the_base_runtime():
    law = speed_law(-0.67, a=0.9)
    with pytest.raises(ComplawError, match="--s0"):
        speedup(law, 0.5)
    # S0/S = S0^(1-a) (1+r)^(-b): the law's own prediction at that S0
    assert speedup(law, 0.5, s0=0.05).value == pytest.approx(0.05 ** 0.1 * 1.5 ** 0.67)
    assert speedup(speed_law(-0.67), 0.5).value == pytest.approx(1.5 ** 0.67)  # a = 1: independent of S0


def test_cli_speedup_predicts_at_each_model_s0(tmp_path, capsys):
    df = sweep_like_table()
    df = pd.concat([df, df.assign(model="big", N=1.35e9, S=df["S"] * 8, S0=df["S0"] * 8)])
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    assert main(["speedup", str(path), "--r", "0.5", "--json", "--bootstrap", "50"]) == 0
    rows = json.loads(capsys.readouterr().out)
    pn = [row for row in rows if row["group"] == {"method": "prunenet"}]
    assert {row["model"] for row in pn} == {"real:smollm2-135m", "big"}
    assert all(row["s0"] is not None for row in pn)
    sg = [row for row in rows if row["group"] == {"method": "slicegpt"}]
    assert all(row["value"] < 1 and row["regime"] == "slowdown" for row in sg)
    assert main(["speedup", "--b", "-0.67", "--a", "0.9"]) == 2
    assert "--s0" in capsys.readouterr().err
