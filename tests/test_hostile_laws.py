"""Hostile input, round 3 (#26), on the law side: cells that are not plain values, an empty direction column,
a D unit the store cannot express, decisions from partial parameters, the example table's output. Each bad input
gives exit 2, one ``error:`` line that names it, and creates or changes nothing."""

from __future__ import annotations

import json

import pytest
from tests.hostile import refused_unchanged

from complaw.cli import main
from complaw.laws import simulate


def _rows(n=6):
    return [{"L": 0.5 - 0.03 * i, "L0": 0.6, "r": 0.1 * i, "D": 0, "model": "m", "method": "x", "metric": "acc",
             "status": "success"} for i in range(1, n + 1)]


@pytest.fixture
def files(tmp_path):
    for col in ("model", "method", "metric", "r", "L"):
        rows = _rows()
        rows[2][col] = {"a": 1}
        (tmp_path / f"obj_{col}.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    rows = _rows()
    for r in rows:
        r["model"] = ["x"]
    (tmp_path / "list.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "emptydir.csv").write_text("L,L0,r,D,model,direction\n" + "".join(
        f"{0.5 - 0.03 * i},0.6,{0.1 * i},0,m,\n" for i in range(1, 7)))
    (tmp_path / "somedir.csv").write_text("L,L0,r,D,model,direction\n" + "".join(
        f"{0.5 - 0.03 * i},0.6,{0.1 * i},0,m,{'higher' if i % 2 else ''}\n" for i in range(1, 7)))
    db = tmp_path / "store.csv"  # a table with complaw's D_tokens column reads like the store
    df = simulate("sengupta2025", {"alpha": 0.98, "beta": -1.18, "gamma": -0.14}, seed=0)
    df["D_tokens"] = df["D"] * 128
    df.to_csv(db, index=False)
    (tmp_path / "taken.csv").write_text("mine\n")
    return {"tmp": str(tmp_path)}


CATALOGUE = [
    # a JSONL cell holding an object or a list: fit and report (which would write its folder first)
    *[(f"fit {{tmp}}/obj_{c}.jsonl", f"column '{c}' holds a dict, not a plain value") for c in
      ("model", "method", "metric", "r", "L")],
    *[(f"report {{tmp}}/obj_{c}.jsonl --out {{tmp}}/rep", f"column '{c}' holds a dict") for c in ("model", "r")],
    ("validate {tmp}/obj_model.jsonl", "column 'model' holds a dict"),
    ("plan {tmp}/obj_method.jsonl --sigma 0.9", "column 'method' holds a dict"),
    ("fit {tmp}/list.jsonl", "column 'model' holds a list"),
    # an empty direction column is named as such (it used to read "rows mix higher- and lower-is-better")
    ("fit {tmp}/emptydir.csv", "the 'direction' column is empty in every row"),
    ("fit {tmp}/somedir.csv", "the 'direction' column is empty in 3 of 6 row(s)"),
    # a D unit complaw's store cannot express
    ("fit {tmp}/store.csv --d-unit M-bogus", "--d-unit 'M-bogus'"),
    ("report {tmp}/store.csv --d-unit parsecs --out {tmp}/rep", "--d-unit 'parsecs'"),
    ("fit {tmp}/store.csv --table results", "--table 'results': {tmp}/store.csv is a csv file"),
    # bounded work: every bootstrap draw re-solves the plan on the whole ratio grid
    ("plan {tmp}/store.csv --sigma 0.9 --r-step 0.0001 -B 100000", "plan evaluations per group, at most 2,000,000"),
    # a directory (or an empty argument, which reads as ".") where a file is expected
    ("fit {tmp}", "is a directory, not a results file"),
    ("report {tmp} --out {tmp}/rep", "is a directory, not a results file"),
    ("sweep {tmp}", "is a directory; give a YAML spec file"),
    ("run --config {tmp}", "is a directory; give a YAML experiment config file"),
    # the example table never overwrites a file of the user's
    ("zoo example --out {tmp}/taken.csv", "exists and is not the example table"),
]


@pytest.mark.parametrize("line, fragment", CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_bad_law_input_is_one_line_and_exit_2(files, line, fragment, capsys):
    refused_unchanged(capsys, line, fragment, files)  # the whole tree unchanged: no report folder either


def test_critical_from_beta_alone_judges_only_what_was_given(capsys):
    """`critical --beta -1` used to fill gamma = 0 and call the law infeasible for it; now the law has no RFT term."""
    assert main(["critical", "--beta", "-1", "--sigma", "0.8", "--r", "0.1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    r_crit = next(d for d in out if d["name"] == "r_crit")
    assert r_crit["value"] == pytest.approx(0.8 ** -1 - 1) and "gamma" not in r_crit["message"]
    assert next(d for d in out if d["name"] == "D_min")["regime"] == "no-rft-term"


def test_the_example_table_is_written_once_and_fits(tmp_path, capsys):
    out = tmp_path / "example.csv"
    assert main(["zoo", "example", "--out", str(out)]) == 0
    assert main(["zoo", "example", "--out", str(out)]) == 0  # the same table: left as it is
    assert "already holds the example table" in capsys.readouterr().out
    assert main(["fit", str(out), "-B", "0", "--json"]) == 0
    fits = json.loads(capsys.readouterr().out)
    assert {tuple(sorted(f["group"].items())) for f in fits["fits"]} == {
        (("method", m), ("metric", k)) for m in ("prunenet", "slicegpt") for k in ("avg_acc", "test_loss")}
