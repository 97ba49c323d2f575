"""Inputs: file formats, column mapping, directions, and every kind of bad input ending in one clear line."""

import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.pandas import column, data_frames

from complaw.cli import main
from complaw.errors import ComplawError
from complaw.laws import fit, load_results, simulate

TRUTH = {"alpha": 0.98, "beta": -1.18, "gamma": -0.14}


@pytest.fixture
def table():
    df = simulate("sengupta2025", TRUTH, seed=0)
    return df.rename(columns={"L": "acc", "L0": "base_acc", "r": "ratio", "D": "rft_samples", "model": "name"})


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".jsonl", ".json", ".sqlite"])
def test_every_format_reads_the_same(tmp_path, table, suffix):
    path = tmp_path / f"results{suffix}"
    if suffix == ".csv":
        table.to_csv(path, index=False)
    elif suffix == ".tsv":
        table.to_csv(path, sep="\t", index=False)
    elif suffix == ".parquet":
        table.to_parquet(path)
    elif suffix == ".jsonl":
        table.to_json(path, orient="records", lines=True)
    elif suffix == ".json":
        table.to_json(path, orient="records")
    else:
        with sqlite3.connect(path) as con:
            table.to_sql("results", con, index=False)
    ld = load_results(path, mapping="L=acc L0=base_acc r=ratio D=rft_samples model=name")
    res = fit(ld, "sengupta2025", direction="higher", bootstrap=0)
    assert res.n_obs == len(table) and res.coef["beta"] == pytest.approx(-1.18, abs=0.03)


def test_sqlite_with_several_tables_needs_table(tmp_path, table):
    path = tmp_path / "store.db"
    with sqlite3.connect(path) as con:
        table.to_sql("a", con, index=False)
        table.to_sql("b", con, index=False)
    with pytest.raises(ComplawError, match="--table"):
        load_results(path)
    assert len(load_results(path, table="b").frame) == len(table)


def test_direction_from_column_and_metric_name(table):
    df = table.rename(columns={"acc": "L", "base_acc": "L0", "ratio": "r", "rft_samples": "D"})
    assert load_results(df.assign(direction="higher")).direction() == "higher"
    assert load_results(df.assign(metric="acc_norm")).direction() == "higher"
    assert load_results(df.assign(metric="test_loss")).direction() == "lower"
    with pytest.raises(ComplawError, match="direction"):
        load_results(df).direction()


def test_failed_rows_are_counted(table):
    df = table.rename(columns={"acc": "L", "base_acc": "L0", "ratio": "r", "rft_samples": "D"})
    df["status"] = "success"
    df.loc[:4, "status"] = "failed"
    df.loc[:4, "L"] = np.nan
    res = fit(df, "sengupta2025", direction="higher", bootstrap=0)
    assert res.dropped == {"status is not success": 5} and res.n_obs == len(df) - 5


def _canonical(table):
    return table.rename(columns={"acc": "L", "base_acc": "L0", "ratio": "r", "rft_samples": "D", "name": "model"})


