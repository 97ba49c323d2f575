"""The law engine on tables shaped like published results (#13): each bad table of the issue, built here,
with the exact behaviour it must have — no zero-width intervals, no decisions from parameters the table
cannot identify, one bad group never stops a table, messages that name what is wrong in plain values."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from complaw.cli import main
from complaw.decide import Law, critical_ratio, min_rft_data, plan
from complaw.errors import ComplawError
from complaw.laws import fit, fit_each, fit_groups, simulate
from complaw.laws.fit import FitFailure
from complaw.report import build_report

TRUTH = {"alpha": 0.98, "beta": -1.18, "gamma": -0.14}
LOSS = {"alpha": 1.0, "beta": 1.6, "gamma": 0.2}


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def write(df: pd.DataFrame, tmp_path, name="t.csv"):
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


# --- one base model: the cluster bootstrap is refused, intervals are model-based -----------------------
def one_model() -> pd.DataFrame:
    df = simulate("sengupta2025", TRUTH, base_values=(0.6,), ratios=(0.1, 0.2, 0.3, 0.5, 0.7),
                  d_values=(0.0, 1.0, 4.0, 16.0), seed=0)
    return df.assign(method="sleb", metric="avg_acc")


def test_one_base_model_refuses_the_bootstrap_and_gives_no_zero_width_interval():
    res = fit(one_model(), "sengupta2025", bootstrap=300)
    assert res.interval_kind == "ols" and res.n_clusters == 0
    assert res.interval_note.startswith("cluster bootstrap refused: one 'model' cluster (model = m0)")
    assert "zero-width" in res.interval_note and "bootstrap-refused" in {w.code for w in res.warnings}
    assert res.to_dict()["bootstrap"] is None and res.to_dict()["interval"]["kind"] == "ols"
    # alpha is the level in disguise; the others are identified with honest (non-degenerate) intervals
    assert set(res.unidentified) == {"alpha"} and "one base model" in res.unidentified["alpha"]
    for name in ("beta", "gamma"):
        e = res.params[name]
        assert e.interval_kind == "ols" and e.boot_ci is None and e.ci[1] - e.ci[0] > 1e-3
    law = Law.from_fit(res)
    rc = critical_ratio(law, 0.8)
    assert rc.regime == "critical" and rc.extra["interval_kind"] == "ols"
    assert rc.interval[1] - rc.interval[0] > 1e-3 and rc.interval[0] < rc.value < rc.interval[1]
    assert min_rft_data(law, 0.1, 0.8).extra["interval_kind"] == "ols"


def test_one_base_model_other_interval_choices():
    df = one_model()
    with pytest.raises(ComplawError, match="--interval cluster: one 'model' cluster .* use --interval rows"):
        fit(df, "sengupta2025", bootstrap=100, interval="cluster")
    rows = fit(df, "sengupta2025", bootstrap=200, interval="rows")
    assert rows.interval_kind == "row-bootstrap" and rows.params["beta"].interval_kind == "row-bootstrap"
    lo, hi = rows.params["beta"].boot_ci
    assert hi - lo > 1e-3
    robust = fit(df, "sengupta2025", bootstrap=30, robust=True)  # Huber has no model-based interval
    assert robust.interval_kind == "row-bootstrap" and "rows resampled instead" in robust.interval_note


def test_one_base_model_on_the_cli_names_the_interval_kind(tmp_path, capsys):
    path = write(one_model(), tmp_path)
    code, out, _ = run(capsys, "fit", path, "--bootstrap", "200", "--sigma", "0.8", "--json")
    assert code == 0
    d = json.loads(out)
    (f,) = d["fits"]
    assert f["interval"]["kind"] == "ols" and "refused" in f["interval"]["note"]
    assert f["params"]["alpha"]["identifiable"] is False and f["params"]["alpha"]["ci"] is None
    assert all(p["ci"][1] > p["ci"][0] for p in f["params"].values() if p["identifiable"])
    (c,) = d["critical"]
    assert c["interval_kind"] == "ols" and c["interval"][1] > c["interval"][0]
    code, out, _ = run(capsys, "critical", path, "--sigma", "0.8", "--r", "0.1", "--bootstrap", "200")
    assert code == 0 and "model-based (OLS)" in out


def test_few_clusters_are_flagged_rough_and_the_count_is_stored():
    df = simulate("sengupta2025", TRUTH, base_values=(0.4, 0.55, 0.7), seed=1)
    res = fit(df, "sengupta2025", direction="higher", bootstrap=200)
    assert res.interval_kind == "cluster-bootstrap" and res.n_clusters == 3
    assert res.interval_note.startswith("only 3 'model' clusters: cluster-bootstrap percentile intervals are rough")
    assert "--interval rows" in res.interval_note and "--interval ols" in res.interval_note
    assert all(e.clusters == 3 and e.interval_kind == "cluster-bootstrap" for e in res.params.values())
    d = critical_ratio(Law.from_fit(res), 0.8).to_dict()
    assert d["interval_kind"] == "cluster-bootstrap" and d["clusters"] == 3 and "rough" in d["interval_note"]
    many = fit(simulate("sengupta2025", TRUTH, base_values=tuple(np.linspace(0.3, 0.8, 10)), seed=1),
               "sengupta2025", direction="higher", bootstrap=50)
    assert many.n_clusters == 10 and many.interval_note == ""


# --- every row at D = 0: gamma is not identifiable, so there is no D_min anywhere ----------------------
def no_rft(level: float = -0.14) -> pd.DataFrame:
    """Published post-pruning perplexities: 7 base models, 7 ratios, no recovery fine-tuning at all."""
    df = simulate("sengupta2025", {**LOSS, "gamma": -level}, base_values=(5.5, 6.1, 7.0, 9.3, 10.2, 12.6, 14.0),
                  ratios=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7), d_values=(0.0,), noise=0.02, seed=1)
    return df.assign(method="sleb", metric="wikitext2_ppl")


def test_all_d_zero_leaves_gamma_unidentified_and_decides_nothing_that_needs_it():
    res = fit(no_rft(), "sengupta2025", bootstrap=100)
    assert set(res.unidentified) == {"gamma"}
    assert res.unidentified["gamma"] == "every row has D = 0 (no recovery fine-tuning): gamma cannot be estimated"
    g = res.params["gamma"]
    assert not g.identifiable and math.isnan(g.estimate) and g.ci is None and g.boot_ci is None
    assert res.sign_unknown == ("gamma",) and "gamma" not in " ".join(res.sign_violations)
    assert res.to_dict()["params"]["gamma"]["estimate"] is None
    law = Law.from_fit(res)
    d = min_rft_data(law, 0.1, 0.8)
    assert d.regime == "not-identifiable" and math.isnan(d.value) and d.interval is None
    assert d.message == ("not identifiable from this table: gamma: every row has D = 0 (no recovery "
                         "fine-tuning): gamma cannot be estimated")
    rc = critical_ratio(law, 0.8)  # needs only beta, but may not promise that RFT gets there
    assert rc.regime == "critical" and "a finite D does" not in rc.message
    assert "not identifiable from this table (gamma" in rc.message
    p = plan(law, sigma=0.8)
    assert p.optimum is None and p.notes[0].startswith("not identifiable from this table: gamma")


def test_all_d_zero_on_the_cli_gives_no_d_min(tmp_path, capsys):
    path = write(no_rft(), tmp_path)
    code, out, _ = run(capsys, "critical", path, "--sigma", "0.8", "--r", "0.1", "--r", "0.3", "--json")
    assert code == 0
    rows = json.loads(out)
    dmin = [r for r in rows if r["name"] == "D_min"]
    assert len(dmin) == 2 and all(r["value"] is None and r["regime"] == "not-identifiable" for r in dmin)
    code, out, _ = run(capsys, "fit", path, "--bootstrap", "50")
    assert code == 0 and "sengupta2025: gamma not identifiable: every row has D = 0" in out


def test_all_d_zero_report_prefers_identified_forms_and_draws_no_d_min(tmp_path):
    df = no_rft()
    fits = {f: fit(df, f, bootstrap=0) for f in ("sengupta2025", "sengupta2025-L0-r", "pruning-law", "talk")}
    assert min(fits, key=lambda f: fits[f].aic) == "sengupta2025"  # by AIC alone the D form would win
    rep = build_report(df, tmp_path, bootstrap=50)
    (g,) = rep.data["groups"]
    assert g["best_form"] not in ("sengupta2025", "talk") and not g["fits"][g["best_form"]]["unidentified"]
    assert g["d_min"] == [] and g["d_min_error"].startswith("not identifiable from this table: gamma")
    assert "d_min" not in rep.figures and not (tmp_path / "figures" / "d_min.png").exists()
    # per model, the law without its (unidentifiable) RFT factor gives the critical ratio
    assert {m["form"] for m in g["per_model_r_crit"]} == {"sengupta2025-r+1"}
    assert all(m["regime"] == "critical" for m in g["per_model_r_crit"])
    assert "recovery fine-tuning" in rep.data["figure_notes"]["d_min"]
    html, md = rep.html.read_text(), rep.md.read_text()
    assert "not drawn" in html and "D_min: none — not identifiable" in md
    assert "a finite D does" not in html + md and "finite D suffices" not in html + md


def test_a_single_ratio_leaves_the_r_exponent_unidentified():
    df = simulate("sengupta2025", TRUTH, ratios=(0.3,), seed=2)
    res = fit(df, "sengupta2025", direction="higher", bootstrap=50)
    assert res.unidentified["beta"].startswith("every row has r = 0.3 (one compression ratio)")
    assert res.status == "unreliable" and "only 1 distinct compression ratio" in res.unreliable[0]
    rc = critical_ratio(Law.from_fit(res), 0.8)
    assert rc.regime == "not-identifiable" and rc.message.startswith("not identifiable from this table: beta")
    assert not any("beta" in v for v in res.sign_violations)


# --- unreliable fits are marked in the table, the JSON and the report -----------------------------------
def test_unreliable_fits_are_marked_everywhere(tmp_path, capsys):
    df = simulate("sengupta2025", TRUTH, ratios=(0.2, 0.5), seed=3).assign(metric="acc")
    res = fit(df, "sengupta2025", bootstrap=0)
    assert res.status == "unreliable" and res.to_dict()["status"] == "unreliable"
    code, out, _ = run(capsys, "fit", write(df, tmp_path), "--bootstrap", "0")
    assert code == 0 and "unreliable" in out and "only 2 distinct compression ratio(s)" in out
    rep = build_report(df, tmp_path / "rep", bootstrap=0, figures=False)
    assert rep.data["groups"][0]["fit_status"]["sengupta2025"] == "unreliable"
    assert "unreliable" in rep.md.read_text()
    # a negative centred R² (no intercept, and a law that fits worse than a constant)
    flat = pd.DataFrame({"L": [0.5, 0.52, 0.49, 0.51, 0.5, 0.48], "r": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]})
    bad = fit(flat, "sengupta2025-r", direction="higher", bootstrap=0)
    assert bad.r2 < 0 and any(u.startswith("negative centred R²") for u in bad.unreliable)


# --- one group, one verdict ----------------------------------------------------------------------------
def two_groups() -> pd.DataFrame:
    a = simulate("sengupta2025", TRUTH, seed=2).assign(method="wanda", metric="avg_acc")
    b = simulate("sengupta2025", TRUTH, seed=3).head(2).assign(method="llm-pruner", metric="avg_acc")
    return pd.concat([a, b], ignore_index=True)


def test_a_group_with_two_rows_does_not_stop_the_others():
    items = fit_each(two_groups(), "sengupta2025", bootstrap=0)
    failed = [x for x in items if isinstance(x, FitFailure)]
    fitted = [x for x in items if not isinstance(x, FitFailure)]
    assert [f.group["method"] for f in fitted] == ["wanda"]
    (f,) = failed
    assert f.group == {"method": "llm-pruner", "metric": "avg_acc"} and f.n_rows == 2
    assert f.reason == "2 usable row(s) for form sengupta2025 with 3 parameters; need at least 4"
    with pytest.raises(ComplawError, match=r"\[method=llm-pruner, metric=avg_acc\] sengupta2025: 2 usable row"):
        fit_groups(two_groups(), "sengupta2025", bootstrap=0)  # the strict API names the group


@pytest.mark.parametrize("extra", [[], ["--drop-invalid"]])
def test_two_group_table_on_the_cli_exits_0_and_strict_exits_2(tmp_path, capsys, extra):
    path = write(two_groups(), tmp_path)
    code, out, err = run(capsys, "fit", path, "--bootstrap", "20", *extra)
    assert code == 0 and err == ""
    assert "failed" in out and "need at least 4" in out and "wanda/avg_acc" in out
    code, out, _ = run(capsys, "fit", path, "--bootstrap", "20", "--json", *extra)
    d = json.loads(out)
    assert [f["group"]["method"] for f in d["fits"]] == ["wanda"]
    assert d["failures"] == [{"form": "sengupta2025", "group": {"method": "llm-pruner", "metric": "avg_acc"},
                              "status": "failed", "reason": "2 usable row(s) for form sengupta2025 with 3 "
                              "parameters; need at least 4", "n_rows": 2}]
    code, _, err = run(capsys, "fit", path, "--bootstrap", "20", "--strict", *extra)
    assert code == 2 and err.startswith("error: --strict: 1 fit(s) could not be made; first, llm-pruner/avg_acc")
    assert len(err.strip().splitlines()) == 1
    code, out, err = run(capsys, "validate", path, *extra)
    assert code == 0 and "llm-pruner" in out and "wanda" in out


def test_no_group_fitted_is_exit_2_naming_the_reason(tmp_path, capsys):
    df = two_groups()
    path = write(df[df["method"] == "llm-pruner"], tmp_path)
    code, _, err = run(capsys, "fit", path)
    assert code == 2 and "[method=llm-pruner, metric=avg_acc]: 2 usable row(s)" in err
    both = pd.concat([df[df["method"] == "llm-pruner"], df[df["method"] == "llm-pruner"].assign(method="x")])
    code, _, err = run(capsys, "fit", write(both, tmp_path, "b.csv"))
    assert code == 2 and "none of 2 fits could be made" in err and len(err.strip().splitlines()) == 1


def test_report_of_the_two_group_table_records_the_failed_group(tmp_path, capsys):
    code, out, _ = run(capsys, "report", write(two_groups(), tmp_path), "--out", tmp_path / "rep", "--bootstrap", "20",
                       "--no-figures")
    assert code == 0 and "llm-pruner / avg_acc: no law fitted (2 usable row(s)" in out
    md = (tmp_path / "rep" / "summary.md").read_text()
    assert "forms fitted: none (no form could be fitted)" in md and "rows: 2 fitted" not in md
    code, _, err = run(capsys, "report", write(two_groups(), tmp_path), "--out", tmp_path / "rep", "--bootstrap", "0",
                       "--no-figures", "--strict")
    assert code == 2 and err.startswith("error: --strict:")


def test_warnings_name_their_group(tmp_path, capsys):
    a = simulate("sengupta2025", TRUTH, base_values=(0.4, 0.6, 0.7), seed=1).assign(method="a", metric="acc")
    b = simulate("sengupta2025", TRUTH, ratios=(0.2, 0.4), seed=2).assign(method="b", metric="acc")
    code, out, _ = run(capsys, "fit", write(pd.concat([a, b]), tmp_path), "--bootstrap", "20")
    warnings = [ln.strip() for ln in out.splitlines() if " warning [" in ln]
    assert warnings and all(ln.startswith(("[method=a, metric=acc]", "[method=b, metric=acc]")) for ln in warnings)
    assert any(ln.startswith("[method=b, metric=acc] sengupta2025 warning [few-ratios]") for ln in warnings)
    assert any(ln.startswith("[method=a, metric=acc] sengupta2025 warning [few-clusters]") for ln in warnings)


# --- input and messages ---------------------------------------------------------------------------------
def raw_table() -> pd.DataFrame:
    """A paper's table without RFT, its own column names: L = L0^alpha (1+r)^beta (the Eq. 2 law)."""
    df = simulate("sengupta2025", {**TRUTH, "gamma": 0.0}, seed=4)
    df = df[df["D"] == 0].drop(columns=["D"]).rename(columns={"L": "value", "L0": "base", "r": "ratio"})
    return df.assign(method="slicegpt", metric="piqa_acc")


