"""The report of a compression-law study: files, numbers, failures, degenerate groups, CLI."""

import json
import re
import sqlite3

import numpy as np
import pandas as pd
import pytest

from complaw.cli import main
from complaw.data import example_table_path
from complaw.laws import DUnit, simulate
from complaw.report import build_report

TRUE = {"alpha": 0.98, "beta": -1.18, "gamma": -0.14}


def small_table(models=3, seed=0) -> pd.DataFrame:
    """A small canonical table: one method, one metric, with runtimes, drawn from known exponents."""
    base = (0.45, 0.55, 0.65, 0.70)[:models]
    df = simulate("sengupta2025", TRUE, base_values=base, ratios=(0.1, 0.3, 0.5, 0.7), d_values=(0.0, 1.0, 8.0),
                  noise=0.01, seed=seed)
    sizes = {f"m{i}": 1e9 * (i + 1) for i in range(models)}
    df["N"] = df["model"].map(sizes)
    df["method"], df["metric"], df["direction"], df["status"] = "prunenet", "avg_acc", "higher", "success"
    df["S0"] = df["N"] / 1e11
    df["S"] = df["S0"] * (1 + df["r"]) ** -0.5
    return df


ERROR = "CUDA out of memory at layer 7"


@pytest.fixture(scope="module")
def example_table():
    """The bundled example table, with an error text on its failed rows (as the sweep's store writes)."""
    df = pd.read_csv(example_table_path())
    df["error"] = np.where(df["status"] != "success", ERROR, None)
    return df


