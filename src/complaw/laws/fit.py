"""Fitting a law form to results: OLS in log space (default) or summed Huber, with honest intervals.

    >>> result = fit("results.csv", "sengupta2025", mapping="L=acc L0=base_acc r=ratio D=rft", direction="higher")
    >>> print(result.summary())
    >>> result.params["beta"].estimate, result.params["beta"].ci

The result is immutable and carries everything needed downstream: estimates with standard errors,
intervals and p-values; centred and uncentred R²; F; AIC/BIC; errors on the original scale; the design
diagnostics, the sign-condition verdict and whether the fit is reliable; which parameters the design
cannot identify (they get no estimate, interval or verdict); and the draws that give every decision its
interval.

The OLS fit is statsmodels' (``statsmodels.regression.linear_model.OLS``, imported only when :func:`fit` runs
one, so that importing this module stays light); the bootstrap solves per-cluster normal equations in numpy.

Intervals (``interval=``): ``auto`` resamples base-model clusters when there are at least 2 (flagged as
rough below :data:`MIN_CLUSTERS`), refuses the cluster bootstrap with one cluster (it would redraw the
same rows every time: zero-width intervals) and falls back to the model-based OLS interval, and resamples
rows when there is no cluster column; ``cluster``, ``rows`` and ``ols`` choose one kind. The kind and the
cluster count are stored with every interval.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from warnings import catch_warnings, filterwarnings

import numpy as np
import pandas as pd

from complaw.errors import ComplawError
from complaw.laws.data import LawData, as_law_data, check_direction, unit_interval_metric
from complaw.laws.diagnostics import COND_LIMIT, Diagnostic, condition_number, diagnose, unidentified
from complaw.laws.forms import HIGHER, DUnit, LawForm, get_form

#: Huber threshold on log residuals; Chinchilla (Hoffmann et al. 2022) used 1e-3.
HUBER_DELTA = 1e-3
#: Interval kinds a fit can be asked for.
INTERVALS = ("auto", "cluster", "rows", "ols")
#: Below this many clusters, cluster-bootstrap percentile intervals are flagged as rough.
MIN_CLUSTERS = 10
#: What each interval kind is, for messages and reports.
INTERVAL_TEXT = {
    "cluster-bootstrap": "cluster bootstrap",
    "row-bootstrap": "row bootstrap",
    "ols": "model-based (OLS)",
    "none": "none",
}


@dataclass(frozen=True)
class Estimate:
    """One parameter: estimate, standard error, interval, p-value (and bootstrap interval if drawn).

    A parameter the design cannot identify has ``identifiable=False``, the ``reason``, and no estimate,
    standard error, interval or p-value (all NaN / None).

    Attributes:
        ci: the model-based (t) interval; for a robust fit, the bootstrap interval.
        boot_ci: the bootstrap percentile interval, when a bootstrap was drawn.
        interval_kind: how the fit's intervals were made (``cluster-bootstrap``, ``row-bootstrap``,
            ``ols`` or ``none``).
        clusters: the number of clusters resampled (0 when rows were resampled or nothing was).
    """

    name: str
    estimate: float
    se: float
    ci: tuple[float, float] | None
    pvalue: float
    boot_ci: tuple[float, float] | None = None
    identifiable: bool = True
    reason: str = ""
    interval_kind: str = "ols"
    clusters: int = 0

    @property
    def interval(self) -> tuple[float, float] | None:
        """The interval to quote: the bootstrap one when drawn, else the model-based one."""
        return self.boot_ci if self.boot_ci is not None else self.ci

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "estimate": self.estimate, "se": self.se,
                "ci": list(self.ci) if self.ci else None, "pvalue": self.pvalue,
                "boot_ci": list(self.boot_ci) if self.boot_ci else None, "identifiable": self.identifiable,
                "reason": self.reason, "interval_kind": self.interval_kind, "clusters": self.clusters}


@dataclass(frozen=True, eq=False)
class FitResult:
    """An immutable fitted law (see module docstring). Use :meth:`predict`, :meth:`summary`, :meth:`to_dict`."""

    form: LawForm
    direction: str
    unit: DUnit
    estimator: str  # "ols" | "huber"
    params: dict[str, Estimate]
    n_obs: int
    df_resid: int
    r2: float  # centred, on the log scale
    r2_uncentred: float  # what statsmodels reports for a model without intercept (and the paper compares)
    r2_adj: float
    r2_adj_uncentred: float
    fvalue: float
    f_pvalue: float
    aic: float
    bic: float
    rmse: float  # original scale
    mare: float  # mean absolute relative error, original scale
    median_are: float
    max_are: float
    log_rmse: float
    smearing: float  # Duan's factor: E[exp(residual)]
    condition_number: float
    warnings: tuple[Diagnostic, ...]
    sign_violations: tuple[str, ...]
    conf: float = 0.95
    group: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    boot: np.ndarray | None = None  # (B, p) draws in param order: bootstrap, or model-based for "ols"
    cluster: str | None = None
    n_clusters: int = 0
    interval_kind: str = "ols"  # see INTERVAL_TEXT
    interval_note: str = ""  # why the intervals are rough, or why the bootstrap was refused
    unidentified: dict[str, str] = field(default_factory=dict)  # parameter → why the design cannot identify it
    unreliable: tuple[str, ...] = ()  # why the fit as a whole is not to be trusted
    theta: np.ndarray | None = None  # the numeric solution (also of unidentified parameters), for predictions
    rank: int = 0
    weighting: str = "none (OLS)"  # how rows were weighted (see fit's ``weights``)
    bounded: bool = False  # the target is a metric in [0, 1] (see complaw.laws.data.unit_interval_metric)
    out_of_bounds: str = ""  # where the law leaves [0, 1] inside the fitted range ('' if it does not)

    # --- views ------------------------------------------------------------------------------------
    @property
    def coef(self) -> dict[str, float]:
        """Estimates by name (NaN for a parameter the design cannot identify)."""
        return {k: v.estimate for k, v in self.params.items()}

    @property
    def coef_vector(self) -> np.ndarray:
        """The numeric solution in parameter order: what predictions use. A parameter the design cannot
        identify still has a value here (one of many that fit equally well); do not read it as an estimate."""
        if self.theta is not None:
            return np.asarray(self.theta, dtype=float)
        return np.array([self.params[k].estimate for k in self.form.param_names])

    @property
    def sign_ok(self) -> bool:
        """No identifiable parameter violates its sign condition (see :attr:`sign_unknown` for the rest)."""
        return not self.sign_violations

    @property
    def sign_unknown(self) -> tuple[str, ...]:
        """Parameters with a sign condition that the design cannot identify (no verdict for them)."""
        return tuple(p for p in self.form.sign_conditions(self.direction) if p in self.unidentified)

    @property
    def status(self) -> str:
        """``ok`` or ``unreliable`` (fewer than 3 ratios, a negative centred R², an ill-conditioned design)."""
        return "unreliable" if self.unreliable else "ok"

    @property
    def identified(self) -> bool:
        return not self.unidentified

    @property
    def name(self) -> str:
        return self.form.name

    def sign_text(self) -> str:
        """``ok``, ``violated: …`` or ``not identifiable: γ``, for tables."""
        if self.sign_violations:
            return "violated: " + "; ".join(self.sign_violations)
        if self.sign_unknown:
            head = "ok for " + ", ".join(p for p in self.form.sign_conditions(self.direction)
                                         if p not in self.unidentified) + "; " if any(
                p not in self.unidentified for p in self.form.sign_conditions(self.direction)) else ""
            return head + "no verdict for " + ", ".join(self.sign_unknown) + " (not identifiable)"
        return "ok"

    def predict(self, data, *, smearing: bool = False) -> np.ndarray:
        """Predicted target on the original scale for rows with the form's input columns.

        ``exp`` of the log-space prediction is the conditional *median*; ``smearing=True`` multiplies by
        Duan's smearing factor to estimate the conditional mean.
        """
        ld = as_law_data(data)
        frame, _ = ld.rows_for(self.form, need_target=False)
        out = np.exp(self.form.predict_log(self.coef_vector, frame, self.unit))
        return out * self.smearing if smearing else out

    def summary(self) -> str:
        """A statsmodels-style text summary."""
        booted = self.interval_kind in ("cluster-bootstrap", "row-bootstrap")
        lines = [
            f"Law {self.form.name}: {self.form.formula}",
            f"  group: {', '.join(f'{k}={v}' for k, v in self.group.items()) or 'all rows'}   "
            f"direction: {self.direction} is better   estimator: {self.estimator}   n = {self.n_obs}",
            f"  D unit: {self.unit.name} (scale {self.unit.scale:g}, eps {self.unit.eps:g})   weights: {self.weighting}",
            f"  status: {self.status}" + (": " + "; ".join(self.unreliable) if self.unreliable else ""),
            "",
            f"  {'param':<10}{'estimate':>11}{'std err':>10}{'p':>10}   {int(self.conf * 100)}% interval"
            + ("          bootstrap" if booted else ""),
        ]
        for e in self.params.values():
            if not e.identifiable:
                lines.append(f"  {e.name:<10}   not identifiable: {e.reason}")
                continue
            row = f"  {e.name:<10}{e.estimate:>11.4f}{e.se:>10.4f}{e.pvalue:>10.3g}   "
            row += f"[{e.ci[0]:.4f}, {e.ci[1]:.4f}]" if e.ci else "–"
            if e.boot_ci:
                row += f"   [{e.boot_ci[0]:.4f}, {e.boot_ci[1]:.4f}]"
            lines.append(row)
        lines += [
            "",
            f"  R² {self.r2:.4f} (centred)  {self.r2_uncentred:.4f} (uncentred)   adj. R² {self.r2_adj:.4f}",
            f"  F {self.fvalue:.4g} (p {self.f_pvalue:.3g})   AIC {self.aic:.2f}   BIC {self.bic:.2f}",
            f"  RMSE {self.rmse:.4g}   abs. rel. error mean {self.mare:.2%} median {self.median_are:.2%} "
            f"max {self.max_are:.2%}   cond. {self.condition_number:.1f}",
            f"  sign conditions ({self.form.describe_conditions(self.direction)}): "
            + ("VIOLATED: " + "; ".join(self.sign_violations) if self.sign_violations else self.sign_text()),
            f"  intervals: {self.interval_text()}",
        ]
        if self.dropped:
            lines.append("  rows set aside: " + ", ".join(f"{v} ({k})" for k, v in self.dropped.items()))
        lines += [f"  warning: {w.message}" for w in self.warnings]
        return "\n".join(lines)

    def interval_text(self) -> str:
        """What the intervals are: kind, resamples, clusters, and any caveat."""
        kind = self.interval_kind
        if kind == "cluster-bootstrap":
            text = f"cluster bootstrap, {len(self.boot)} resamples of {self.n_clusters} '{self.cluster}' clusters"
        elif kind == "row-bootstrap":
            text = f"row bootstrap, {len(self.boot)} resamples of {self.n_obs} rows"
        elif kind == "ols":
            text = "model-based (OLS t intervals" + (
                f"; decisions from {len(self.boot)} normal-theory draws)" if self.boot is not None else ")")
        else:
            text = "none"
        return text + (f" — {self.interval_note}" if self.interval_note else "")

    def to_dict(self) -> dict[str, Any]:
        """Everything but the draws, JSON-ready (NaN → None)."""
        booted = self.interval_kind in ("cluster-bootstrap", "row-bootstrap")
        return _clean({
            "form": self.form.name, "formula": self.form.formula, "intercept": self.form.intercept,
            "direction": self.direction, "estimator": self.estimator, "group": self.group,
            "status": self.status, "unreliable": list(self.unreliable), "bounded": self.bounded,
            "out_of_bounds": self.out_of_bounds or None, "weighting": self.weighting,
            "unidentified": dict(self.unidentified),
            "d_unit": {"name": self.unit.name, "scale": self.unit.scale, "eps": self.unit.eps},
            "params": {k: v.to_dict() for k, v in self.params.items()},
            "n_obs": self.n_obs, "df_resid": self.df_resid, "rank": self.rank, "r2": self.r2,
            "r2_uncentred": self.r2_uncentred,
            "r2_adj": self.r2_adj, "r2_adj_uncentred": self.r2_adj_uncentred, "fvalue": self.fvalue,
            "f_pvalue": self.f_pvalue, "aic": self.aic, "bic": self.bic, "rmse": self.rmse, "mare": self.mare,
            "median_are": self.median_are, "max_are": self.max_are, "log_rmse": self.log_rmse,
            "smearing": self.smearing, "condition_number": self.condition_number,
            "sign_conditions": self.form.sign_conditions(self.direction), "sign_ok": self.sign_ok,
            "sign_violations": list(self.sign_violations), "sign_unknown": list(self.sign_unknown),
            "warnings": [w.to_dict() for w in self.warnings],
            "conf": self.conf, "dropped": self.dropped,
            "interval": {"kind": self.interval_kind, "cluster": self.cluster, "clusters": self.n_clusters,
                         "draws": 0 if self.boot is None else len(self.boot), "note": self.interval_note},
            "bootstrap": {"resamples": len(self.boot), "cluster": self.cluster, "clusters": self.n_clusters}
            if booted else None,
        })

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)


@dataclass(frozen=True)
class FitFailure:
    """A (group, form) that could not be fitted, with the one-line reason: a row of the table, not an abort."""

    form: str
    group: dict[str, str]
    reason: str
    n_rows: int = 0
    status: str = "failed"

    def to_dict(self) -> dict[str, Any]:
        return {"form": self.form, "group": self.group, "status": self.status, "reason": self.reason,
                "n_rows": self.n_rows}


def _clean(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        return _clean(obj.item())
    return obj


# --- estimators -------------------------------------------------------------------------------------
def _huber_loss(theta, X, y, delta):
    r = y - X @ theta
    a = np.abs(r)
    quad = a <= delta
    loss = np.where(quad, 0.5 * r * r, delta * (a - 0.5 * delta))
    psi = np.where(quad, r, delta * np.sign(r))
    return loss.sum(), -(X.T @ psi)  # a *sum*, not a mean: averaging stops L-BFGS early


def huber_fit(X: np.ndarray, y: np.ndarray, *, delta: float = HUBER_DELTA, starts: np.ndarray | None = None,
              seed: int = 0) -> np.ndarray:
    """Minimise the summed Huber loss of log residuals from several starts; keep the best."""
    ols = np.linalg.lstsq(X, y, rcond=None)[0]
    if starts is None:
        rng = np.random.default_rng(seed)
        scale = np.maximum(np.abs(ols), 0.5)
        starts = np.vstack([ols, np.zeros_like(ols), ols + rng.normal(0, 1, (6, len(ols))) * scale])
    from scipy import optimize  # only the robust fit needs it (and it is slow to import)

    best, best_loss = ols, math.inf
    for s in np.atleast_2d(starts):
        res = optimize.minimize(_huber_loss, s, args=(X, y, delta), jac=True, method="L-BFGS-B",
                                options={"maxiter": 2000, "gtol": 1e-12, "ftol": 1e-15})
        if res.fun < best_loss:
            best, best_loss = res.x, res.fun
    return best


def _bootstrap(X, y, groups: np.ndarray, B: int, rng, estimator: str, delta: float, theta0) -> np.ndarray:
    """B bootstrap draws of the parameters, resampling whole clusters (rows of one base model)."""
    codes = pd.factorize(groups)[0]
    K = codes.max() + 1
    p = X.shape[1]
    draws = np.empty((B, p))
    if estimator == "ols":
        # Per-cluster sufficient statistics make each resample a p×p solve, whatever the row count.
        G = np.zeros((K, p, p))
        h = np.zeros((K, p))
        for j in range(p):
            h[:, j] = np.bincount(codes, weights=X[:, j] * y, minlength=K)
            for k in range(p):
                G[:, j, k] = np.bincount(codes, weights=X[:, j] * X[:, k], minlength=K)
        Gf = G.reshape(K, p * p)
        chunk = max(1, min(B, 4_000_000 // max(K, 1)))
        for start in range(0, B, chunk):
            b = min(chunk, B - start)
            # how often each cluster is drawn in each of b resamples of K clusters
            pick = rng.integers(0, K, size=(b, K)) + (np.arange(b) * K)[:, None]
            counts = np.bincount(pick.ravel(), minlength=b * K).reshape(b, K).astype(float)
            XtX = (counts @ Gf).reshape(b, p, p)
            Xty = counts @ h
            try:
                draws[start:start + b] = np.linalg.solve(XtX, Xty[:, :, None])[:, :, 0]
            except np.linalg.LinAlgError:  # a resample whose design is singular: solve one by one
                draws[start:start + b] = [np.linalg.lstsq(A, v, rcond=None)[0] for A, v in zip(XtX, Xty, strict=True)]
        return draws
    members = [np.flatnonzero(codes == k) for k in range(K)]
    for i in range(B):
        idx = np.concatenate([members[k] for k in rng.integers(0, K, size=K)])
        draws[i] = huber_fit(X[idx], y[idx], delta=delta, starts=theta0[None, :])
    return draws


def _model_draws(theta: np.ndarray, cov: np.ndarray, df: int, B: int, rng) -> np.ndarray:
    """B draws from the OLS sampling distribution of the estimates (multivariate t with ``df``)."""
    w, V = np.linalg.eigh((cov + cov.T) / 2)
    root = V * np.sqrt(np.clip(w, 0.0, None))
    z = rng.standard_normal((B, len(theta))) @ root.T
    scale = np.sqrt(df / rng.chisquare(df, B))[:, None] if df > 0 else 1.0
    return theta[None, :] + z * scale


def _choose_interval(interval: str, *, robust: bool, bootstrap: int, cl: str | None, cluster: str | None,
                     clusters: list[str], where: str) -> tuple[str, str]:
    """The interval kind to use, and a note when it is rough or when the asked-for kind was refused."""
    k = len(clusters)
    if interval == "ols":
        if robust:
            raise ComplawError("--interval ols: model-based intervals are for the OLS fit; with --robust use "
                               "--interval cluster or rows")
        return "ols", ""
    if bootstrap == 0:
        return ("none" if robust else "ols"), ""
    alt = "--interval rows (row bootstrap)" + ("" if robust else " or --interval ols (model-based)")
    if interval == "rows":
        return "row-bootstrap", ""
    if cl is None:
        if interval == "cluster":
            raise ComplawError(f"{where}: --interval cluster: no column {cluster!r} to resample as clusters; "
                               f"map the base-model column with --map model=COLUMN, or use {alt}")
        return "row-bootstrap", ""
    if k < 2:
        why = (f"one '{cl}' cluster ({cl} = {clusters[0] if clusters else '?'}): a cluster bootstrap would redraw "
               "the same rows every time and give zero-width intervals")
        if interval == "cluster":
            raise ComplawError(f"{where}: --interval cluster: {why}; use {alt}")
        if robust:
            return "row-bootstrap", f"cluster bootstrap refused: {why}; rows resampled instead"
        return "ols", f"cluster bootstrap refused: {why}; intervals are model-based (OLS) instead, or use --interval rows"
    if k < MIN_CLUSTERS:
        return "cluster-bootstrap", (f"only {k} '{cl}' clusters: cluster-bootstrap percentile intervals are rough "
                                     f"below {MIN_CLUSTERS}; the alternatives are {alt}")
    return "cluster-bootstrap", ""


@dataclass(frozen=True)
class _Solution:
    """An estimator's solution of the (weighted) log-space design: what the draws and the statistics start from."""

    theta: np.ndarray
    rank: int
    dfr: int  # residual degrees of freedom
    cov: np.ndarray | None = None  # the model-based covariance of theta (OLS)
    ols: Any = None  # statsmodels' results (OLS)


