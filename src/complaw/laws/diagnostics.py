"""Identifiability and design diagnostics, as plain-language warnings.

A law fitted to a design that cannot identify it would still print numbers; these checks say so instead.
:func:`unidentified` names the parameters the design cannot identify (a single base model for α, a
single amount of RFT data for γ, a single ratio for the r-exponent, a rank-deficient design), which the
fit then reports without estimate, interval or sign verdict; :func:`diagnose` gives the warnings.

    >>> for w in diagnose(form, frame, unit, X): print(w.code, w.message)
    >>> unidentified(form, frame, X)      # ({"gamma": "every row has D = 0 (no recovery …"}, rank)
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


def _value(v) -> str:
    v = float(v)
    return f"{v:.4g}"


def estimability(X: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """(rank, estimable, null) of a design: its numeric rank (columns scaled to unit length), which
    parameters have a unique least-squares value, and a basis of its null space (rows, one per direction
    along which the parameters can move without changing the fit)."""
    n, p = X.shape
    if p == 0:
        return 0, np.zeros(0, dtype=bool), np.zeros((0, 0))
    norms = np.linalg.norm(X, axis=0)
    norms[norms == 0] = 1.0
    # Only V is needed: with n ≥ p rows the thin SVD gives all p right singular vectors (never the n × n U).
    Xs = X / norms if n >= p else np.vstack([X / norms, np.zeros((p - n, p))])
    _, s, vt = np.linalg.svd(Xs, full_matrices=False)
    tol = (s.max() if s.size else 0.0) * max(n, p) * np.finfo(float).eps
    rank = int((s > tol).sum())
    null = vt[rank:]
    estimable = np.all(np.abs(null) < 1e-8, axis=0) if len(null) else np.ones(p, dtype=bool)
    return rank, estimable, null


def unidentified(form: LawForm, frame: pd.DataFrame, X: np.ndarray) -> tuple[dict[str, str], int]:
    """Parameters this design cannot identify, each with the reason; and the design's rank.

    A single value of a factor's column makes its parameter a constant in disguise (with every row at
    D = 0, γ is the law's level divided by ln 2), whether or not the design is numerically of full rank;
    a rank-deficient design leaves more parameters without a unique value.
    """
    names = form.param_names
    out: dict[str, str] = {}
    base = form.term("base")
    if base is not None and frame[base.column].nunique() == 1:
        out[base.param] = (f"every row has {base.column} = {_value(frame[base.column].iloc[0])} (one base model): "
                           f"{base.param} cannot be told apart from the law's level")
    rec = form.term("recovery")
    if rec is not None and frame[rec.column].nunique() == 1:
        d = float(frame[rec.column].iloc[0])
        out[rec.param] = ("every row has D = 0 (no recovery fine-tuning)" if d == 0 else
                          f"every row has D = {_value(d)} (one amount of recovery data)") + \
            f": {rec.param} cannot be estimated"
    comp = form.term("compression")
    if comp is not None and frame[comp.column].nunique() == 1:
        out[comp.param] = (f"every row has {comp.column} = {_value(frame[comp.column].iloc[0])} (one compression "
                           f"ratio): the {comp.param} exponent cannot be estimated")
    rank, estimable, null = estimability(X)
    for j in np.flatnonzero(~estimable):
        name = names[j]
        if name in out:
            continue
        partners = sorted({names[k] for vec in null if abs(vec[j]) >= 1e-8
                           for k in np.flatnonzero(np.abs(vec) >= 1e-8) if k != j})
        out[name] = ("the design is rank-deficient: " + name + (" is confounded with " + ", ".join(partners)
                                                               if partners else " multiplies a column of zeros")
                     + " (a factor is constant or a copy of another)")
    return {k: out[k] for k in names if k in out}, rank


def diagnose(form: LawForm, frame: pd.DataFrame, unit: DUnit, X: np.ndarray) -> list[Diagnostic]:
    """Warnings about what this design cannot tell (one per problem found)."""
    out: list[Diagnostic] = []
    base = form.term("base")
    if base is not None:
        values = frame[base.column].unique()
        if len(values) == 1:
            out.append(Diagnostic(
                "single-base",
                f"every row has the same {base.column} = {_value(values[0])}: {base.param} is not identifiable "
                f"(it only rescales the fit); add base models of different quality",
            ))
    rec = form.term("recovery")
    if rec is not None:
        d = frame[rec.column].to_numpy(dtype=float)
        values = np.unique(d)
        if len(values) == 1:
            out.append(Diagnostic(
                "single-D",
                f"every row has D = {_value(values[0])}"
                + (" (no recovery fine-tuning)" if float(values[0]) == 0 else "")
                + f": {rec.param} is not identifiable; add rows with other amounts of recovery data"
                + (" (including D = 0)" if float(values[0]) != 0 else ""),
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
                    f"{rec.param} only separates 'no RFT' from 'some RFT'; choose the unit so that D lies near 1: "
                    f"--d-scale {float(np.median(d[d > 0])):g} (the median D > 0 in raw units; e.g. 1e6 for "
                    "token counts in the millions)",
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
