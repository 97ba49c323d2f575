"""Identifiability and design diagnostics, as plain-language warnings.

A law fitted to a design that cannot identify it still prints numbers; these checks say so instead.

    >>> for w in diagnose(form, frame, unit, X): print(w.code, w.message)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from complaw.laws.forms import DUnit, LawForm

#: Condition number of the unit-scaled design above which collinearity is serious (Belsley et al.).
COND_LIMIT = 30.0
#: Share of the D factor's full range (D = 0 to D → ∞) that rows with D > 0 must span.
D_SPREAD_LIMIT = 0.1


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str

    def to_dict(self) -> dict:
        return asdict(self)


def condition_number(X: np.ndarray) -> float:
    """Condition number of X with every column scaled to unit length (Belsley's scaling)."""
    if X.shape[1] == 0:
        return float("nan")
    norms = np.linalg.norm(X, axis=0)
    norms[norms == 0] = 1.0
    return float(np.linalg.cond(X / norms))


def diagnose(form: LawForm, frame: pd.DataFrame, unit: DUnit, X: np.ndarray) -> list[Diagnostic]:
    """Warnings about what this design cannot tell (one per problem found)."""
    out: list[Diagnostic] = []
    base = form.term("base")
    if base is not None:
        values = frame[base.column].unique()
        if len(values) == 1:
            out.append(Diagnostic(
                "single-base",
                f"every row has the same {base.column} = {values[0]:.4g}: {base.param} is not identifiable "
                f"(it only rescales the fit); add base models of different quality",
            ))
    rec = form.term("recovery")
    if rec is not None:
        d = frame[rec.column].to_numpy(dtype=float)
        values = np.unique(d)
        if len(values) == 1:
            out.append(Diagnostic(
                "single-D",
                f"every row has D = {values[0]:.4g}: {rec.param} is not identifiable; "
                "add rows with other amounts of recovery data (including D = 0)",
            ))
        else:
            x0 = float(rec.transform.fn(np.array([0.0]), unit)[0])
            xinf = rec.transform.at_inf(unit)
            xs = rec.transform.fn(d[d > 0], unit)
            if len(xs) and abs(x0 - xinf) > 0 and (xs.max() - xs.min()) < D_SPREAD_LIMIT * abs(x0 - xinf):
                out.append(Diagnostic(
                    "degenerate-D-unit",
                    f"with D in {unit.name} (scale {unit.scale:g}, eps {unit.eps:g}) the factor "
                    f"{rec.transform.label} barely varies across D > 0 ({np.unique(d[d > 0]).size} value(s)): "
                    f"{rec.param} only separates 'no RFT' from 'some RFT'; express D in larger units "
                    "(--d-scale, e.g. 1e6 for millions of tokens)",
                ))
    comp = form.term("compression")
    if comp is not None:
        k = frame[comp.column].nunique()
        if k < 3:
            out.append(Diagnostic(
                "few-ratios",
                f"only {k} distinct compression ratio(s): the {comp.param} exponent rests on {k} point(s) "
                "and is fragile; use at least 3 (the paper uses 0.1…0.9)",
            ))
    cond = condition_number(X)
    if np.isfinite(cond) and cond > COND_LIMIT:
        out.append(Diagnostic(
            "ill-conditioned",
            f"design condition number {cond:.0f} (> {COND_LIMIT:.0f}): the parameters are nearly collinear, "
            "so single estimates are unstable and their intervals wide",
        ))
    for col, what in (("method", "compression methods"), ("metric", "metrics")):
        if col in frame.columns and frame[col].nunique() > 1:
            out.append(Diagnostic(
                f"pooled-{col}",
                f"one law pools {frame[col].nunique()} {what}; pooled laws fit badly (on published SliceGPT "
                f"results R² fell from ~0.9 to ~0.3) — group by {col}",
            ))
    return out