@dataclass(frozen=True)
class _Statistics:
    """An estimator's standard errors, p-values, t intervals (None: intervals from the draws) and goodness of fit."""

    se: np.ndarray
    pvals: np.ndarray
    t_ci: np.ndarray | None
    ssr: float
    sst_c: float  # centred total sum of squares
    sst_u: float  # uncentred total sum of squares
    fvalue: float
    f_pvalue: float
    aic: float
    bic: float
    n: int
    dfr: int

    @property
    def r2(self) -> float:
        return 1 - self.ssr / self.sst_c if self.sst_c > 0 else math.nan

    @property
    def r2_uncentred(self) -> float:
        return 1 - self.ssr / self.sst_u if self.sst_u > 0 else math.nan

    @property
    def r2_adj(self) -> float:
        return 1 - (1 - self.r2) * (self.n - 1) / self.dfr if self.dfr > 0 else math.nan

    @property
    def r2_adj_uncentred(self) -> float:
        return 1 - (1 - self.r2_uncentred) * self.n / self.dfr if self.dfr > 0 else math.nan


def _solve_ols(X: np.ndarray, y: np.ndarray, *, rank: int, delta: float, seed: int) -> _Solution:
    """Least squares by statsmodels; rank and residual degrees of freedom are statsmodels' own."""
    # statsmodels is the OLS engine. Imported here, not at the top: it takes over a second to import, which
    # `complaw forms`, `critical` and `import complaw.cli` never pay. Its default pinv solve gives the
    # minimum-norm solution of a rank-deficient design; the parameters that design cannot pin down are
    # reported as not identifiable (see fit).
    from statsmodels.regression.linear_model import OLS

    with catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        # a rank-deficient design is no surprise here: `unidentified` has already named what it cannot tell
        filterwarnings("ignore", message="The design matrix is rank-deficient")
        ols = OLS(y, X).fit()
    theta = np.asarray(ols.params, dtype=float)
    cov = np.asarray(ols.cov_params(), dtype=float)
    return _Solution(theta, int(ols.model.rank), int(ols.df_resid), cov, ols)