@pytest.fixture(scope="module")
def example_report(example_table, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return build_report(example_table, out, unit=DUnit("M-tokens"), bootstrap=50)


def test_every_file_referenced_from_the_html_exists(example_report):
    html = example_report.html.read_text()
    refs = re.findall(r"""(?:src|href)=['"]([^'"#]+)['"]""", html)
    assert any(r.startswith("figures/") for r in refs) and "summary.md" in refs and "report.json" in refs
    for ref in refs:
        assert (example_report.out_dir / ref).is_file(), ref
    assert "<script" not in html and "http" not in html  # self-contained


def test_figures_are_non_empty_pngs(example_report):
    figs = example_report.figures
    assert set(figs) == {"perf_vs_r", "law_fit", "rft_impact", "critical_ratio", "d_min", "speedup", "obs_vs_pred"}
    for path in figs.values():
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, path
    assert example_report.data["figure_errors"] == {}


def test_summary_and_json_carry_the_key_numbers(example_report):
    md = example_report.md.read_text()
    data = json.loads(example_report.json.read_text())
    assert len(data["groups"]) == 4 and data["n_failed"] == 6
    for g in data["groups"]:
        assert g["label"] in md
        assert set(g["r_crit"]) == {"0.8", "0.9"} and g["r_crit"]["0.8"]["regime"] == "critical"
        assert g["best_form"] in g["fits"] and g["best_validation"]["rating"] in ("good", "usable", "unreliable")
        assert g["speedup"]["0.5"]["value"] > 1
        assert len([p for p in g["per_model_r_crit"] if p["sigma"] == 0.8]) == 8
    assert md.count("r_crit(σ = 0.8)") == 4 and md.count("r_crit(σ = 0.9)") == 4
    # the example table's truth: prunenet avg_acc has beta = -0.95, slicegpt's speed law b = -0.35
    assert example_report.r_crit(0.8, method="prunenet", metric="avg_acc") == pytest.approx(
        0.8 ** (1 / -0.95) - 1, abs=0.01)
    speed = {s["label"]: s["fit"]["params"]["b"]["estimate"] for s in data["speed"]}
    assert speed["slicegpt"] == pytest.approx(-0.35, abs=0.02) and speed["prunenet"] == pytest.approx(-0.67, abs=0.02)
    lines = example_report.summary_lines()
    assert 5 <= len(lines) <= 15 and str(example_report.html) in lines[-1]
    assert all("r_crit(σ=0.8)" in ln and "speedup@0.5" in ln for ln in lines[1:5])


def test_r_crit_of_a_law_with_known_exponents(tmp_path):
    df = simulate("sengupta2025", TRUE, noise=0.01, seed=1)
    df["metric"], df["direction"] = "avg_acc", "higher"
    rep = build_report(df, tmp_path, bootstrap=50, figures=False)
    data = json.loads((tmp_path / "report.json").read_text())
    (g,) = data["groups"]
    for s in (0.8, 0.9):
        truth = s ** (1 / TRUE["beta"]) - 1
        d = g["r_crit"][f"{s:g}"]
        assert d["value"] == pytest.approx(truth, abs=0.01)
        assert d["interval"][0] - 0.01 <= truth <= d["interval"][1] + 0.01
    assert rep.r_crit(0.8) == pytest.approx(0.8 ** (1 / TRUE["beta"]) - 1, abs=0.01)
    # no runtime columns: the speed law is recorded as missing, not raised
    assert data["speed"][0]["fit"] is None and "S" in data["speed"][0]["error"]


def test_failures_are_listed_with_their_error_text(example_report, example_table):
    df = example_table
    failed = df["status"] != "success"
    data = example_report.data
    assert len(data["failures"]) == failed.sum() == 6
    assert all(f["error"] == ERROR for f in data["failures"])
    html, md = example_report.html.read_text(), example_report.md.read_text()
    assert ERROR in html and ERROR in md
    excluded = {g["label"]: g["excluded"]["sengupta2025"].get("failed experiments", 0) for g in data["groups"]}
    per_group = df[failed].groupby(["method", "metric"]).size()
    assert excluded == {f"{m} / {k}": int(per_group.get((m, k), 0)) for m, k in
                        [("prunenet", "avg_acc"), ("prunenet", "test_loss"), ("slicegpt", "avg_acc"),
                         ("slicegpt", "test_loss")]}


def test_a_group_with_too_few_rows_is_recorded_not_raised(tmp_path):
    df = small_table()
    tiny = df.head(2).assign(method="tiny")
    rep = build_report(pd.concat([df, tiny], ignore_index=True), tmp_path, bootstrap=50)
    groups = {g["label"]: g for g in rep.data["groups"]}
    bad = groups["tiny / avg_acc"]
    assert set(bad["fit_errors"]) == set(rep.data["forms"]) and not bad["fits"]
    assert "need at least" in bad["fit_errors"]["sengupta2025"] and bad["r_crit"] == {}
    assert "need at least" in bad["decision_error"]
    assert groups["prunenet / avg_acc"]["r_crit"]["0.8"]["value"] > 0
    assert "not fitted" in rep.html.read_text() and rep.data["figure_errors"] == {}
    assert any("tiny / avg_acc" in ln and "no r_crit" in ln for ln in rep.summary_lines())


def test_every_experiment_failed(tmp_path):
    df = small_table().assign(status="failed", error="killed")
    rep = build_report(df, tmp_path, bootstrap=0, figures=False)
    assert rep.data["groups"] == [] and len(rep.data["failures"]) == len(df)
    assert "every experiment failed" in rep.md.read_text()


def test_cli_writes_the_report_from_a_sqlite_store(tmp_path, capsys):
    db = tmp_path / "sweep.db"
    with sqlite3.connect(db) as con:
        small_table().to_sql("law_rows", con, index=False)
        pd.DataFrame({"config_hash": ["x"]}).to_sql("experiments", con, index=False)
    out = tmp_path / "rep"
    code = main(["report", str(db), "--out", str(out), "--bootstrap", "50", "--d-unit", "samples"])
    printed = capsys.readouterr().out
    assert code == 0
    assert (out / "index.html").is_file() and (out / "summary.md").is_file() and (out / "figures").is_dir()
    assert "prunenet / avg_acc" in printed and str(out / "index.html") in printed
    speed = json.loads((out / "report.json").read_text())["speed"][0]
    assert speed["fit"]["params"]["b"]["estimate"] == pytest.approx(-0.5, abs=1e-6)


def test_cli_bad_source_is_one_line_and_exit_2(tmp_path, capsys):
    code = main(["report", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "rep")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "missing.csv" in err
    assert not (tmp_path / "rep").exists()


def test_blank_or_flat_d_min_curves_say_why():
    from types import SimpleNamespace

    from complaw.report.figures import _d_min_note

    assert _d_min_note(np.array([0.0, 0.5, 3.0]), None, 0.6) == ""
    assert _d_min_note(np.zeros(5), None, 0.95) == "D_min = 0 for r ≤ 0.95 (no RFT needed)"
    infeasible = SimpleNamespace(regime="infeasible", message="")
    assert _d_min_note(np.full(5, np.nan), infeasible, 0.95) == "no D_min (law's signs violated)"
    assert _d_min_note(np.full(5, np.nan), SimpleNamespace(regime="unreachable", message=""), 0.9) == \
        "no D_min (σ out of reach)"


def test_unwritable_report_directory_is_one_line_exit_2(tmp_path, capsys):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    assert main(["report", str(example_table_path()), "--out", str(blocked / "report")]) == 2
    err = capsys.readouterr().err
    assert "a-file is not a directory" in err and "Traceback" not in err
    assert main(["zoo", "build", "--out", str(blocked / "zoo")]) == 2
    assert "a-file is not a directory" in capsys.readouterr().err  # checked before anything is created


# --- figures people can read (#13) --------------------------------------------------------------------
def test_metric_axis_is_logarithmic_when_it_spans_more_than_a_decade():
    import matplotlib.pyplot as plt

    from complaw.report.figures import _log_if_wide

    fig, (wide, narrow) = plt.subplots(1, 2)
    assert _log_if_wide(wide, [5.2, 40.0, 2868.0]) and wide.get_yscale() == "log"
    assert not _log_if_wide(narrow, [0.41, 0.55, 0.62]) and narrow.get_yscale() == "linear"
    plt.close(fig)


def test_model_sizes_have_a_unit_and_their_labels_do_not_overlap(tmp_path):
    from complaw.report.analysis import NUnit
    from complaw.report.figures import _size_text, _thin_ticks

    assert NUnit.parse("B").params(6.7) == pytest.approx(6.7e9) and NUnit.parse(None).scale == 1
    assert [_size_text(n) for n in (6.7e9, 350e6, 0.63e6, 42e3, 7.0)] == ["6.7B", "0.35B", "0.63M", "42K", "7"]
    with pytest.raises(Exception, match="--n-unit 'bytes'"):
        NUnit.parse("bytes")
    # 6.7B and 7B sit 0.02 decades apart: the second keeps its tick but not its label
    assert _thin_ticks([0.125e9, 1.3e9, 6.7e9, 7e9, 13e9, 30e9], 0.2) == [True, True, True, False, True, True]
    df = small_table().assign(N=lambda d: d["N"] / 1e9)  # sizes given in billions
    rep = build_report(df, tmp_path / "default", bootstrap=0, figures=False)
    assert any("--n-unit B" in n for n in rep.data["notes"])
    rep = build_report(df, tmp_path / "billions", bootstrap=0, figures=False, n_unit="B")
    assert rep.data["n_unit"] == {"name": "B", "scale": 1e9} and not any("--n-unit" in n for n in rep.data["notes"])


def test_law_fit_figure_draws_the_best_form_and_the_v1_law(tmp_path):
    from complaw.report.figures import _law_fit_forms

    df = small_table()
    rep = build_report(df, tmp_path, bootstrap=0, forms=("sengupta2025", "pruning-law"), figures=False)
    (g,) = rep.analysis.groups
    drawn = [f.form.name for f in _law_fit_forms(g)]
    assert drawn[0] == g.best_form and "sengupta2025" in drawn and len(set(drawn)) == len(drawn)
    # a group whose v1 law cannot be fitted still shows its best form (no text box instead of a figure)
    no_d = df.drop(columns=["D"])[df["D"] == 0]
    rep = build_report(no_d, tmp_path / "no-d", bootstrap=0, forms=("pruning-law", "sengupta2025-L0-r"))
    (g,) = rep.analysis.groups
    assert [f.form.name for f in _law_fit_forms(g)] == [g.best_form, "sengupta2025-L0-r"][: 1 + (g.best_form != "sengupta2025-L0-r")]
    assert "law_fit" in rep.figures and rep.data["figure_errors"] == {}


def test_markdown_tables_have_as_many_cells_as_headers(example_report):
    md = example_report.md.read_text()
    for block in md.split("\n\n"):
        rows = [ln for ln in block.splitlines() if ln.startswith("| ")]
        if rows:
            cells = {ln.replace("\\|", "").count("|") for ln in rows}
            assert len(cells) == 1, block


def test_html_tables_have_as_many_cells_as_headers(example_report, tmp_path):
    df = small_table()
    broken = pd.concat([df, df.head(2).assign(method="tiny")], ignore_index=True)  # a group that fails
    failing = build_report(broken, tmp_path, bootstrap=0, figures=False)
    for rep in (example_report, failing):
        html = rep.html.read_text()
        for table in re.findall(r"<table>(.*?)</table>", html, re.S):
            head = len(re.findall(r"<th[ >]", table))
            rows = re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.S)
            assert all(len(re.findall(r"<td", r)) == head for r in rows), table[:200]
