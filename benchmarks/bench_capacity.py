"""Validate the bridge r_eff = 1 − (1 − r)·ρ(R): do quantised / sparse formats sit on the pruning law?

On a zoo model, measure test loss for structured FFN pruning (``magnitude-ffn`` at r = 0.1 … 0.7) and for
post-training formats (RTN INT8/4/3 with groups of 128, unstructured magnitude sparsity 0.5 / 0.7, 2:4),
each on a fresh copy of the model. Fit the pruning law log(L/L0) = a·log(1 − r) + c on the pruning rows
(OLS), predict every format row at its r_eff (capacity from :mod:`complaw.capacity` with the default
constants L = 1, F = 0.41, C = 1.39), and print the Spearman rank correlation between predicted and
measured losses of the format rows and the absolute relative error per format.

    $ .venv/bin/python benchmarks/bench_capacity.py                     # zoo:llama-s, ~1-2 minutes
    $ .venv/bin/python benchmarks/bench_capacity.py --model zoo:llama-m --blocks 64
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
from scipy import stats

import complaw
from complaw import capacity as cap
from complaw.compress import compress
from complaw.evaluate import lm_loss
from complaw.textdata import load_texts, token_blocks

PRUNING = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
FORMATS = (("rtn-int8", 0.0), ("rtn-int4", 0.0), ("rtn-int3", 0.0), ("magnitude-sparse", 0.5),
           ("magnitude-sparse", 0.7), ("sparse-2:4", 0.0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="zoo:llama-s")
    ap.add_argument("--blocks", type=int, default=32)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--json", default=None, help="also write the rows and the summary here")
    args = ap.parse_args()

    blocks = token_blocks(load_texts("zoo:test"), complaw.models.load_tokenizer(args.model), args.seq, args.blocks)

    def loss_of(method: str | None, r: float) -> tuple[float, dict]:
        model = complaw.load(args.model)
        details: dict = {}
        if method is not None:
            model, record = compress(model, method, r)
            details = record.details
        return float(lm_loss(model, blocks).loss), details

    L0, _ = loss_of(None, 0.0)
    print(f"{args.model}: dense test loss L0 = {L0:.4f} over {len(blocks)} blocks of {args.seq}")
    prune = [(r, loss_of("magnitude-ffn", r)[0]) for r in PRUNING]
    x = np.log1p(-np.array([r for r, _ in prune]))
    y = np.log(np.array([loss for _, loss in prune]) / L0)
    a, c = np.polyfit(x, y, 1)
    resid = y - (a * x + c)
    print(f"pruning law: log(L/L0) = {a:.4f}·log(1−r) + {c:.4f}   (rms log residual {resid.std():.4f})")
    for r, loss in prune:
        print(f"  magnitude-ffn r={r:.1f}: L = {loss:.4f}  fit {L0 * math.exp(a * math.log1p(-r) + c):.4f}")

    rows = []
    for method, r in FORMATS:
        loss, det = loss_of(method, r)
        reff = det["r_eff"]
        pred = L0 * math.exp(a * math.log1p(-reff) + c)
        # Baseline: the format's memory saving as its ratio (bits/16 for RTN, the kept fraction for sparsity).
        r_mem = 1 - cap.get_format(det["format"]).bits / 16 if method.startswith("rtn") else det.get("sparsity", 0.0)
        pred_mem = L0 * math.exp(a * math.log1p(-r_mem) + c)
        rows.append({"method": method, "setting": r, "format": det["format"], "gmse": det["gmse"],
                     "effective_bits": det["effective_bits"], "rho": det["capacity"], "r_eff": reff,
                     "loss": loss, "predicted": pred, "abs_rel_error": abs(pred - loss) / loss,
                     "degradation_error": abs(pred - loss) / max(loss - L0, 1e-9), "r_mem": r_mem,
                     "predicted_mem": pred_mem})
    # Law-free check: read the measured pruning curve (linear interpolation, r = 0 at L0) at r_eff.
    curve_r = [0.0] + [r for r, _ in prune]
    curve_L = [L0] + [loss for _, loss in prune]
    for row in rows:
        row["interpolated"] = float(np.interp(row["r_eff"], curve_r, curve_L))
    print(f"\n{'format':<14}{'GMSE':>9}{'eff bits':>9}{'rho':>8}{'r_eff':>8}{'L meas':>9}{'L pred':>9}{'|rel err|':>10}"
          f"{'|err|/(L-L0)':>13}{'L interp':>10}{'r_mem':>7}{'L pred mem':>11}")
    for row in rows:
        print(f"{row['format']:<14}{row['gmse']:>9.4g}{row['effective_bits']:>9.3f}{row['rho']:>8.4f}"
              f"{row['r_eff']:>8.4f}{row['loss']:>9.4f}{row['predicted']:>9.4f}{row['abs_rel_error']:>10.2%}"
              f"{row['degradation_error']:>13.2f}{row['interpolated']:>10.4f}{row['r_mem']:>7.3f}{row['predicted_mem']:>11.4f}")
    interp_s, _ = stats.spearmanr([r["interpolated"] for r in rows], [r["loss"] for r in rows])
    interp_mare = float(np.mean([abs(r["interpolated"] - r["loss"]) / r["loss"] for r in rows]))
    print(f"law-free (measured pruning curve read at r_eff): Spearman {interp_s:.3f}, mean |rel err| {interp_mare:.2%}")
    rho_s, p = stats.spearmanr([r["predicted"] for r in rows], [r["loss"] for r in rows])
    mare = float(np.mean([r["abs_rel_error"] for r in rows]))
    base_s, _ = stats.spearmanr([r["predicted_mem"] for r in rows], [r["loss"] for r in rows])
    base_mare = float(np.mean([abs(r["predicted_mem"] - r["loss"]) / r["loss"] for r in rows]))
    print(f"\nSpearman rank correlation (predicted vs measured, {len(rows)} format rows): {rho_s:.3f} (p = {p:.3g})")
    print(f"mean absolute relative error: {mare:.2%}")
    print(f"baseline (r = memory saving: 1 − bits/16 for RTN, sparsity for sparse): Spearman {base_s:.3f}, "
          f"mean |rel err| {base_mare:.2%}")
    # The r_eff each format would need to sit exactly on the pruning law (what ρ 'should' be).
    for row in rows:
        need = 1 - math.exp((math.log(row["loss"] / L0) - c) / a) if a != 0 else float("nan")
        row["r_eff_implied"] = need
    print("implied r_eff (inverting the pruning law): "
          + ", ".join(f"{row['format']} {row['r_eff_implied']:.3f}" for row in rows))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"model": args.model, "L0": L0, "a": a, "c": c, "pruning": prune, "formats": rows,
                       "spearman": rho_s, "mean_abs_rel_error": mare,
                       "baseline_spearman": base_s, "interp_spearman": interp_s, "interp_mean_abs_rel_error": interp_mare, "baseline_mean_abs_rel_error": base_mare, "rho_constants": [cap.L_DEFAULT,
                       cap.F_DEFAULT, cap.C_DEFAULT]}, fh, indent=2)


if __name__ == "__main__":
    main()