def _solve_huber(X: np.ndarray, y: np.ndarray, *, rank: int, delta: float, seed: int) -> _Solution:
    """The summed-Huber solution (several starts, see :func:`huber_fit`); n − rank residual degrees of freedom."""
    theta = huber_fit(X, y, delta=delta, seed=seed)
    return _Solution(theta, rank, X.shape[0] - rank)


def _ols_statistics(sol: _Solution, X: np.ndarray, y: np.ndarray, boot: np.ndarray | None,
                    conf: float) -> _Statistics:
    """statsmodels' standard errors, p-values and t intervals; its sums of squares, F, AIC and BIC."""
    ols = sol.ols
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.asarray(ols.bse, dtype=float)
        pvals = np.asarray(ols.pvalues, dtype=float)
        t_ci = np.asarray(ols.conf_int(alpha=1 - conf), dtype=float)
    # statsmodels' R² is the centred one when the design spans a constant (an intercept, or a column such as
    # log 2 at D = 0 everywhere) and the uncentred one otherwise; both are made from its sums of squares.
    # F tests against the constant-only model or against 0 by the same rule.
    ssr, sst_c, sst_u = float(ols.ssr), float(ols.centered_tss), float(ols.uncentered_tss)
    with np.errstate(divide="ignore", invalid="ignore"):
        ok_f = ols.df_model > 0 and sol.dfr > 0
        fvalue = float(ols.fvalue) if ok_f else math.nan
        f_pvalue = float(ols.f_pvalue) if ok_f else math.nan
        aic, bic = float(ols.aic), float(ols.bic)
    return _Statistics(se, pvals, t_ci, ssr, sst_c, sst_u, fvalue, f_pvalue, aic, bic, X.shape[0], sol.dfr)