def test_report_takes_map_on_a_raw_csv(tmp_path, capsys):
    path = write(raw_table(), tmp_path, "results.csv")
    code, out, err = run(capsys, "report", path, "--map", "L=value", "L0=base", "r=ratio", "model=model",
                         "method=method", "metric=metric", "--out", tmp_path / "rep", "--bootstrap", "50")
    assert code == 0, err
    data = json.loads((tmp_path / "rep" / "report.json").read_text())
    (g,) = data["groups"]
    assert g["label"] == "slicegpt / piqa_acc" and g["n_rows"] == 50 and g["decision_form"] == "sengupta2025-L0-r"
    # no D column: the decisions come from the paper's law without its RFT factor, r_crit = 0.8^(1/beta) - 1
    assert g["r_crit"]["0.8"]["value"] == pytest.approx(0.8 ** (1 / TRUTH["beta"]) - 1, abs=0.01)
    assert "slicegpt / piqa_acc" in out
    code, _, err = run(capsys, "report", path, "--out", tmp_path / "rep2")  # unmapped: one line naming --map
    assert code == 2 and "--map" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("value", "direction"), [(1, "higher"), (0, "lower"), ("max", "higher"), ("min", "lower")])
def test_direction_column_accepts_one_zero_and_max_min(value, direction):
    params = TRUTH if direction == "higher" else LOSS
    df = simulate("sengupta2025", params, base_values=(0.4, 0.5, 0.6) if direction == "higher" else (3, 4, 5),
                  seed=5).assign(direction=value)
    res = fit(df, "sengupta2025", bootstrap=0)
    assert res.direction == direction and res.sign_ok


