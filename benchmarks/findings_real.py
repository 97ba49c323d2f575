"""The findings of a real-model sweep, side by side with the compression-laws paper's claims (SPEC §2).

Reads the law rows of a results store (``complaw sweep real`` writes one) and, optionally, a zoo store
(``make demo``'s) for leave-one-model-out across the real model and the zoo, and prints:

1. the shape of loss vs r and of accuracy vs r at D = 0 (linear vs quadratic in r: R², AIC, the quadratic
   term's t) — the paper: loss quadratic, accuracy linear;
2. how much RFT recovers: (L(D=0) − L(D_max)) / (L(D=0) − L0) per method and r — the paper: up to 55%;
3. calibration-free (PruneNet) vs calibration-based (SliceGPT): the accuracy retained after RFT and the
   spread of the loss — the paper: PruneNet recovers accuracy better, SliceGPT keeps the loss steadier;
4. the measured speedup (interleaved, median of rounds) against the FLOP-ideal one, with its dispersion;
5. the held-out error of each law form: leave-one-ratio-out on the real model, leave-one-model-out over the
   real model and the zoo models (when a zoo store is given).

r_crit(σ) with intervals comes from the sweep's report (report.json); this script prints it when given.

    .venv/bin/python benchmarks/findings_real.py complaw_results/results.db --sweep real \\
        --zoo complaw_results/results.db --zoo-sweep demo --report reports/real/report.json
"""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
import warnings

import numpy as np
import pandas as pd

FORMS = ("sengupta2025", "sengupta2025-L0-r", "pruning-law", "talk")


def rows(db: str, sweep: str | None) -> pd.DataFrame:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        df = pd.read_sql_query("SELECT * FROM law_rows", con)
    if sweep:
        df = df[df["sweep"] == sweep]
    return df[df["status"] == "success"].reset_index(drop=True)


def shape(df: pd.DataFrame, metric: str) -> list[str]:
    """Linear vs quadratic in r of the retention L/L0 at D = 0 (r = 0 included as 1)."""
    import statsmodels.api as sm

    out = []
    for method, sub in df[(df["metric"] == metric) & (df["D"] == 0)].groupby("method"):
        sub = sub.sort_values("r")
        r = np.r_[0.0, sub["r"].to_numpy()]
        y = np.r_[1.0, (sub["L"] / sub["L0"]).to_numpy()]
        lin = sm.OLS(y, sm.add_constant(r)).fit()
        quad = sm.OLS(y, sm.add_constant(np.column_stack([r, r * r]))).fit()
        out.append(f"  {method:14s} {metric}: linear R² {lin.rsquared:.3f} (AIC {lin.aic:.1f}), quadratic R² "
                   f"{quad.rsquared:.3f} (AIC {quad.aic:.1f}), r² term t = {quad.tvalues[2]:.2f} "
                   f"→ {'quadratic' if quad.aic < lin.aic - 2 else 'linear'} by AIC")
    return out


def rft_share(df: pd.DataFrame, metric: str = "test_loss") -> list[str]:
    out = []
    sub = df[df["metric"] == metric]
    dmax = sub["D"].max()
    for method, m in sub.groupby("method"):
        parts = []
        for r, g in m.groupby("r"):
            l0, lz, lm = g["L0"].iloc[0], g.loc[g["D"] == 0, "L"], g.loc[g["D"] == dmax, "L"]
            if len(lz) and len(lm) and abs(lz.iloc[0] - l0) > 1e-9:
                parts.append(f"r={r:g}: {(lz.iloc[0] - lm.iloc[0]) / (lz.iloc[0] - l0):+.0%}")
        out.append(f"  {method:14s} share of the {metric} increase RFT (D = {dmax:g}) recovers: " + ", ".join(parts))
    return out


def calibration(df: pd.DataFrame) -> list[str]:
    out = []
    dmax = df["D"].max()
    for method in ("prunenet", "slicegpt", "magnitude-ffn", "random-ffn"):
        acc = df[(df["method"] == method) & (df["metric"] == "avg_acc") & (df["D"] == dmax)]
        loss = df[(df["method"] == method) & (df["metric"] == "test_loss") & (df["D"] == 0)]
        if acc.empty or loss.empty:
            continue
        ret = (acc["L"] / acc["L0"]).mean()
        rise = (loss["L"] / loss["L0"])
        out.append(f"  {method:14s} mean accuracy retention after RFT (D = {dmax:g}) {ret:.3f}; loss ratio at D = 0 "
                   f"{rise.min():.2f}–{rise.max():.2f} (sd {rise.std():.2f})")
    return out


