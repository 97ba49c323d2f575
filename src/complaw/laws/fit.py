"""Fitting a law form to results: OLS in log space (default) or summed Huber, with a cluster bootstrap.

    >>> result = fit("results.csv", "sengupta2025", mapping="L=acc L0=base_acc r=ratio D=rft", direction="higher")
    >>> print(result.summary())
    >>> result.params["beta"].estimate, result.params["beta"].ci

The result is immutable and carries everything needed downstream: estimates with standard errors,
intervals and p-values; centred and uncentred R²; F; AIC/BIC; errors on the original scale; the design
diagnostics and sign-condition verdict; and the bootstrap draws that give every decision its interval.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import optimize, stats

from complaw.errors import ComplawError
from complaw.laws.data import LawData, as_law_data
from complaw.laws.diagnostics import Diagnostic, condition_number, diagnose
from complaw.laws.forms import DUnit, LawForm, get_form

#: Huber threshold on log residuals; Chinchilla (Hoffmann et al. 2022) used 1e-3.
HUBER_DELTA = 1e-3


@dataclass(frozen=True)
class Estimate:
    """One parameter: estimate, standard error, interval, p-value (and bootstrap interval if drawn)."""

    name: str
    estimate: float
    se: float
    ci: tuple[float, float]
    pvalue: float
    boot_ci: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "estimate": self.estimate, "se": self.se, "ci": list(self.ci),
                "pvalue": self.pvalue, "boot_ci": list(self.boot_ci) if self.boot_ci else None}


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
    boot: np.ndarray | None = None  # (B, p) bootstrap draws in param order
    cluster: str | None = None
    n_clusters: int = 0

    # --- views ------------------------------------------------------------------------------------
    @property
    def coef(self) -> dict[str, float]:
        return {k: v.estimate for k, v in self.params.items()}

    @property
    def coef_vector(self) -> np.ndarray:
        return np.array([self.params[k].estimate for k in self.form.param_names])

    @property
    def sign_ok(self) -> bool:
        return not self.sign_violations

    @property
    def name(self) -> str:
        return self.form.name

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
        lines = [
            f"Law {self.form.name}: {self.form.formula}",
            f"  group: {', '.join(f'{k}={v}' for k, v in self.group.items()) or 'all rows'}   "
            f"direction: {self.direction} is better   estimator: {self.estimator}   n = {self.n_obs}",
            f"  D unit: {self.unit.name} (scale {self.unit.scale:g}, eps {self.unit.eps:g})",
            "",
            f"  {'param':<10}{'estimate':>11}{'std err':>10}{'p':>10}   {int(self.conf * 100)}% interval"
            + ("          bootstrap" if self.boot is not None else ""),
        ]
        for e in self.params.values():
            row = f"  {e.name:<10}{e.estimate:>11.4f}{e.se:>10.4f}{e.pvalue:>10.3g}   [{e.ci[0]:.4f}, {e.ci[1]:.4f}]"
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
            + ("hold" if self.sign_ok else "VIOLATED: " + "; ".join(self.sign_violations)),
        ]
        if self.boot is not None:
            lines.append(f"  bootstrap: {len(self.boot)} resamples of "
                         + (f"{self.n_clusters} '{self.cluster}' clusters" if self.cluster else "rows"))
        if self.dropped:
            lines.append("  rows set aside: " + ", ".join(f"{v} ({k})" for k, v in self.dropped.items()))
        lines += [f"  warning: {w.message}" for w in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the bootstrap draws, JSON-ready (NaN → None)."""
        return _clean({
            "form": self.form.name, "formula": self.form.formula, "intercept": self.form.intercept,
            "direction": self.direction, "estimator": self.estimator, "group": self.group,
            "d_unit": {"name": self.unit.name, "scale": self.unit.scale, "eps": self.unit.eps},
            "params": {k: v.to_dict() for k, v in self.params.items()},
            "n_obs": self.n_obs, "df_resid": self.df_resid, "r2": self.r2, "r2_uncentred": self.r2_uncentred,
            "r2_adj": self.r2_adj, "r2_adj_uncentred": self.r2_adj_uncentred, "fvalue": self.fvalue,
            "f_pvalue": self.f_pvalue, "aic": self.aic, "bic": self.bic, "rmse": self.rmse, "mare": self.mare,
            "median_are": self.median_are, "max_are": self.max_are, "log_rmse": self.log_rmse,
            "smearing": self.smearing, "condition_number": self.condition_number,
            "sign_conditions": self.form.sign_conditions(self.direction), "sign_ok": self.sign_ok,
            "sign_violations": list(self.sign_violations), "warnings": [w.to_dict() for w in self.warnings],
            "conf": self.conf, "dropped": self.dropped,
            "bootstrap": None if self.boot is None else {
                "resamples": len(self.boot), "cluster": self.cluster, "clusters": self.n_clusters},
        })

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)


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
    conf: float = 0.95,
    seed: int = 0,
    drop_invalid: bool = False,
    mapping=None,
    group: dict[str, str] | None = None,
) -> FitResult:
    """Fit one law form to one table (or one group of it).

    Args:
        data: a path, DataFrame or :class:`LawData`.
        form: a form name (``complaw forms`` lists them; ``+1``/``+0`` toggles the intercept) or object.
        direction: ``higher`` or ``lower`` is better; default from a ``direction``/``metric`` column.
        unit: the D unit (name, scale, ε) the law sees; default raw samples with ε = 1.
        robust: minimise summed Huber loss of log residuals (several starts) instead of OLS.
        huber_delta: Huber threshold on log residuals.
        bootstrap: number of bootstrap resamples (0 for none).
        cluster: column whose values are resampled together (rows of one base model are not independent);
            rows are resampled individually when the column is absent.
        conf: confidence level of the intervals.
        seed: seed of the bootstrap and the robust starts.
        drop_invalid: set invalid rows aside (counted) instead of stopping at the first.
        mapping: column mapping when ``data`` is a path or DataFrame.
        group: the group this fit belongs to (for reports).
    """
    form = get_form(form)
    unit = unit or DUnit()
    ld: LawData = as_law_data(data, mapping=mapping)
    direction = form.direction_for(direction if direction is not None or form.fixed_direction else ld.direction())
    frame, dropped_here = ld.rows_for(form, drop_invalid=drop_invalid)
    dropped = {**ld.dropped, **dropped_here}
    y, X = form.design(frame, unit)
    n, p = X.shape
    if n < p + 1:
        raise ComplawError(
            f"{ld.source}{_group_text(group)}: {n} usable row(s) for form {form.name} with {p} parameters; "
            f"need at least {p + 1}"
        )
    if not (0 < conf < 1):
        raise ComplawError(f"--conf {conf}: must lie in (0, 1), e.g. 0.95")
    if bootstrap < 0:
        raise ComplawError(f"--bootstrap {bootstrap}: must be ≥ 0")
    if np.linalg.matrix_rank(X) < p:
        raise ComplawError(
            f"{ld.source}{_group_text(group)}: the design of {form.name} is rank-deficient "
            f"(a factor is constant or a copy of another); warnings: "
            + "; ".join(w.message for w in diagnose(form, frame, unit, X)[:2])
        )
    rng = np.random.default_rng(seed)
    names = form.param_names
    tq = stats.t.ppf(0.5 + conf / 2, n - p)
    cl = cluster if cluster and cluster in frame.columns else None
    groups = frame[cl].astype(str).to_numpy() if cl else np.arange(n)

    if robust:
        theta = huber_fit(X, y, delta=huber_delta, seed=seed)
        fvalue = f_pvalue = math.nan
    else:
        ols = sm.OLS(y, X).fit()
        theta = np.asarray(ols.params)
        ols_se = np.asarray(ols.bse)
        fvalue, f_pvalue = float(ols.fvalue) if p else math.nan, float(ols.f_pvalue) if p else math.nan
    boot = _bootstrap(X, y, groups, bootstrap, rng, "huber" if robust else "ols", huber_delta, theta) if bootstrap else None
    if robust:
        se = boot.std(axis=0, ddof=1) if boot is not None else np.full(p, math.nan)
    else:
        se = ols_se
    with np.errstate(divide="ignore", invalid="ignore"):
        tstat = theta / se
    pvals = 2 * stats.t.sf(np.abs(tstat), n - p)
    lo_q, hi_q = 100 * (0.5 - conf / 2), 100 * (0.5 + conf / 2)
    params = {}
    for j, name in enumerate(names):
        boot_ci = (float(np.percentile(boot[:, j], lo_q)), float(np.percentile(boot[:, j], hi_q))) if boot is not None else None
        ci = boot_ci if robust and boot_ci else (float(theta[j] - tq * se[j]), float(theta[j] + tq * se[j]))
        params[name] = Estimate(name, float(theta[j]), float(se[j]), ci, float(pvals[j]), boot_ci)

    resid = y - X @ theta
    ssr = float(resid @ resid)
    sst_c = float(((y - y.mean()) ** 2).sum())
    sst_u = float(y @ y)
    r2 = 1 - ssr / sst_c if sst_c > 0 else math.nan
    r2_u = 1 - ssr / sst_u if sst_u > 0 else math.nan
    dfr = n - p
    llf = -0.5 * n * (math.log(2 * math.pi * max(ssr, 1e-300) / n) + 1)
    target = frame[form.target].to_numpy(dtype=float)
    pred = np.exp(form.predict_log(theta, frame, unit))
    are = np.abs(pred - target) / np.abs(target)
    conds = form.sign_conditions(direction)
    violations = tuple(
        f"{k} = {params[k].estimate:.4g} should be {'> 0' if s > 0 else '< 0'}"
        for k, s in conds.items() if np.sign(params[k].estimate) != s
    )
    return FitResult(
        form=form, direction=direction, unit=unit, estimator="huber" if robust else "ols", params=params,
        n_obs=n, df_resid=dfr, r2=r2, r2_uncentred=r2_u,
        r2_adj=1 - (1 - r2) * (n - 1) / dfr if dfr > 0 else math.nan,
        r2_adj_uncentred=1 - (1 - r2_u) * n / dfr if dfr > 0 else math.nan,
        fvalue=fvalue, f_pvalue=f_pvalue, aic=-2 * llf + 2 * p, bic=-2 * llf + p * math.log(n),
        rmse=float(np.sqrt(np.mean((pred - target) ** 2))), mare=float(are.mean()),
        median_are=float(np.median(are)), max_are=float(are.max()), log_rmse=math.sqrt(ssr / n),
        smearing=float(np.mean(np.exp(resid))), condition_number=condition_number(X),
        warnings=tuple(diagnose(form, frame, unit, X)), sign_violations=violations, conf=conf,
        group=dict(group or {}), dropped=dropped, boot=boot, cluster=cl,
        n_clusters=int(len(np.unique(groups))) if cl else 0,
    )


def _group_text(group: dict[str, str] | None) -> str:
    return f" [{', '.join(f'{k}={v}' for k, v in group.items())}]" if group else ""


def default_groups(ld: LawData) -> list[str]:
    """Fit per (method, metric) by default, using whichever of the two columns exist."""
    return [c for c in ("method", "metric") if c in ld.frame.columns]


def fit_groups(
    data,
    forms: list[str | LawForm] | str = "sengupta2025",
    *,
    group: list[str] | None = None,
    mapping=None,
    **kwargs,
) -> list[FitResult]:
    """Fit every form to every group (default groups: method × metric). Returns one result per pair."""
    ld = as_law_data(data, mapping=mapping)
    forms = [forms] if isinstance(forms, (str, LawForm)) else list(forms)
    forms = [get_form(f) for f in forms]
    by = default_groups(ld) if group is None else group
    out = []
    for key, sub in ld.groups(by):
        for f in forms:
            out.append(fit(sub, f, group=key, **kwargs))
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
            "sign_ok": res.sign_ok, "warnings": len(res.warnings),
        })
        rows.append(row)
    return pd.DataFrame(rows)
