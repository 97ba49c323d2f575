"""The unified law over compressed representations (SPEC §1.3, seed 002).

    Loss(N, D, R) = A·(N·ρ(R))^(−α) + B·D^(−β) + E

``N`` parameters, ``D`` training tokens, ``ρ(R)`` the capacity of format ``R`` (:mod:`complaw.capacity`).
The law is nonlinear in its parameters, so it does not go through the log-linear ``LawForm`` registry of
:mod:`complaw.laws.forms`; it has its own fitter, :func:`fit_unified`: the summed Huber loss of the log
residuals ``log L − log L̂`` minimised (trust-region, bounded) from a grid of starts (the best start kept), with
bootstrap intervals from refits on resampled rows.

    >>> from complaw.laws.unified import fit_unified, describe
    >>> fit = fit_unified(frame)            # columns: N, D, loss, and rho (or format)
    >>> fit.params["alpha"], fit.intervals["alpha"], fit.predict(frame)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pandas as pd
from scipy import optimize

from complaw.errors import ComplawError

PARAMS = ("A", "alpha", "B", "beta", "E")
HUBER_DELTA = 1e-3


def describe() -> str:
    """What the unified law is and how to fit it (the discoverable entry point of this module)."""
    return ("unified law: Loss(N, D, R) = A·(N·ρ(R))^(−α) + B·D^(−β) + E; ρ(R) = L·tanh(F·log_{1/4} GMSE(R))^C "
            "(complaw.capacity). Fit with complaw.laws.unified.fit_unified(frame) on columns N, D, loss and "
            "rho (or format): summed Huber on log residuals from a grid of starts, bootstrap intervals.")


@dataclass(frozen=True)
class UnifiedFit:
    """An immutable fitted unified law: point estimates, bootstrap intervals and :meth:`predict`."""

    params: Mapping[str, float]
    intervals: Mapping[str, tuple[float, float]]
    n_rows: int
    huber_loss: float
    level: float = 0.95
    bootstrap: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    def predict(self, frame: pd.DataFrame | None = None, *, N=None, D=None, rho=None) -> np.ndarray:
        """Predicted loss for a frame (columns N, D, rho or format) or for arrays N, D, rho."""
        if frame is not None:
            N, D, rho = _columns(frame, need_loss=False)[:3]
        p = self.params
        return _model(np.array([p[k] for k in PARAMS]), np.asarray(N, float), np.asarray(D, float),
                      np.asarray(1.0 if rho is None else rho, float))

    def to_dict(self) -> dict:
        return {"params": dict(self.params), "intervals": {k: list(v) for k, v in self.intervals.items()},
                "n_rows": self.n_rows, "huber_loss": self.huber_loss, "level": self.level,
                "bootstrap": self.bootstrap, "notes": list(self.notes)}


def _model(theta, N, D, rho):
    A, alpha, B, beta, E = theta
    return A * (N * rho) ** (-alpha) + B * D ** (-beta) + E


def _columns(frame: pd.DataFrame, need_loss: bool = True):
    missing = [c for c in ("N", "D") if c not in frame.columns]
    if need_loss and "loss" not in frame.columns:
        missing.append("loss")
    if "rho" not in frame.columns and "format" not in frame.columns:
        missing.append("rho (or format)")
    if missing:
        raise ComplawError(f"unified law: missing column(s) {', '.join(missing)}; have {list(frame.columns)}")
    if "rho" in frame.columns:
        rho = frame["rho"].to_numpy(float)
    else:
        from complaw.capacity import capacity

        rho = np.array([capacity(str(f)) for f in frame["format"]])
    N, D = frame["N"].to_numpy(float), frame["D"].to_numpy(float)
    loss = frame["loss"].to_numpy(float) if need_loss else None
    bad = ~(np.isfinite(N) & np.isfinite(D) & np.isfinite(rho) & (N > 0) & (D > 0) & (rho > 0))
    if need_loss:
        bad |= ~(np.isfinite(loss) & (loss > 0))
    if bad.any():
        raise ComplawError(f"unified law: {int(bad.sum())} row(s) with non-positive or non-finite N, D, rho or loss")
    return N, D, rho, loss


# Free parameters are (log A, alpha, log B, beta, log E): positivity for free, a better-scaled problem.
def _objective(z, logN, logD, logrho, logy, delta):
    a, alpha, b, beta, e = z
    t1 = np.exp(a - alpha * (logN + logrho))
    t2 = np.exp(b - beta * logD)
    t3 = np.exp(e)
    pred = t1 + t2 + t3
    r = logy - np.log(pred)
    absr = np.abs(r)
    quad = absr <= delta
    loss = np.where(quad, 0.5 * r**2, delta * (absr - 0.5 * delta)).sum()
    dr = np.where(quad, r, delta * np.sign(r))  # d huber / d r
    g = -dr / pred  # d loss / d pred
    grad = np.array([
        (g * t1).sum(),
        (g * t1 * -(logN + logrho)).sum(),
        (g * t2).sum(),
        (g * t2 * -logD).sum(),
        (g * t3).sum(),
    ])
    return float(loss), grad


def default_starts() -> np.ndarray:
    """The grid of starts (in the free parametrisation): 2·2·2·2·2 = 32 points."""
    grid = itertools.product((2.0, 8.0), (0.2, 0.5), (2.0, 8.0), (0.2, 0.5), (-0.5, 0.5))
    return np.array(list(grid))


def _resid(z, logN, logD, logrho, logy):
    a, alpha, b, beta, e = z
    return logy - np.log(np.exp(a - alpha * (logN + logrho)) + np.exp(b - beta * logD) + np.exp(e))


def _fit_once(logN, logD, logrho, logy, starts, delta):
    """Best of trust-region robust fits (scipy's ``loss="huber"`` with ``f_scale=delta`` is the summed
    Huber loss of the residuals up to a constant factor), scored by :func:`_objective`."""
    best, best_loss = None, math.inf
    lo, hi = np.array([-20, 0.0, -20, 0.0, -10]), np.array([40, 3.0, 40, 3.0, 5])
    for s in starts:
        res = optimize.least_squares(_resid, np.clip(s, lo, hi), args=(logN, logD, logrho, logy), bounds=(lo, hi),
                                     loss="huber", f_scale=delta, x_scale="jac", xtol=1e-12, ftol=1e-12,
                                     gtol=1e-12, max_nfev=500)
        val = _objective(res.x, logN, logD, logrho, logy, delta)[0]
        if val < best_loss:
            best, best_loss = res.x, val
    return best, best_loss


def _natural(z) -> np.ndarray:
    a, alpha, b, beta, e = z
    return np.array([math.exp(a), alpha, math.exp(b), beta, math.exp(e)])


def fit_unified(frame: pd.DataFrame, *, delta: float = HUBER_DELTA, starts: np.ndarray | None = None,
                bootstrap: int = 100, level: float = 0.95, seed: int = 0, boot_starts: int = 3) -> UnifiedFit:
    """Fit Loss = A·(N·ρ)^(−α) + B·D^(−β) + E by summed Huber on log residuals.

    Args:
        frame: one row per run with columns ``N``, ``D``, ``loss`` and ``rho`` (or ``format``, whose
            capacity is computed with the default constants).
        delta: Huber threshold on log residuals.
        starts: starting points (rows of log A, α, log B, β, log E); default :func:`default_starts`.
        bootstrap: number of row-resampling refits for the intervals (0: no intervals).
        level: two-sided interval level.
        seed: seeds the bootstrap.
        boot_starts: each bootstrap refit starts from the full fit plus this many best grid starts.
    """
    N, D, rho, loss = _columns(frame)
    if len(N) < len(PARAMS):
        raise ComplawError(f"unified law: {len(N)} rows, need at least {len(PARAMS)} to fit 5 parameters")
    logN, logD, logrho, logy = np.log(N), np.log(D), np.log(rho), np.log(loss)
    starts = default_starts() if starts is None else np.atleast_2d(starts)
    z, fval = _fit_once(logN, logD, logrho, logy, starts, delta)
    theta = _natural(z)
    # The bootstrap refits start from the full-data optimum and a few grid starts that scored well.
    scores = np.array([_objective(s, logN, logD, logrho, logy, delta)[0] for s in starts])
    few = np.vstack([z, starts[np.argsort(scores)[:boot_starts]]])
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(bootstrap):
        idx = rng.integers(0, len(N), len(N))
        zb, _ = _fit_once(logN[idx], logD[idx], logrho[idx], logy[idx], few, delta)
        draws.append(_natural(zb))
    intervals = {}
    if draws:
        arr = np.array(draws)
        q = (1 - level) / 2
        for j, k in enumerate(PARAMS):
            intervals[k] = (float(np.quantile(arr[:, j], q)), float(np.quantile(arr[:, j], 1 - q)))
    params = {k: float(v) for k, v in zip(PARAMS, theta, strict=True)}
    return UnifiedFit(MappingProxyType(params), MappingProxyType(intervals), len(N), fval, level, bootstrap)


def synthetic_frame(A=400.0, alpha=0.34, B=410.0, beta=0.28, E=1.7, *, noise=0.0, seed=0,
                    Ns=(1e7, 3e7, 1e8, 3e8, 1e9), Ds=(1e9, 4e9, 2e10), rhos=(1.0, 0.8, 0.55, 0.3)) -> pd.DataFrame:
    """Rows generated from the unified law (multiplicative log-normal noise of sd ``noise``)."""
    rng = np.random.default_rng(seed)
    rows = [(n, d, r) for n in Ns for d in Ds for r in rhos]
    N, D, rho = (np.array(c, float) for c in zip(*rows, strict=True))
    loss = _model(np.array([A, alpha, B, beta, E]), N, D, rho) * np.exp(rng.normal(0, noise, len(N)))
    return pd.DataFrame({"N": N, "D": D, "rho": rho, "loss": loss})
