"""What a report shows, without importing what computes or draws it (so ``complaw --help`` stays fast):
the forms compared by default, the decision law, and each figure's title and caption.
"""

#: Forms fitted per (method, metric) group by default: the paper's law, its Eq. 2 ablation, v2 and the talk.
DEFAULT_FORMS = ("sengupta2025", "sengupta2025-L0-r", "pruning-law", "talk")
#: The form whose fit gives the decisions (critical ratio, minimum D): the paper's v1 law.
DECISION_FORM = "sengupta2025"

#: What each figure shows: file stem → (title in the report, caption).
CAPTIONS: dict[str, tuple[str, str]] = {
    "perf_vs_r": (
        "Performance vs compression ratio",
        "Observed metric against the compression ratio r, one line per base model (colour: model size). "
        "Left: no recovery fine-tuning (D = 0); right: the largest recovery budget in the table. "
        "The point at r = 0 is the uncompressed base model (L0). Bars, where the table has standard "
        "errors (L_se, L0_se: lm-eval's for accuracies), are ±1 standard error.",
    ),
    "law_fit": (
        "Fitted laws over the observed points (lowest D)",
        "Points: observations at the table's lowest recovery data D (no RFT when D = 0); solid lines: the best "
        "form of the group (lowest AIC among the forms whose parameters are all identifiable) evaluated at each "
        "base model's L0; dashed lines: the paper's v1 law (sengupta2025) beside it. The metric axis is "
        "logarithmic when the values span more than a decade.",
    ),
    "rft_impact": (
        "Recovery fine-tuning impact",
        "L / L0 against recovery data D at a few ratios: mean over base models (line), min–max over "
        "models (band). D = 0 is no RFT; the D axis is linear below its smallest non-zero value, logarithmic above.",
    ),
    "critical_ratio": (
        "Critical compression ratio vs model size",
        "Markers: per-model critical ratio r_crit(σ) = σ^(1/β) − 1 from the v1 law refitted to each base "
        "model's rows alone (form sengupta2025-r-D+1: α·log L0 is absorbed into the intercept, so only β "
        "and γ are per model); bars: 95% row-bootstrap interval. Horizontal line and band: the pooled "
        "law's r_crit for the whole group with its cluster-bootstrap interval. Triangles at the top: every "
        "r < 1 is recoverable; triangles down at 0: σ is out of reach even uncompressed; crosses at 0: no "
        "critical ratio (that model's law violates its sign conditions, or could not be fitted).",
    ),
    "d_min": (
        "Minimum recovery data vs compression ratio",
        "Least RFT data D_min(r, σ) that keeps retention ≥ σ under the decision law (line: point estimate; "
        "markers and bars: 95% bootstrap interval on the report's ratio grid, where D_min is finite). The dotted line marks r_crit(σ): beyond it no amount of RFT "
        "reaches σ. D_min = 0 means no RFT is needed.",
    ),
    "speedup": (
        "Speedup vs compression ratio",
        "Points: the measured speedup S0 / S of each runtime measurement (colour: model size; a unit's "
        "runtime counts once whatever its D); line: the speed law S = S0 (1+r)^b fitted on exactly those "
        "points, i.e. the speedup (1+r)^(−b) every table of the report prints; shaded: the 95% interval of "
        "the law from its fit's draws; dashed: the 95% prediction interval of one measurement (law + "
        "residual scatter). Below the dotted line at 1× the compressed model is slower.",
    ),
    "obs_vs_pred": (
        "Observed vs predicted",
        "Each experiment's observed metric against the prediction of the group's best law by AIC "
        "(log-log axes; dashed: y = x).",
    ),
}


