"""Time a 100k-row law fit with 1,000 bootstrap resamples (target: under 10 s on a 2-core CPU).

    python benchmarks/bench_fit.py [--rows 100000] [--bootstrap 1000]

Prints, side by side in one run: the bare OLS solve (numpy lstsq), complaw's fit without bootstrap, and
with 1,000 resamples clustered by base model and by row, so the overhead of each layer is visible.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from complaw.laws import DUnit, fit, get_form, simulate


def timed(fn, repeats: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--bootstrap", type=int, default=1000)
    args = ap.parse_args()
    truth = {"alpha": 0.98, "beta": -1.18, "gamma": -0.14}
    n_models = 50
    ratios = tuple(np.round(np.linspace(0.0, 0.95, 40), 4))
    d_values = tuple(np.geomspace(1, 1000, max(1, args.rows // (n_models * len(ratios)) - 1)).round(3))
    df = simulate("sengupta2025", truth, base_values=tuple(np.linspace(0.3, 0.8, n_models)), ratios=ratios,
                  d_values=(0.0, *d_values), model_effect=0.02, seed=0)
    df = df.iloc[: args.rows]
    y, X = get_form("sengupta2025").design(df, DUnit())
    bare, _ = timed(lambda: np.linalg.lstsq(X, y, rcond=None))
    plain, res = timed(lambda: fit(df, "sengupta2025", direction="higher", bootstrap=0))
    clus, rc = timed(lambda: fit(df, "sengupta2025", direction="higher", bootstrap=args.bootstrap), repeats=1)
    rows, rr = timed(lambda: fit(df, "sengupta2025", direction="higher", bootstrap=args.bootstrap, cluster=None),
                     repeats=1)
    print(f"rows: {len(df):,}   models: {n_models}   bootstrap resamples: {args.bootstrap}")
    print(f"{'step':<46}{'seconds':>9}{'× bare lstsq':>14}")
    for name, t in [("bare numpy lstsq (design given)", bare), ("complaw fit, no bootstrap", plain),
                    (f"complaw fit + {args.bootstrap} cluster resamples (50 models)", clus),
                    (f"complaw fit + {args.bootstrap} row resamples", rows)]:
        print(f"{name:<46}{t:>9.3f}{t / bare:>14.1f}")
    print(f"beta = {rc.coef['beta']:.4f}  cluster CI {rc.params['beta'].boot_ci}  row CI {rr.params['beta'].boot_ci}")
    worst = max(clus, rows)
    print(f"target: fit + {args.bootstrap} resamples under 10 s -> {'met' if worst < 10 else 'MISSED'} ({worst:.2f} s)")


if __name__ == "__main__":
    main()