def test_bad_direction_value_and_blank_cell_are_plain_in_messages(tmp_path, capsys):
    df = simulate("sengupta2025", TRUTH, seed=6).assign(direction=2)
    with pytest.raises(ComplawError) as err:
        fit(df, "sengupta2025", bootstrap=0)
    assert str(err.value).startswith("table: direction value 2: use higher (also max, 1") and "np." not in str(err.value)
    blank = simulate("sengupta2025", TRUTH, seed=6).assign(direction="higher")
    blank["D"] = blank["D"].astype(object)
    blank.loc[7, "D"] = None
    code, _, err = run(capsys, "fit", write(blank, tmp_path))
    assert code == 2
    assert err.strip().endswith("'D' is empty (NaN) in 1 row(s), first data row 8 (value nan); fill it or pass "
                                "--drop-invalid")
    assert "np." not in err


def test_direction_that_contradicts_a_metric_name_is_an_error_naming_both(tmp_path, capsys):
    df = simulate("sengupta2025", LOSS, base_values=(5, 6, 7, 8), seed=7).assign(metric="c4_ppl")
    path = write(df, tmp_path)
    code, _, err = run(capsys, "fit", path, "--direction", "higher")
    assert code == 2 and err.strip() == (
        "error: --direction higher: contradicts metric 'c4_ppl', whose name says lower is better; drop "
        "--direction (the name decides), or add a direction column if the name misleads")
    assert run(capsys, "fit", path, "--direction", "lower", "--bootstrap", "0")[0] == 0
    code, _, err = run(capsys, "report", path, "--direction", "higher", "--out", tmp_path / "rep")
    assert code == 2 and "contradicts metric 'c4_ppl'" in err
    col = write(df.drop(columns=["metric"]).assign(direction="lower"), tmp_path, "col.csv")
    code, _, err = run(capsys, "fit", col, "--direction", "higher")
    assert code == 2 and "contradicts the direction column" in err