BAD = {
    "missing column": (lambda d: d.drop(columns=["D"]), "needs column 'D'"),
    "non-numeric cell": (lambda d: d.astype({"r": object}).assign(r=lambda x: x["r"].where(x.index != 3, "abc")),
                         "'r' is not a number"),
    "L <= 0": (lambda d: d.assign(L=lambda x: x["L"].where(x.index != 2, 0.0)), "'L' is ≤ 0"),
    "L0 <= 0": (lambda d: d.assign(L0=lambda x: x["L0"].where(x.index != 2, -1.0)), "'L0' is ≤ 0"),
    "r outside [0,1)": (lambda d: d.assign(r=lambda x: x["r"].where(x.index != 5, 1.0)), "outside \\[0, 1\\)"),
    "D < 0": (lambda d: d.assign(D=lambda x: x["D"].where(x.index != 5, -2.0)), "'D' is negative"),
    "NaN": (lambda d: d.assign(L=lambda x: x["L"].where(x.index != 7, np.nan)), "empty"),
    "too few rows": (lambda d: d.head(3), "need at least 4"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_clear_error(table, case):
    mutate, message = BAD[case]
    with pytest.raises(ComplawError, match=message):
        fit(mutate(_canonical(table)), "sengupta2025", direction="higher", bootstrap=0)


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_on_the_cli_exits_2_without_traceback(tmp_path, table, case, capsys):
    mutate, _ = BAD[case]
    path = tmp_path / "bad.csv"
    mutate(_canonical(table)).to_csv(path, index=False)
    code = main(["fit", str(path), "--direction", "higher", "--bootstrap", "0"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_unknown_form_and_group_on_the_cli(tmp_path, table, capsys):
    path = tmp_path / "t.csv"
    _canonical(table).to_csv(path, index=False)
    assert main(["fit", str(path), "--direction", "higher", "--form", "nope"]) == 2
    assert "unknown law form" in capsys.readouterr().err
    assert main(["fit", str(path), "--direction", "higher", "--group", "colour"]) == 2
    assert "--group 'colour'" in capsys.readouterr().err
    assert main(["fit", str(tmp_path / "missing.csv")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_drop_invalid_counts_rows(table):
    df = _canonical(table)
    df.loc[[1, 2], "L"] = -1.0
    df.loc[[9], "r"] = 1.5
    res = fit(df, "sengupta2025", direction="higher", bootstrap=0, drop_invalid=True)
    assert res.dropped == {"L is ≤ 0": 2, "r lies outside [0, 1)": 1} and res.n_obs == len(df) - 3


def test_installed_entry_point_exits_2_cleanly(tmp_path, table):
    path = tmp_path / "t.csv"
    _canonical(table).drop(columns=["D"]).to_csv(path, index=False)
    proc = subprocess.run([sys.executable, "-m", "complaw", "fit", str(path), "--direction", "higher"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


cells = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5),
                  st.sampled_from(["", "x", "nan", "1e3", "-0.5", None]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data_frames([column("L", elements=cells), column("L0", elements=cells), column("r", elements=cells),
                    column("D", elements=cells), column("model", elements=st.sampled_from(["a", "b", "c"]))]),
       st.booleans(), st.booleans())
def test_random_tables_give_results_or_clean_errors(df, drop_invalid, robust):
    try:
        res = fit(df, "sengupta2025", direction="higher", bootstrap=20, drop_invalid=drop_invalid, robust=robust)
    except ComplawError as err:
        assert str(err) and "\n" not in str(err)
    else:
        assert res.n_obs >= 4 and np.isfinite(res.coef_vector).all()


def test_d_unit_converts_a_complaw_store_and_labels_any_other_table():
    import pandas as pd

    from complaw.laws.data import LawData, express_d

    store = LawData(pd.DataFrame({"L": [1.0, 1.1], "L0": [1.0, 1.0], "r": [0.1, 0.2], "D": [0.0, 16.0],
                                  "D_tokens": [0.0, 2048.0]}), "results.db")
    k = express_d(store, "k-tokens")
    assert k.frame["D"].tolist() == [0.0, 2.048] and "D_tokens" not in k.frame.columns
    assert express_d(k, "k-tokens").frame["D"].tolist() == [0.0, 2.048]  # expressing twice changes nothing
    assert express_d(store, "samples").frame["D"].tolist() == [0.0, 16.0]
    assert express_d(store, "100-samples").frame["D"].tolist() == [0.0, 0.16]
    with pytest.raises(ComplawError, match="--d-unit 'M-bogus': results.db is a complaw store"):
        express_d(store, "M-bogus")
    other = LawData(store.frame.drop(columns=["D_tokens"]), "mine.csv")
    assert express_d(other, "M-tokens") is other  # its D is in the named unit already