def _huber_statistics(sol: _Solution, X: np.ndarray, y: np.ndarray, boot: np.ndarray | None,
                      conf: float) -> _Statistics:
    """Standard errors from the resamples (NaN without), t p-values; no F; Gaussian AIC/BIC, as for OLS."""
    from scipy import stats

    n, p = X.shape
    resid = y - X @ sol.theta
    ssr = float(resid @ resid)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = boot.std(axis=0, ddof=1) if boot is not None else np.full(p, math.nan)
        pvals = 2 * stats.t.sf(np.abs(sol.theta / se), sol.dfr)
    sst_c, sst_u = float(((y - y.mean()) ** 2).sum()), float(y @ y)
    llf = -0.5 * n * (math.log(2 * math.pi * max(ssr, 1e-300) / n) + 1)  # Gaussian, as for OLS
    aic, bic = -2 * llf + 2 * sol.rank, -2 * llf + sol.rank * math.log(n)
    return _Statistics(se, pvals, None, ssr, sst_c, sst_u, math.nan, math.nan, aic, bic, n, sol.dfr)


class _Estimator(NamedTuple):
    """How :func:`fit` estimates: solve the design, then the statistics of the solution (given the draws).

    Every estimator's functions take the same arguments; each uses the ones it needs."""

    solve: Callable[..., _Solution]
    statistics: Callable[..., _Statistics]