def speed(df: pd.DataFrame) -> list[str]:
    m = df[df["metric"] == "test_loss"].drop_duplicates(["method", "r", "S", "S0"])
    out = []
    for method, g in m.groupby("method"):
        parts = [f"r={r.r:g}: {r.S0 / r.S:.2f}× (ideal {r.S_ideal_speedup:.2f}×, disp {r.S_dispersion:.2f}"
                 + (", noisy" if r.noisy else "") + ")" for r in g.sort_values("r").itertuples()
                 if r.S and r.S0 and r.S_ideal_speedup == r.S_ideal_speedup]
        out.append(f"  {method:14s} " + "; ".join(parts))
    return out


def held_out(df: pd.DataFrame, scheme: str) -> list[str]:
    from complaw.errors import ComplawError
    from complaw.laws import validate

    out = []
    for (method, metric), g in df.groupby(["method", "metric"]):
        if metric not in ("test_loss", "avg_acc", "loss_prose_test"):
            continue
        cells = []
        for form in FORMS:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    v = validate(g.reset_index(drop=True), form, scheme, drop_invalid=True)
                cells.append(f"{form} {v.median_are:.1%}")
            except ComplawError as err:
                cells.append(f"{form} – ({str(err)[-60:]})")
        out.append(f"  {method:14s} {metric:16s} median |rel. error|: " + "; ".join(cells))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store")
    ap.add_argument("--sweep", default="real")
    ap.add_argument("--zoo", help="a store with zoo results (make demo's) for leave-one-model-out")
    ap.add_argument("--zoo-sweep", default="demo")
    ap.add_argument("--report", help="the sweep's report.json, for r_crit")
    a = ap.parse_args()
    df = rows(a.store, a.sweep)
    print(f"{len(df)} successful law rows of sweep {a.sweep!r}: models {sorted(df['model'].unique())}, "
          f"methods {sorted(df['method'].unique())}, r {sorted(df['r'].unique())}, D {sorted(df['D'].unique())}")
    print("\n1. Shape at D = 0 (retention vs r)")
    for metric in ("test_loss", "loss_prose_test", "avg_acc"):
        print("\n".join(shape(df, metric)))
    print("\n2. RFT recovery")
    print("\n".join(rft_share(df, "test_loss") + rft_share(df, "loss_prose_test")))
    print("\n3. Calibration-free vs calibration-based")
    print("\n".join(calibration(df)))
    print("\n4. Measured vs FLOP-ideal speedup (interleaved; S0/S of one runtime measurement per unit)")
    print("\n".join(speed(df)))
    if a.report:
        rep = json.loads(open(a.report).read())
        print("\n5. r_crit (decision law, cluster/model-based intervals as the report states)")
        for g in rep["groups"]:
            if g["group"].get("metric") in ("test_loss", "avg_acc", "loss_prose_test"):
                cells = []
                for s, d in g["r_crit"].items():
                    iv = d.get("interval")
                    ivs = f" [{iv[0]:.3f}, {iv[1]:.3f}]" if iv and None not in iv else ""
                    val = d.get("value")
                    cells.append(f"σ={s}: " + (f"{val:.3f}{ivs}" if val is not None and math.isfinite(val) else
                                               d.get("regime", "?")) + f" ({d.get('interval_kind', '')})")
                print(f"  {g['label']:34s} " + "; ".join(cells))
    print("\n6. Held-out error, leave-one-ratio-out (real model)")
    print("\n".join(held_out(df, "leave-one-ratio-out")))
    if a.zoo:
        z = rows(a.zoo, a.zoo_sweep)
        both = pd.concat([df, z[z["method"].isin(df["method"].unique())]], ignore_index=True)
        print(f"\n7. Held-out error, leave-one-model-out over {sorted(both['model'].unique())}")
        print("\n".join(held_out(both, "leave-one-model-out")))


if __name__ == "__main__":
    main()
