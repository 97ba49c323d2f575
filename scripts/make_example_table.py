"""Regenerate src/complaw/data/example_results.csv, the law engine's bundled example table.

The table is *synthetic*: results drawn from the paper's law with known exponents (per method and metric),
a per-model random effect and log-normal noise, so that the demo shows the engine recovering them. It has
the shape of a real sweep (8 base models × 2 methods × 2 metrics × 9 ratios × 4 RFT budgets, plus runtimes
and a few failed runs; S and S0 are latencies in seconds) until the zoo sweep replaces it.

    python scripts/make_example_table.py
"""

from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20250404
MODELS = {  # name: (parameters, base accuracy, base test loss, base latency in s)
    "synthetic-0.5B": (0.5e9, 0.45, 3.20, 0.020), "synthetic-1B": (1.0e9, 0.50, 2.95, 0.031),
    "synthetic-1.5B": (1.5e9, 0.53, 2.80, 0.040), "synthetic-3B": (3.0e9, 0.58, 2.60, 0.065),
    "synthetic-7B": (7.0e9, 0.64, 2.35, 0.120), "synthetic-8B": (8.0e9, 0.65, 2.30, 0.135),
    "synthetic-14B": (14e9, 0.69, 2.15, 0.220), "synthetic-32B": (32e9, 0.73, 2.00, 0.470),
}
# (metric, direction) -> method -> (alpha, beta, gamma)
TRUE = {
    ("avg_acc", "higher"): {"prunenet": (0.98, -0.95, -0.06), "slicegpt": (0.98, -1.20, -0.10)},
    ("test_loss", "lower"): {"prunenet": (1.00, 1.60, 0.22), "slicegpt": (1.00, 1.25, 0.15)},
}
SPEED_B = {"prunenet": -0.67, "slicegpt": -0.35}
RATIOS = np.round(np.arange(0.1, 1.0, 0.1), 1)
D_MTOKENS = [0, 1, 5, 25]


def main() -> None:
    rng = np.random.default_rng(SEED)
    rows = []
    for model, (n, acc0, loss0, lat0) in MODELS.items():
        effect = rng.normal(0, 0.01)  # rows of one base model share a random effect
        for (metric, direction), methods in TRUE.items():
            L0 = acc0 if metric == "avg_acc" else loss0
            for method, (a, b, g) in methods.items():
                for r in RATIOS:
                    for d in D_MTOKENS:
                        log_l = a * np.log(L0) + b * np.log1p(r) + g * np.log1p(1 / (d + 1))
                        L = float(np.exp(log_l + effect + rng.normal(0, 0.02)))
                        lat = float(lat0 * (1 + r) ** SPEED_B[method] * np.exp(rng.normal(0, 0.02)))
                        rows.append({"model": model, "N": n, "method": method, "metric": metric,
                                     "direction": direction, "r": r, "D": d, "L0": L0, "L": round(L, 6),
                                     "S": round(lat, 6), "S0": lat0, "status": "success"})
    df = pd.DataFrame(rows)
    failed = rng.choice(len(df), size=6, replace=False)
    df.loc[failed, "status"] = "failed"
    df.loc[failed, "L"] = np.nan
    out = Path(__file__).resolve().parents[1] / "src/complaw/data/example_results.csv"
    df.to_csv(out, index=False)
    print(f"wrote {len(df)} rows to {out}")


if __name__ == "__main__":
    main()