#: The estimators of :func:`fit` by name (its ``FitResult.estimator``); ``robust=True`` chooses ``huber``.
_ESTIMATORS: dict[str, _Estimator] = {
    "ols": _Estimator(_solve_ols, _ols_statistics),
    "huber": _Estimator(_solve_huber, _huber_statistics),
}


def _draws(kind: str, bootstrap: int, X: np.ndarray, y: np.ndarray, groups: np.ndarray, rng, estimator: str,
           huber_delta: float, sol: _Solution) -> np.ndarray | None:
    """The draws of the parameters: bootstrap resamples (of clusters or rows), model-based OLS draws, or none."""
    if kind in ("cluster-bootstrap", "row-bootstrap") and bootstrap:
        resample = groups if kind == "cluster-bootstrap" else np.arange(X.shape[0])
        return _bootstrap(X, y, resample, bootstrap, rng, estimator, huber_delta, sol.theta)
    if kind == "ols" and bootstrap:
        return _model_draws(sol.theta, sol.cov, sol.dfr, bootstrap, rng)
    return None


def fit(
    data,
    form: str | LawForm = "sengupta2025",
    *,
    direction: str | None = None,
    unit: DUnit | None = None,
    robust: bool = False,
    huber_delta: float = HUBER_DELTA,
    bootstrap: int = 1000,
    cluster: str | None = "model",
    interval: str = "auto",
    conf: float = 0.95,
    seed: int = 0,
    drop_invalid: bool = False,
    mapping=None,
    group: dict[str, str] | None = None,
    bounds: bool | None = None,
    weights: str = "none",
) -> FitResult:
    """Fit one law form to one table (or one group of it).

    Args:
        data: a path, DataFrame or :class:`LawData`.
        form: a form name (``complaw forms`` lists them; ``+1``/``+0`` toggles the intercept) or object.
        direction: ``higher`` or ``lower`` is better; default from a ``direction``/``metric`` column.
        unit: the D unit (name, scale, ε) the law sees; default raw samples with ε = 1.
        robust: minimise summed Huber loss of log residuals (several starts) instead of OLS.
        huber_delta: Huber threshold on log residuals.
        bootstrap: number of bootstrap resamples, or of model-based draws for decisions (0 for none).
        cluster: column whose values are resampled together (rows of one base model are not independent);
            rows are resampled individually when the column is absent.
        interval: ``auto`` (see the module docstring), ``cluster``, ``rows`` or ``ols``.
        conf: confidence level of the intervals.
        seed: seed of the bootstrap and the robust starts.
        drop_invalid: set invalid rows aside (counted) instead of stopping at the first.
        mapping: column mapping when ``data`` is a path or DataFrame.
        group: the group this fit belongs to (for reports).
        bounds: whether the target is a metric in [0, 1]; None decides from the table (a higher-is-better
            metric whose values all lie in [0, 1], not a retention or score). A bounded law that predicts
            outside [0, 1] inside the fitted range is marked unreliable (``out_of_bounds`` says where);
            its predictions are not clipped.
        weights: ``none`` (OLS), ``inverse-variance`` (weighted least squares in log space, each row weighted
            by 1 / var(log L) from its standard error ``L_se`` by the delta method, var ≈ (L_se / L)², plus
            (L0_se / L0)² where L0 is an offset), or ``auto`` (inverse-variance when every row has a positive
            standard error, else OLS with the reason). :attr:`FitResult.weighting` says which was done.

    Raises:
        ComplawError: bad settings, invalid cells, too few rows, or a design that identifies nothing.
    """
    d = _design(data, form, direction=direction, unit=unit, interval=interval, conf=conf, bootstrap=bootstrap,
                drop_invalid=drop_invalid, mapping=mapping, group=group, weights=weights)
    rng = np.random.default_rng(seed)
    cl, groups, clusters = _clusters(d.frame, cluster, d.n)
    kind, note = _choose_interval(interval, robust=robust, bootstrap=bootstrap, cl=cl, cluster=cluster,
                                  clusters=clusters, where=d.where)
    y, X = _weighted(d.y, d.X, d.w)
    name = "huber" if robust else "ols"
    estimator = _ESTIMATORS[name]
    sol = estimator.solve(X, y, rank=d.rank, delta=huber_delta, seed=seed)
    boot = _draws(kind, bootstrap, X, y, groups, rng, name, huber_delta, sol)
    st = estimator.statistics(sol, X, y, boot, conf)
    n_clusters = len(clusters) if kind == "cluster-bootstrap" else 0
    params = _params(d, sol.theta, st, boot, kind, n_clusters, conf)
    cond = condition_number(X)
    unreliable, bounded, leaves = _reliability(d, sol.theta, st.r2, cond, bounds)
    return FitResult(
        form=d.form, direction=d.direction, unit=d.unit, estimator=name, params=params,
        n_obs=d.n, df_resid=sol.dfr, r2=st.r2, r2_uncentred=st.r2_uncentred,
        r2_adj=st.r2_adj, r2_adj_uncentred=st.r2_adj_uncentred,
        fvalue=st.fvalue, f_pvalue=st.f_pvalue, aic=st.aic, bic=st.bic, **_prediction_errors(d, sol.theta),
        condition_number=cond, warnings=_fit_warnings(d, X, leaves, note), sign_violations=_sign_violations(d, params),
        conf=conf, group=dict(group or {}), dropped=d.dropped, boot=boot,
        cluster=cl if kind == "cluster-bootstrap" else None, n_clusters=n_clusters, interval_kind=kind,
        interval_note=note, unidentified=d.unident, unreliable=unreliable, theta=np.asarray(sol.theta, dtype=float),
        rank=sol.rank, bounded=bounded, out_of_bounds=leaves, weighting=d.weighting,
    )


