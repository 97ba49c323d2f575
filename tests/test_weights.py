"""The uncertainty of each point (#14): standard errors stored, weighted least squares, error bars in the report."""

import numpy as np
import pandas as pd
import pytest

from complaw.errors import ComplawError
from complaw.laws import fit, simulate
from complaw.report import build_report

TRUE = {"alpha": 0.98, "beta": -1.18, "gamma": -0.14}


def noisy_table(seed: int) -> pd.DataFrame:
    """Accuracies measured on 20 or 2,000 items: the row's binomial standard error is its L_se."""
    df = simulate("sengupta2025", TRUE, base_values=(0.45, 0.55, 0.65, 0.7), ratios=(0.1, 0.3, 0.5, 0.7),
                  d_values=(0.0, 1.0, 8.0), noise=0.0, seed=seed)
    rng = np.random.default_rng(seed)
    n = rng.choice([20, 2000], size=len(df))
    df["L_se"] = np.sqrt(df["L"] * (1 - df["L"]) / n)
    df["L"] = df["L"] + rng.normal(0, 1, len(df)) * df["L_se"]
    df["metric"], df["direction"], df["method"] = "avg_acc", "higher", "prunenet"
    return df


def test_inverse_variance_weights_recover_the_law_better():
    err = {"none": [], "inverse-variance": []}
    for seed in range(8):
        df = noisy_table(seed)
        for w in err:
            res = fit(df, "sengupta2025", bootstrap=0, weights=w)
            err[w].append(abs(res.params["beta"].estimate - TRUE["beta"]))
    assert np.mean(err["inverse-variance"]) < 0.5 * np.mean(err["none"]), err
    res = fit(noisy_table(0), "sengupta2025", bootstrap=0, weights="inverse-variance")
    assert res.weighting.startswith("inverse-variance") and "delta method" in res.weighting
    assert res.to_dict()["weighting"] == res.weighting and "weights: inverse-variance" in res.summary()


def test_auto_weights_fall_back_to_ols_and_say_why():
    df = noisy_table(0)
    assert fit(df.drop(columns="L_se"), "sengupta2025", bootstrap=0, weights="auto").weighting == \
        "none (OLS): no L_se column"
    df.loc[3, "L_se"] = np.nan
    res = fit(df, "sengupta2025", bootstrap=0, weights="auto")
    assert res.weighting == "none (OLS): 1 row(s) without a standard error"
    with pytest.raises(ComplawError, match="--weights inverse-variance: 1 row"):
        fit(df, "sengupta2025", bootstrap=0, weights="inverse-variance")
    with pytest.raises(ComplawError, match="--weights 'bogus'"):
        fit(df, "sengupta2025", bootstrap=0, weights="bogus")


def test_an_offset_adds_the_base_values_variance():
    df = noisy_table(0)
    df["L0_se"] = 0.01
    res = fit(df, "pruning-law", bootstrap=0, weights="inverse-variance")
    assert "(se_L0/L0)²" in res.weighting
    # rows scored 1.0 exactly have se 0: weighed like the most precise row, and said so
    df.loc[0, "L_se"] = 0.0
    df.loc[0, "L0_se"] = 0.0
    assert "1 row(s) with se 0" in fit(df, "pruning-law", bootstrap=0, weights="inverse-variance").weighting


def test_report_draws_error_bars_and_says_the_fits_were_weighted(tmp_path, monkeypatch):
    import matplotlib.axes

    calls = []
    real = matplotlib.axes.Axes.errorbar
    monkeypatch.setattr(matplotlib.axes.Axes, "errorbar",
                        lambda self, x, y, *a, **k: calls.append(np.asarray(k.get("yerr"))) or real(self, x, y, *a, **k))
    df = noisy_table(0)
    loss = df.assign(metric="test_loss", direction="lower", L=1 / df["L"]).drop(columns="L_se")
    rep = build_report(pd.concat([df, loss]), tmp_path, bootstrap=20)
    md = rep.md.read_text()
    assert "Weighting of the law fits" in md
    assert "inverse-variance (WLS in log space" in md and "prunenet / avg_acc" in md
    assert "none (OLS): 48 row(s) without a standard error" in md  # the loss rows carry none
    groups = {g["label"]: g for g in rep.data["groups"]}
    assert groups["prunenet / avg_acc"]["weighting"].startswith("inverse-variance")
    assert groups["prunenet / test_loss"]["weighting"].startswith("none")
    assert calls and any((c > 0).any() for c in calls)  # the accuracy points have their bars
    assert "±1 standard error" in rep.html.read_text()
