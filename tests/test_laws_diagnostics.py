"""Every identifiability warning fires on a table built to trigger it, and stays silent on a good design."""

import re

import numpy as np
import pandas as pd
import pytest

from complaw.laws import DUnit, fit, simulate

TRUTH = {"alpha": 0.98, "beta": -1.18, "gamma": -0.14}


def codes(res):
    return {w.code for w in res.warnings}


def test_good_design_is_quiet():
    res = fit(simulate("sengupta2025", TRUTH, seed=0), "sengupta2025", direction="higher", bootstrap=0)
    assert codes(res) == set() and res.sign_ok


def test_single_base_model():
    df = simulate("sengupta2025", TRUTH, base_values=(0.6,), seed=0)
    res = fit(df, "sengupta2025", direction="higher", bootstrap=0)
    assert "single-base" in codes(res)


def test_single_d():
    df = simulate("sengupta2025", TRUTH, d_values=(5.0,), seed=0)
    # without an intercept the constant D column stands in for one: gamma is then meaningless
    res = fit(df, "sengupta2025", direction="higher", bootstrap=0)
    assert "single-D" in codes(res)
    assert "single-D" not in codes(fit(simulate("sengupta2025", TRUTH, seed=0), "sengupta2025",
                                       direction="higher", bootstrap=0))


def test_rank_deficient_design_leaves_the_confounded_parameters_unidentified():
    # a single D next to an intercept: gamma and the intercept share one constant direction
    df = simulate("sengupta2025+1", {"log_c": 0.0, **TRUTH}, d_values=(5.0,), seed=0)
    res = fit(df, "sengupta2025+1", direction="higher", bootstrap=0)
    assert res.rank == 3 and set(res.unidentified) == {"log_c", "gamma"}
    assert res.unidentified["gamma"].startswith("every row has D = 5 (one amount of recovery data)")
    assert "rank-deficient: log_c is confounded with gamma" in res.unidentified["log_c"]
    for name in ("log_c", "gamma"):
        e = res.params[name]
        assert not e.identifiable and np.isnan(e.estimate) and e.ci is None and np.isnan(e.pvalue)
    # the identifiable exponents keep their estimates and intervals, and the prediction is unchanged
    assert res.params["beta"].identifiable and res.params["beta"].ci[0] < -1.18 < res.params["beta"].ci[1]
    assert res.sign_ok and res.sign_unknown == ("gamma",) and "no verdict for gamma" in res.sign_text()
    assert "rank-deficient" in codes(res) and re.search(r"gamma\s+not identifiable: every row has D = 5", res.summary())


def test_a_design_that_identifies_nothing_is_an_error():
    df = pd.DataFrame({"L": [0.5, 0.6, 0.55, 0.52], "D": [3.0] * 4})
    with pytest.raises(Exception, match="identifies no parameter of sengupta2025-D"):
        fit(df, "sengupta2025-D", direction="higher", bootstrap=0)


def test_few_ratios():
    df = simulate("sengupta2025", TRUTH, ratios=(0.2, 0.5), seed=0)
    assert "few-ratios" in codes(fit(df, "sengupta2025", direction="higher", bootstrap=0))


def test_degenerate_d_unit_raw_tokens():
    tokens = (0.0, 1e6, 5e6, 25e6)  # the paper's raw token counts
    df = simulate("sengupta2025", TRUTH, d_values=tokens, seed=0)
    res = fit(df, "sengupta2025", direction="higher", bootstrap=0)
    assert "degenerate-D-unit" in codes(res)
    rescaled = fit(df, "sengupta2025", direction="higher", bootstrap=0, unit=DUnit("M-tokens", 1e6))
    assert "degenerate-D-unit" not in codes(rescaled)
    assert rescaled.unit.name == "M-tokens" and rescaled.to_dict()["d_unit"]["scale"] == 1e6
    # the warning names a scale that clears it: the median D > 0, here 5e6 tokens
    (warning,) = [d.message for d in res.warnings if d.code == "degenerate-D-unit"]
    assert "--d-scale 5e+06" in warning
    assert "degenerate-D-unit" not in codes(fit(df, "sengupta2025", direction="higher", bootstrap=0,
                                                unit=DUnit("5M-tokens", 5e6)))


def test_degenerate_d_unit_in_samples_names_a_scale_near_the_data():
    """A few samples (the zoo demo's D = 16, 64) get a scale near them, not the raw-token advice."""
    df = simulate("sengupta2025", TRUTH, d_values=(0.0, 16.0, 64.0), seed=0)
    (warning,) = [d.message for d in fit(df, "sengupta2025", direction="higher", bootstrap=0).warnings
                  if d.code == "degenerate-D-unit"]
    assert "--d-scale 40 " in warning
    assert "degenerate-D-unit" not in codes(fit(df, "sengupta2025", direction="higher", bootstrap=0,
                                                unit=DUnit("40-samples", 40)))


def test_ill_conditioned_design():
    # L0 nearly constant and large: log L0 is almost a constant column, collinear with the intercept
    df = simulate("sengupta2025+1", {"log_c": 0.0, **TRUTH}, base_values=(0.600, 0.601, 0.602), seed=0)
    res = fit(df, "sengupta2025+1", direction="higher", bootstrap=0)
    assert "ill-conditioned" in codes(res) and res.condition_number > 30
    assert res.status == "unreliable" and res.unreliable[-1].startswith("ill-conditioned design (condition number")


def test_pooled_methods_and_metrics():
    a = simulate("sengupta2025", TRUTH, seed=1).assign(method="prunenet", metric="acc")
    b = simulate("sengupta2025", TRUTH, seed=2).assign(method="slicegpt", metric="acc_norm")
    res = fit(pd.concat([a, b]), "sengupta2025", direction="higher", bootstrap=0)
    assert {"pooled-method", "pooled-metric"} <= codes(res)


def test_sign_violation_verdict():
    df = simulate("sengupta2025", {"alpha": 0.98, "beta": 0.4, "gamma": -0.1}, seed=0)
    res = fit(df, "sengupta2025", direction="higher", bootstrap=0)
    assert not res.sign_ok and "beta" in res.sign_violations[0] and "VIOLATED" in res.summary()