@dataclass(frozen=True)
class _Design:
    """One fit's checked rows and unweighted log-space design (see :func:`_design`)."""

    form: LawForm
    unit: DUnit
    direction: str
    frame: pd.DataFrame
    dropped: dict[str, int]
    where: str  # the table and group, for messages
    y: np.ndarray
    X: np.ndarray
    w: np.ndarray | None  # row weights (mean 1), or None
    weighting: str
    unident: dict[str, str]  # parameter → why the design cannot identify it
    rank: int

    @property
    def n(self) -> int:
        return self.X.shape[0]


def _design(data, form: str | LawForm, *, direction: str | None, unit: DUnit | None, interval: str, conf: float,
            bootstrap: int, drop_invalid: bool, mapping, group: dict[str, str] | None, weights: str) -> _Design:
    """Check the settings, read the rows, build the design and the weights; stop on a design that cannot be fitted
    (fewer rows than parameters + 1, or no parameter identified)."""
    form = get_form(form)
    unit = unit or DUnit()
    check_fit_settings(interval=interval, conf=conf, bootstrap=bootstrap, weights=weights)
    ld: LawData = as_law_data(data, mapping=mapping)
    if form.fixed_direction:
        direction = form.fixed_direction
    else:
        check_direction(ld, direction)  # an explicit direction may not contradict a metric's name
        direction = form.direction_for(ld.direction(direction))
    frame, dropped_here = ld.rows_for(form, drop_invalid=drop_invalid)
    dropped = {**ld.dropped, **dropped_here}
    where = f"{ld.source}{_group_text(group)}"
    y, X = form.design(frame, unit)
    n, p = X.shape
    if n < p + 1:
        raise ComplawError(
            f"{where}: {n} usable row(s) for form {form.name} with {p} parameters; need at least {p + 1}"
        )
    w, weighting = _weights(form, frame, weights, where)
    unident, rank = unidentified(form, frame, X)
    if len(unident) == p:
        raise ComplawError(
            f"{where}: the design identifies no parameter of {form.name} ("
            + "; ".join(f"{k}: {v}" for k, v in list(unident.items())[:2]) + ")"
        )
    return _Design(form, unit, direction, frame, dropped, where, y, X, w, weighting, unident, rank)


def check_fit_settings(*, interval: str = "auto", conf: float = 0.95, bootstrap: int = 0,
                       weights: str = "none") -> None:
    """A bad ``interval``, ``conf``, ``bootstrap`` or ``weights`` is the caller's error, named by its option."""
    if interval not in INTERVALS:
        raise ComplawError(f"--interval {interval!r}: unknown; use one of {', '.join(INTERVALS)}")
    if not (0 < conf < 1):
        raise ComplawError(f"--conf {conf}: must lie in (0, 1), e.g. 0.95")
    if bootstrap < 0:
        raise ComplawError(f"--bootstrap {bootstrap}: must be ≥ 0")
    if weights not in WEIGHTS:
        raise ComplawError(f"--weights {weights!r}: unknown; use one of {', '.join(WEIGHTS)}")


def _clusters(frame: pd.DataFrame, cluster: str | None, n: int) -> tuple[str | None, np.ndarray, list[str]]:
    """(the cluster column, if the rows have it; each row's cluster, or its row number; the sorted clusters)."""
    cl = cluster if cluster and cluster in frame.columns else None
    groups = frame[cl].astype(str).to_numpy() if cl else np.arange(n)
    clusters = sorted(set(groups)) if cl else []
    return cl, groups, clusters