def test_validation_scheme_that_cannot_run_says_why(tmp_path, capsys):
    df = pd.concat([simulate("sengupta2025", TRUTH, seed=8).assign(method=m, metric="acc") for m in ("a", "b")])
    path = write(df, tmp_path)
    code, out, err = run(capsys, "validate", path, "--scheme", "leave-one-method-out")
    assert code == 2 and out == ""
    assert ("no validation could run; leave-one-method-out: each group holds one method (laws are fitted per "
            "method); to validate across methods, group by the metric only: --group metric") in err
    code, out, _ = run(capsys, "validate", path, "--scheme", "leave-one-method-out", "--group", "metric", "--json")
    assert code == 0 and json.loads(out)["validations"][0]["scheme"] == "leave-one-method-out"
    code, out, err = run(capsys, "validate", path, "--scheme", "small-to-large")
    assert code == 2 and "scheme small-to-large needs column 'N'" in err


def test_one_base_model_report_names_its_intervals(tmp_path, capsys):
    path = write(one_model(), tmp_path)
    code, _, err = run(capsys, "report", path, "--out", tmp_path / "ols", "--bootstrap", "50", "--no-figures")
    assert code == 0, err
    data = json.loads((tmp_path / "ols" / "report.json").read_text())
    (g,) = data["groups"]
    fit_ = g["fits"]["sengupta2025"]
    assert fit_["interval"]["kind"] == "ols" and "refused" in fit_["interval"]["note"]
    rc = g["r_crit"]["0.8"]
    assert rc["interval_kind"] == "ols" and rc["interval"][1] - rc["interval"][0] > 1e-3
    assert "model-based (OLS)" in (tmp_path / "ols" / "index.html").read_text()
    code, _, _ = run(capsys, "report", path, "--out", tmp_path / "rows", "--bootstrap", "50", "--no-figures",
                     "--interval", "rows")
    rows = json.loads((tmp_path / "rows" / "report.json").read_text())["groups"][0]
    assert code == 0 and rows["fits"]["sengupta2025"]["interval"]["kind"] == "row-bootstrap"
    assert rows["r_crit"]["0.8"]["interval_kind"] == "row-bootstrap"


def test_the_library_checks_the_direction_too():
    df = simulate("sengupta2025", LOSS, base_values=(5, 6, 7, 8), seed=7).assign(metric="c4_ppl")
    with pytest.raises(ComplawError, match="--direction higher: contradicts metric 'c4_ppl'"):
        fit(df, "sengupta2025", direction="higher", bootstrap=0)
    from complaw.laws import validate

    with pytest.raises(ComplawError, match="contradicts metric 'c4_ppl'"):
        validate(df, "sengupta2025", "leave-one-ratio-out", direction="higher")
    assert fit(df, "sengupta2025", bootstrap=0).direction == "lower"
