"""The law-engine CLI end to end (through complaw.cli.main, as the console script calls it)."""

import json

import pytest

from complaw.cli import main
from complaw.data import example_table_path
from complaw.laws import simulate


def run(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_critical_prints_the_papers_ratio(capsys):
    code, out, _ = run(capsys, "critical", "--alpha", "0.98", "--beta", "-1.18", "--gamma", "-0.14", "--sigma", "0.8")
    assert code == 0 and "0.2082" in out
    code, out, _ = run(capsys, "critical", "--alpha", "0.98", "--beta", "-1.18", "--gamma", "-0.14",
                       "--sigma", "0.8", "--r", "0.1", "--json")
    rows = json.loads(out)
    assert rows[0]["value"] == pytest.approx(0.2082, abs=1e-4) and rows[1]["name"] == "D_min"


def test_speedup_of_the_talk(capsys):
    code, out, _ = run(capsys, "speedup", "--b", "-0.67", "--r", "0.3", "--r", "0.6", "--json")
    rows = json.loads(out)
    assert code == 0 and [round(r["value"], 2) for r in rows] == [1.19, 1.37]


def test_fit_with_mapping_pairs_and_json(tmp_path, capsys):
    df = simulate("sengupta2025", {"alpha": 0.98, "beta": -1.18, "gamma": -0.14}, seed=0)
    df = df.rename(columns={"L": "value", "L0": "base", "r": "ratio", "D": "rft_samples"})
    path = tmp_path / "mine.csv"
    df.to_csv(path, index=False)
    code, out, _ = run(capsys, "fit", str(path), "--map", "L=value", "L0=base", "r=ratio", "D=rft_samples",
                       "--direction", "higher", "--bootstrap", "50", "--sigma", "0.8", "--json")
    assert code == 0
    res = json.loads(out)
    assert res["fits"][0]["params"]["beta"]["estimate"] == pytest.approx(-1.18, abs=0.03)
    assert res["critical"][0]["value"] == pytest.approx(0.208, abs=0.01)
    code, out, _ = run(capsys, "fit", str(path), "--map", "L=value,L0=base,r=ratio,D=rft_samples",
                       "--direction", "higher", "--bootstrap", "0", "--form", "sengupta2025", "--form", "talk")
    assert code == 0 and "talk" in out and "Parameters" in out


def test_forms_validate_plan_on_the_example_table(capsys):
    code, out, _ = run(capsys, "forms")
    assert code == 0 and "sengupta2025-L0-r" in out and "pruning-law" in out
    path = str(example_table_path())
    code, out, _ = run(capsys, "validate", path, "--d-unit", "M-tokens", "--json")
    assert code == 0
    result = json.loads(out)
    schemes = {v["scheme"] for v in result["validations"]}
    assert schemes == {"leave-one-model-out", "small-to-large", "leave-one-ratio-out"}  # method is a group
    # the scheme that cannot run says why, once per group
    assert {s["scheme"] for s in result["skipped"]} == {"leave-one-method-out"} and len(result["skipped"]) == 4
    assert all("each group holds one method" in s["reason"] for s in result["skipped"])
    code, out, _ = run(capsys, "plan", path, "--sigma", "0.8", "--group", "method,metric", "--bootstrap", "20",
                       "--speed-b", "-0.67", "--serving-volume", "1e5", "--base-runtime-s", "0.05",
                       "--price-per-s", "0.001", "--rft-price", "0.5", "--json")
    assert code == 0
    plans = json.loads(out)
    assert len(plans) == 4 and all(p["optimum"]["retention"] >= 0.8 - 1e-9 for p in plans)


def test_demo_runs(tmp_path, capsys):
    code, out, _ = run(capsys, "demo", "--example", "--out", str(tmp_path))
    assert code == 0 and (tmp_path / "fits.json").exists() and "Critical compression ratio" in out


@pytest.mark.parametrize("argv, message", [
    (["fit", "--bogus"], "No such option: --bogus"),
    (["run"], "no model given"),
    (["critical", "--alpha", "x"], "Invalid value for '--alpha'"),
    (["no-such-command"], "No such command"),
    (["run", "zoo:llama-xs", "--ratio", "1.5"], "complaw run: --ratio: Input should be less than 1 (got 1.5)"),
    (["run", "zoo:llama-xs", "--rft-samples", "-3"], "--rft-samples: Input should be greater than or equal to 0"),
])
def test_usage_errors_exit_2_without_a_traceback(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