def _weighted(y: np.ndarray, X: np.ndarray, w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """WLS as OLS on rows scaled by sqrt(w): estimates, SEs, bootstrap all follow (unchanged without weights)."""
    if w is None:
        return y, X
    sw = np.sqrt(w)
    return y * sw, X * sw[:, None]


def _params(d: _Design, theta: np.ndarray, st: _Statistics, boot: np.ndarray | None, kind: str, n_clusters: int,
            conf: float) -> dict[str, Estimate]:
    """Every parameter's :class:`Estimate`; one the design cannot identify gets no estimate or interval.

    The interval is the t interval where the estimator gives one (OLS), else the bootstrap percentile one."""
    booted = kind in ("cluster-bootstrap", "row-bootstrap") and boot is not None
    lo_q, hi_q = 100 * (0.5 - conf / 2), 100 * (0.5 + conf / 2)
    params = {}
    for j, name in enumerate(d.form.param_names):
        if name in d.unident:
            params[name] = Estimate(name, math.nan, math.nan, None, math.nan, None, False, d.unident[name], kind,
                                    n_clusters)
            continue
        boot_ci = (float(np.percentile(boot[:, j], lo_q)), float(np.percentile(boot[:, j], hi_q))) if booted else None
        ci = boot_ci if st.t_ci is None else (float(st.t_ci[j, 0]), float(st.t_ci[j, 1]))
        params[name] = Estimate(name, float(theta[j]), float(st.se[j]), ci, float(st.pvals[j]), boot_ci, True, "",
                                kind, n_clusters)
    return params


def _prediction_errors(d: _Design, theta: np.ndarray) -> dict[str, float]:
    """RMSE and absolute relative errors on the original scale; the log-space RMSE and Duan's smearing factor
    (all on unweighted rows)."""
    target = d.frame[d.form.target].to_numpy(dtype=float)
    pred = np.exp(d.form.predict_log(theta, d.frame, d.unit))
    are = np.abs(pred - target) / np.abs(target)
    log_resid = d.y - d.X @ theta
    return {"rmse": float(np.sqrt(np.mean((pred - target) ** 2))), "mare": float(are.mean()),
            "median_are": float(np.median(are)), "max_are": float(are.max()),
            "log_rmse": math.sqrt(float((log_resid ** 2).sum()) / d.n),
            "smearing": float(np.mean(np.exp(log_resid)))}


def _sign_violations(d: _Design, params: dict[str, Estimate]) -> tuple[str, ...]:
    """Each identifiable parameter whose estimate breaks the form's sign condition, in words."""
    conds = d.form.sign_conditions(d.direction)
    return tuple(
        f"{k} = {params[k].estimate:.4g} should be {'> 0' if s > 0 else '< 0'}"
        for k, s in conds.items() if k not in d.unident and np.sign(params[k].estimate) != s
    )


def _reliability(d: _Design, theta: np.ndarray, r2: float, cond: float,
                 bounds: bool | None) -> tuple[tuple[str, ...], bool, str]:
    """(why the fit is unreliable, whether the target is bounded to [0, 1], where the law leaves [0, 1] or '')."""
    form, frame = d.form, d.frame
    unreliable = []
    comp = form.term("compression")
    if comp is not None and frame[comp.column].nunique() < 3:
        unreliable.append(f"only {frame[comp.column].nunique()} distinct compression ratio(s) (fewer than 3)")
    if math.isfinite(r2) and r2 < 0:
        unreliable.append(f"negative centred R² ({r2:.3g}): the law fits worse than a constant")
    if math.isfinite(cond) and cond > COND_LIMIT:
        unreliable.append(f"ill-conditioned design (condition number {cond:.0f} > {COND_LIMIT:.0f})")
    bounded = (d.direction == HIGHER and form.target == "L" and unit_interval_metric(frame)) if bounds is None \
        else bool(bounds)
    leaves = _leaves_unit_interval(form, theta, frame, d.unit) if bounded else ""
    if leaves:
        unreliable.append(leaves)
    return tuple(unreliable), bounded, leaves


def _fit_warnings(d: _Design, X: np.ndarray, leaves: str, note: str) -> tuple[Diagnostic, ...]:
    """The design's diagnostics, then out-of-bounds, rank deficiency and the interval note, as warnings."""
    warnings = list(diagnose(d.form, d.frame, d.unit, X))
    if leaves:
        warnings.append(Diagnostic("out-of-bounds", leaves))
    warnings += [Diagnostic("rank-deficient", f"{k}: {v}") for k, v in d.unident.items()
                 if v.startswith("the design is rank-deficient")]
    if note:
        code = "bootstrap-refused" if "refused" in note else "few-clusters"
        warnings.append(Diagnostic(code, note))
    return tuple(warnings)


#: Row weightings of :func:`fit`.
WEIGHTS = ("none", "inverse-variance", "auto")


def _weights(form: LawForm, frame: pd.DataFrame, how: str, where: str) -> tuple[np.ndarray | None, str]:
    """(weights normalised to mean 1, or None; what was done, in words)."""
    if how == "none":
        return None, "none (OLS)"
    t = form.target
    se_col = f"{t}_se"
    why = ""
    if se_col not in frame.columns:
        why = f"no {se_col} column"
    else:
        val = frame[t].to_numpy(dtype=float)
        se = pd.to_numeric(frame[se_col], errors="coerce").to_numpy(dtype=float)
        var = (se / val) ** 2
        parts = f"(se_{t}/{t})²"
        off = form.offset_column
        if off and f"{off}_se" in frame.columns:
            se0 = pd.to_numeric(frame[f"{off}_se"], errors="coerce").to_numpy(dtype=float)
            var = var + (se0 / frame[off].to_numpy(dtype=float)) ** 2
            parts += f" + (se_{off}/{off})²"
        if not np.isfinite(var).all():
            why = f"{int((~np.isfinite(var)).sum())} row(s) without a standard error"
        elif not (var > 0).any():
            why = "every standard error is 0"
    if why:
        if how == "inverse-variance":
            raise ComplawError(f"{where}: --weights inverse-variance: {why}; give {se_col} for every row or use "
                               "--weights none")
        return None, f"none (OLS): {why}"
    floor = float(var[var > 0].min())
    n_floor = int((var <= 0).sum())
    var = np.maximum(var, floor)  # a score of exactly 0 or 1 has se 0: weigh it like the most precise row
    w = 1.0 / var
    text = f"inverse-variance (WLS in log space; delta method: var log {t} ≈ {parts})"
    if n_floor:
        text += f"; {n_floor} row(s) with se 0 given the smallest positive variance"
    return w / w.mean(), text


def _leaves_unit_interval(form: LawForm, theta, frame: pd.DataFrame, unit: DUnit) -> str:
    """'' if the law's predictions stay in [0, 1] on the fitted range — r from 0 to the largest fitted r, every
    fitted D and every base value of the table — else where they leave it (the fit is marked; predictions
    are not clipped)."""
    cols = {t.column for t in form.terms} | ({form.offset_column} if form.offset_column else set())
    axes = {}
    for c in sorted(cols):
        v = pd.to_numeric(frame[c], errors="coerce").dropna()
        axes[c] = np.linspace(0.0, float(v.max()), 41) if c == "r" else np.unique(v.to_numpy(dtype=float))
    if not axes or any(len(a) == 0 for a in axes.values()):
        return ""
    mesh = np.meshgrid(*axes.values(), indexing="ij")
    grid = pd.DataFrame({c: m.ravel() for c, m in zip(axes, mesh, strict=True)})
    with np.errstate(all="ignore"):
        pred = np.exp(form.predict_log(theta, grid, unit))
    worst = int(np.nanargmax(pred)) if np.isfinite(pred).any() else None
    if worst is None or pred[worst] <= 1 + 1e-9:
        return ""
    at = ", ".join(f"{c} = {grid[c].iloc[worst]:.4g}" for c in axes)
    share = float(np.mean(pred > 1 + 1e-9))
    return (f"predicts {pred[worst]:.3g} > 1 for a metric in [0, 1] inside the fitted range (at {at}; "
            f"{share:.0%} of the range): the fit is marked, its predictions are not clipped")


def _group_text(group: dict[str, str] | None) -> str:
    return f" [{', '.join(f'{k}={v}' for k, v in group.items())}]" if group else ""


def default_groups(ld: LawData) -> list[str]:
    """Fit per (method, metric) by default, using whichever of the two columns exist."""
    return [c for c in ("method", "metric") if c in ld.frame.columns]


def fit_each(
    data,
    forms: list[str | LawForm] | str = "sengupta2025",
    *,
    group: list[str] | None = None,
    mapping=None,
    direction: str | None = None,
    drop_invalid: bool = False,
    **kwargs,
) -> list[FitResult | FitFailure]:
    """Fit every form to every group on its own: one verdict per (group, form), in group order.

    A group that cannot be fitted (too few rows, a design that identifies nothing, a direction it cannot
    tell) becomes a :class:`FitFailure` with its reason; the other groups are fitted. Problems of the
    whole table stop it with :class:`~complaw.errors.ComplawError`: an unknown form or group column, a
    missing column, an invalid cell (unless ``drop_invalid``), or a ``direction`` that contradicts a metric
    name.
    """
    ld = as_law_data(data, mapping=mapping)
    forms = [forms] if isinstance(forms, (str, LawForm)) else list(forms)
    forms = [get_form(f) for f in forms]
    by = default_groups(ld) if group is None else group
    groups = ld.groups(by)
    check_direction(ld, direction)
    for f in forms:  # missing columns and invalid cells are the table's problem, named by its own row numbers
        ld.rows_for(f, drop_invalid=drop_invalid)
    out: list[FitResult | FitFailure] = []
    for key, sub in groups:
        for f in forms:
            try:
                out.append(fit(sub, f, group=key, direction=direction, drop_invalid=drop_invalid, **kwargs))
            except ComplawError as err:
                if str(err).startswith("--"):  # a bad setting (--interval, --conf, …) is no group's fault
                    raise
                out.append(FitFailure(f.name, key, without_source(str(err), sub.source), len(sub.frame)))
    return out


def without_source(message: str, source: str) -> str:
    """A group failure's reason without the leading ``source [group]:`` (the row names the group)."""
    if message.startswith(source):
        rest = message[len(source):]
        if rest.startswith(" ["):
            rest = rest[rest.index("]") + 1:]
        return rest.lstrip(": ").strip() or message
    return message


def fit_groups(
    data,
    forms: list[str | LawForm] | str = "sengupta2025",
    *,
    group: list[str] | None = None,
    mapping=None,
    **kwargs,
) -> list[FitResult]:
    """Fit every form to every group (default groups: method × metric). Returns one result per pair.

    Strict: the first group that cannot be fitted raises :class:`~complaw.errors.ComplawError` naming
    it. Use :func:`fit_each` to keep going and get the failures as rows.
    """
    out = []
    for item in fit_each(data, forms, group=group, mapping=mapping, **kwargs):
        if isinstance(item, FitFailure):
            where = ", ".join(f"{k}={v}" for k, v in item.group.items())
            raise ComplawError(f"{'[' + where + '] ' if where else ''}{item.form}: {item.reason}")
        out.append(item)
    return out


def compare(results: list[FitResult]) -> pd.DataFrame:
    """A Table-1 style comparison: one row per (group, form) with estimates and goodness of fit."""
    rows = []
    for res in results:
        row: dict[str, Any] = dict(res.group)
        row["form"] = res.form.name
        for k, e in res.params.items():
            row[k] = e.estimate
            row[f"{k}_se"] = e.se
        row.update({
            "n": res.n_obs, "R2_uncentred": res.r2_uncentred, "R2": res.r2, "adj_R2": res.r2_adj,
            "F": res.fvalue, "AIC": res.aic, "BIC": res.bic, "RMSE": res.rmse, "MARE": res.mare,
            "sign_ok": res.sign_ok, "status": res.status, "unidentified": ", ".join(res.unidentified),
            "interval": res.interval_kind, "warnings": len(res.warnings),
        })
        rows.append(row)
    return pd.DataFrame(rows)
