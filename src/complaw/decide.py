"""Decisions from a fitted law (paper §3.3, Theorem 3.1, Corollary 3.2).

Retention of a compressed model is ``L / L0^α`` for higher-is-better metrics and ``L0^α / L`` for
lower-is-better ones (for the pruning and talk laws, ``L / L0``; an intercept, where fitted, belongs to
it). Write the signed log-retention as ``k + u(r) + v(D)`` (compression part u decreasing in r,
recovery part v increasing in D when the sign conditions hold). A target σ is reachable at (r, D) iff
``k + u(r) + v(D) ≥ log σ``. Hence:

- the **critical ratio** r_crit solves ``k + u(r) + v(∞) = log σ``: beyond it no amount of RFT reaches σ;
  for the paper's law it is ``σ^(1/b) − 1``, and if that is ≥ 1 every r in (0, 1) is recoverable;
- the **minimum RFT data** at r solves ``v(D) = log σ − k − u(r)`` (0 if D = 0 already suffices,
  unreachable if even v(∞) falls short);
- the **speedup** at r from a speed law ``S = S0^a (1+r)^b`` is its own prediction ``S0 / S``, i.e.
  ``S0^(1−a) (1+r)^(−b)`` at the model's S0 (``(1+r)^(−b)`` when a = 1, and for the ``speed-ratio`` form
  ``S = S0 (1+r)^b`` that the report fits on one model's paired runtimes).

Every decision is computed for the point estimate and for each draw of the fit (bootstrap resamples, or
model-based draws when the fit's intervals are OLS ones), which gives its interval; the decision names the
kind. A decision that needs a parameter the table cannot identify (r_crit needs the r-exponent, D_min also
γ) is not computed: its regime is ``not-identifiable`` and its message gives the reason.

    >>> law = Law.from_params("sengupta2025", direction="higher", alpha=0.98, beta=-1.18, gamma=-0.14)
    >>> critical_ratio(law, 0.8).value        # ≈ 0.208
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from complaw.errors import ComplawError
from complaw.laws.fit import FitResult
from complaw.laws.forms import HIGHER, DUnit, LawForm, get_form


@dataclass(frozen=True, eq=False)
class Law:
    """A law with fixed parameters (a fit's estimates, or numbers from a paper), plus optional draws."""

    form: LawForm
    params: dict[str, float]
    direction: str
    unit: DUnit = field(default_factory=DUnit)
    boot: np.ndarray | None = None  # (B, p) in form.param_names order
    conf: float = 0.95
    unidentified: dict[str, str] = field(default_factory=dict)  # parameter → why the table cannot identify it
    interval_kind: str = "bootstrap"  # what the draws are (see complaw.laws.fit.INTERVAL_TEXT)
    interval_note: str = ""
    clusters: int = 0

    @classmethod
    def from_fit(cls, res: FitResult) -> Law:
        params = dict(zip(res.form.param_names, (float(v) for v in res.coef_vector), strict=True))
        return cls(res.form, params, res.direction, res.unit, res.boot, res.conf, dict(res.unidentified),
                   res.interval_kind, res.interval_note, res.n_clusters)

    def needs(self, decision: str) -> list[str]:
        """The parameters a decision reads: r_crit the r-exponent (and the level and the D → ∞ limit where
        they enter), D_min also the recovery exponent."""
        f = self.form
        out = []
        if f.intercept and f.has_base():
            out.append(f.intercept_name)
        comp, rec = f.term("compression"), f.term("recovery")
        if comp is not None:
            out.append(comp.param)
        if rec is not None and (decision != "r_crit" or rec.transform.at_inf(self.unit) != 0):
            out.append(rec.param)
        return out

    def not_identifiable(self, decision: str) -> str:
        """'' when the decision can be made; else "not identifiable from this table: <reason>"."""
        missing = [p for p in self.needs(decision) if p in self.unidentified]
        if not missing:
            return ""
        return "not identifiable from this table: " + "; ".join(f"{p}: {self.unidentified[p]}" for p in missing)

    def interval_info(self) -> dict[str, Any]:
        """What a decision's interval is made of (stored with the decision)."""
        return {"interval_kind": self.interval_kind if self.boot is not None else "none",
                "clusters": self.clusters, "interval_note": self.interval_note}

    @classmethod
    def from_params(cls, form: str | LawForm = "sengupta2025", *, direction: str | None = None,
                    unit: DUnit | None = None, **params: float) -> Law:
        form = get_form(form)
        direction = form.direction_for(direction)
        missing = [p for p in form.param_names if p not in params or params[p] is None]
        if missing:
            raise ComplawError(f"form {form.name}: parameter {missing[0]} not given (needs {', '.join(form.param_names)})")
        return cls(form, {p: float(params[p]) for p in form.param_names}, direction, unit or DUnit())

    def draws(self) -> list[dict[str, float]]:
        if self.boot is None:
            return []
        names = self.form.param_names
        return [dict(zip(names, row, strict=True)) for row in self.boot]

    # --- the signed log-retention k + u(r) + v(D) ------------------------------------------------------
    def _sign(self) -> int:
        return 1 if self.direction == HIGHER else -1

    def _k(self, th: dict[str, float]) -> float:
        f = self.form
        return self._sign() * th.get(f.intercept_name, 0.0) if f.intercept and f.has_base() else 0.0

    def _u(self, th, r) -> np.ndarray:
        t = self.form.term("compression")
        return self._sign() * th[t.param] * t.transform.fn(np.asarray(r, dtype=float), self.unit)

    def _v(self, th, D) -> np.ndarray:
        t = self.form.term("recovery")
        if t is None:
            return np.zeros_like(np.asarray(D, dtype=float))
        return self._sign() * th[t.param] * t.transform.fn(np.asarray(D, dtype=float), self.unit)

    def _v_inf(self, th) -> float:
        t = self.form.term("recovery")
        return 0.0 if t is None else self._sign() * th[t.param] * t.transform.at_inf(self.unit)

    def retention(self, r, D=0.0, th: dict[str, float] | None = None) -> np.ndarray:
        """Predicted retention (share of base performance kept) at ratio r and raw RFT data D."""
        th = th or self.params
        self._need("compression")
        return np.exp(self._k(th) + self._u(th, r) + self._v(th, D))

    def _need(self, role: str):
        if self.form.term(role) is None:
            raise ComplawError(f"form {self.form.name} has no {role} term; use a form with one (e.g. sengupta2025)")

    def violations(self, th: dict[str, float] | None = None) -> list[str]:
        """Sign conditions violated by the identifiable parameters (no verdict on the others)."""
        th = th or self.params
        conds = self.form.sign_conditions(self.direction)
        return [f"{p} = {th[p]:.4g} should be {'> 0' if s > 0 else '< 0'}" for p, s in conds.items()
                if p not in self.unidentified and np.sign(th[p]) != s]


@dataclass(frozen=True)
class Decision:
    """A decided quantity with its bootstrap interval and a plain-language reading."""

    name: str
    value: float
    interval: tuple[float, float] | None
    regime: str
    message: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        fin = lambda x: float(x) if x is not None and math.isfinite(x) else None  # noqa: E731
        return {"name": self.name, "value": fin(self.value),
                "interval": [fin(v) for v in self.interval] if self.interval else None,
                "regime": self.regime, "message": self.message, **self.extra}


def _interval(values: list[float], conf: float) -> tuple[float, float] | None:
    v = np.asarray([x for x in values if x is not None and not math.isnan(x)], dtype=float)
    if v.size == 0:
        return None
    lo, hi = 100 * (0.5 - conf / 2), 100 * (0.5 + conf / 2)
    return float(np.percentile(v, lo)), float(np.percentile(v, hi))


def _check_sigma(sigma: float) -> float:
    if not (0 < sigma < 1):
        raise ComplawError(f"--sigma {sigma}: the target retention must lie in (0, 1), e.g. 0.8")
    return float(sigma)


# --- critical ratio --------------------------------------------------------------------------------------
def _r_crit(law: Law, th: dict[str, float], sigma: float) -> tuple[float, str]:
    t = law.form.term("compression")
    if law.violations(th) or th[t.param] == 0:
        return math.nan, "infeasible"
    x = (math.log(sigma) - law._k(th) - law._v_inf(th)) / (law._sign() * th[t.param])
    r = t.transform.inverse(x, law.unit)
    if r >= 1:
        return r, "all-recoverable"
    if r <= 0:
        return r, "unreachable"
    return r, "critical"


def critical_ratio(law: Law, sigma: float) -> Decision:
    """The compression ratio beyond which no amount of RFT keeps retention ≥ σ (Theorem 3.1)."""
    sigma = _check_sigma(sigma)
    law._need("compression")
    if law.form.compression_effect != "harm":
        raise ComplawError(f"form {law.form.name}: compression does not lower its target; no critical ratio")
    why = law.not_identifiable("r_crit")
    if why:
        return Decision("r_crit", math.nan, None, "not-identifiable", why,
                        {"sigma": sigma, "draws": 0, "share_all_recoverable": None, **law.interval_info()})
    value, regime = _r_crit(law, law.params, sigma)
    draws = [_r_crit(law, th, sigma)[0] for th in law.draws()]
    rec = law.form.term("recovery")
    has_d = rec is not None
    rec_unknown = has_d and rec.param in law.unidentified
    if regime == "infeasible":
        msg = "the law violates its sign conditions (" + "; ".join(law.violations()) + "): no critical ratio"
    elif regime == "all-recoverable":
        msg = (f"σ = {sigma:g} is below the retention left at r → 1 with unlimited RFT: every r in (0, 1) "
               "is recoverable with enough RFT data (r_crit ≥ 1)")
    elif regime == "unreachable":
        msg = f"σ = {sigma:g} is out of reach even uncompressed with unlimited RFT"
    elif rec_unknown:
        msg = (f"beyond r = {value:.4f} retention stays below {sigma:g} even with unlimited RFT; whether RFT "
               f"reaches {sigma:g} below it is not identifiable from this table ({rec.param}: "
               f"{law.unidentified[rec.param]})")
    else:
        msg = (f"beyond r = {value:.4f} no amount of RFT reaches retention {sigma:g}; below it a finite D does"
               if has_d else f"beyond r = {value:.4f} retention falls below {sigma:g} (this form has no RFT term)")
    share = float(np.mean([d >= 1 for d in draws if not math.isnan(d)])) if draws else None
    return Decision("r_crit", value, _interval(draws, law.conf), regime, msg,
                    {"sigma": sigma, "draws": len(draws), "share_all_recoverable": share, **law.interval_info()})


# --- minimum RFT data --------------------------------------------------------------------------------------
def _d_min(law: Law, th: dict[str, float], r: float, sigma: float) -> tuple[float, str]:
    rec = law.form.term("recovery")
    if law.violations(th) or th[rec.param] == 0:
        return math.nan, "infeasible"
    need = math.log(sigma) - law._k(th) - float(law._u(th, r))
    if float(law._v(th, 0.0)) >= need:
        return 0.0, "no-rft-needed"
    if law._v_inf(th) <= need:
        return math.inf, "unreachable"
    x = need / (law._sign() * th[rec.param])
    return max(0.0, rec.transform.inverse(x, law.unit)), "finite"


def min_rft_data(law: Law, r: float, sigma: float) -> Decision:
    """The least RFT data (raw units of D) that keeps retention ≥ σ at ratio r (Corollary 3.2)."""
    sigma = _check_sigma(sigma)
    law._need("recovery")
    law._need("compression")
    if not (0 <= r < 1):
        raise ComplawError(f"--r {r}: the compression ratio must lie in [0, 1)")
    why = law.not_identifiable("D_min")
    if why:
        return Decision("D_min", math.nan, None, "not-identifiable", why,
                        {"r": r, "sigma": sigma, "unit": law.unit.name, "share_unreachable": None,
                         **law.interval_info()})
    value, regime = _d_min(law, law.params, r, sigma)
    draws = [_d_min(law, th, r, sigma)[0] for th in law.draws()]
    finite_draws = [d for d in draws if math.isfinite(d)]
    unit = law.unit.name
    msg = {
        "infeasible": "the law violates its sign conditions; no minimum D",
        "no-rft-needed": f"at r = {r:g} retention ≥ {sigma:g} without RFT",
        "unreachable": f"at r = {r:g} no amount of RFT reaches {sigma:g} (r ≥ r_crit)",
        "finite": f"at r = {r:g} RFT on at least {value:.4g} {unit} keeps retention ≥ {sigma:g}",
    }[regime]
    share_unreach = float(np.mean([not math.isfinite(d) for d in draws])) if draws else None
    return Decision("D_min", value, _interval(finite_draws, law.conf), regime, msg,
                    {"r": r, "sigma": sigma, "unit": unit, "share_unreachable": share_unreach, **law.interval_info()})


# --- speed ---------------------------------------------------------------------------------------------
def speed_law(b: float, a: float = 1.0) -> Law:
    """A speed law ``S = S0^a (1+r)^b`` from numbers (the talk's fit: a = 1.0, b = −0.67)."""
    return Law.from_params("speed", a=a, b=b)


def speedup_needs_s0(law: Law, th: dict[str, float] | None = None) -> bool:
    """Whether the law's speedup depends on the base runtime S0 (a base exponent a ≠ 1, or an intercept)."""
    th = law.params if th is None else th
    base = law.form.term("base")
    return (base is not None and abs(th[base.param] - 1.0) > 1e-12) or law.form.intercept


def speedup_at(law: Law, r: float, s0: float | None = None, th: dict[str, float] | None = None) -> float:
    """S(0)/S(r) predicted by the law (parameters ``th``, default its own) at base runtime ``s0``: S0 over the
    law's own prediction of S.

    For ``S = S0^a (1+r)^b`` that is ``S0^(1−a) (1+r)^(−b)`` (an intercept c adds ``e^(−c)``); with a = 1
    (and for the ``speed-ratio`` form) it is ``(1+r)^(−b)`` whatever S0 is."""
    th = law.params if th is None else th
    f = law.form
    t = f.term("compression")
    log_pred = th[t.param] * float(t.transform.fn(np.array([r]), law.unit)[0])
    if f.intercept:
        log_pred += th[f.intercept_name]
    base = f.term("base")
    if speedup_needs_s0(law, th):
        if s0 is None or not (math.isfinite(s0) and s0 > 0):
            raise ComplawError(f"speed law {f.name}: a = {th.get(base.param, 1.0) if base else 1.0:.4g} ≠ 1, so "
                               "the speedup depends on the base runtime; give S0 (--s0 SECONDS)")
        log_s0 = math.log(s0)
        if base is not None:
            log_pred += th[base.param] * log_s0 - log_s0  # a·log S0 − log S0: the offset S0 is divided out
    return math.exp(-log_pred)  # S(0) / S(r): runtimes are lower-is-better


def speedup(law: Law, r: float, s0: float | None = None) -> Decision:
    """Runtime speedup S(0)/S(r) at ratio r predicted by a speed law (at base runtime ``s0`` if it matters).

    A value below 1 is a slowdown and is reported as one."""
    if law.form.compression_effect != "help" or law.form.term("compression") is None:
        raise ComplawError(f"form {law.form.name} is not a speed law; fit or give one with form 'speed'")
    if not (0 <= r < 1):
        raise ComplawError(f"--r {r}: the compression ratio must lie in [0, 1)")
    why = law.not_identifiable("speedup")
    extra = {"r": r, "s0": s0 if speedup_needs_s0(law, law.params) else None}
    if why:
        return Decision("speedup", math.nan, None, "not-identifiable", why,
                        {**extra, "runtime_ratio": None, **law.interval_info()})
    value = speedup_at(law, r, s0)
    draws = [speedup_at(law, r, s0, th) for th in law.draws()]
    how = f"{value:.2f}× faster" if value >= 1 else f"{1 / value:.2f}× slower: a slowdown"
    at = f" at S0 = {s0:.4g} s" if extra["s0"] is not None else ""
    return Decision("speedup", value, _interval(draws, law.conf), "speed" if value >= 1 else "slowdown",
                    f"at r = {r:g}{at} runtime × {1 / value:.3f} ({how})",
                    {**extra, "runtime_ratio": 1 / value, **law.interval_info()})


# --- planning ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CostModel:
    """What a plan costs: RFT data, compressing, and serving the compressed model.

    total(r, D) = rft_price·D + compression_cost·[r > 0] + serving_volume·base_runtime_s·(S(r)/S(0))·price_per_s
    """

    rft_price: float = 1.0  # cost per raw unit of D
    compression_cost: float = 0.0  # paid once when r > 0
    serving_volume: float = 0.0  # requests (or tokens) served
    base_runtime_s: float = 1.0  # dense-model runtime per request (or token)
    price_per_s: float = 1.0  # serving cost per second of runtime

    def __post_init__(self):
        for name in ("rft_price", "compression_cost", "serving_volume", "base_runtime_s", "price_per_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ComplawError(f"cost model {name} = {v}: must be a finite number ≥ 0")

    def total(self, r, D, runtime_ratio) -> np.ndarray:
        r = np.asarray(r, dtype=float)
        return (self.rft_price * np.asarray(D, dtype=float) + self.compression_cost * (r > 0)
                + self.serving_volume * self.base_runtime_s * runtime_ratio * self.price_per_s)


@dataclass(frozen=True, eq=False)
class Plan:
    """The chosen (r, D), its predicted retention and cost, the Pareto frontier, and intervals."""

    mode: str  # "min-cost" (retention ≥ σ) or "max-retention" (cost ≤ budget)
    target: float
    optimum: dict[str, float] | None
    frontier: pd.DataFrame
    intervals: dict[str, tuple[float, float] | None]
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        fin = lambda x: float(x) if x is not None and math.isfinite(x) else None  # noqa: E731
        return {"mode": self.mode, "target": self.target,
                "optimum": {k: fin(v) for k, v in self.optimum.items()} if self.optimum else None,
                "intervals": {k: [fin(x) for x in v] if v else None for k, v in self.intervals.items()},
                "frontier": self.frontier.to_dict(orient="records"), "notes": list(self.notes)}


def _pareto(points: pd.DataFrame) -> pd.DataFrame:
    """Points not dominated in (lower cost, higher retention), by increasing cost."""
    pts = points.sort_values(["cost", "retention"], ascending=[True, False], kind="mergesort")
    best = -np.inf
    keep = []
    for i, ret in zip(pts.index, pts["retention"].to_numpy(), strict=True):
        if ret > best + 1e-12:
            keep.append(i)
            best = ret
    return pts.loc[keep].reset_index(drop=True)


def plan(law: Law, *, sigma: float | None = None, budget: float | None = None, cost: CostModel | None = None,
         speed: Law | None = None, r_max: float = 0.95, r_step: float = 0.01,
         d_max: float | None = None, d_points: int = 60) -> Plan:
    """Choose (r, D): minimise cost subject to retention ≥ σ, or maximise retention subject to a budget.

    Args:
        law: a law with compression (and ideally recovery) terms.
        sigma: target retention (min-cost mode). Exactly one of ``sigma`` and ``budget``.
        budget: cost budget (max-retention mode).
        cost: the cost model (default: D costs 1 per raw unit, nothing else).
        speed: a speed law; without it serving cost does not depend on r.
        r_max, r_step: the ratio grid.
        d_max, d_points: the D grid (raw units; default up to 1000 law units), log-spaced, plus 0 and,
            in min-cost mode, the exact minimum D at each ratio.
    """
    if (sigma is None) == (budget is None):
        raise ComplawError("plan: give exactly one of --sigma (minimise cost) or --budget (maximise retention)")
    if sigma is not None:
        _check_sigma(sigma)
    if budget is not None and not (math.isfinite(budget) and budget >= 0):
        raise ComplawError(f"--budget {budget}: must be a finite number ≥ 0")
    if not (0 < r_max < 1) or not (0 < r_step <= r_max):
        raise ComplawError(f"ratio grid r_max={r_max}, r_step={r_step}: need 0 < r_step ≤ r_max < 1")
    law._need("compression")
    cost = cost or CostModel()
    why = law.not_identifiable("D_min" if law.form.term("recovery") is not None else "r_crit")
    if why:
        return Plan("min-cost" if sigma is not None else "max-retention", sigma if sigma is not None else budget,
                    None, pd.DataFrame(columns=["r", "D", "runtime_ratio", "retention", "cost"]), {}, (why,))
    notes = []
    if speed is None and cost.serving_volume > 0:
        notes.append("no speed law given: serving cost is taken as independent of r")
    d_max = d_max if d_max is not None else 1000 * law.unit.scale
    has_d = law.form.term("recovery") is not None
    r_grid = np.round(np.arange(0.0, r_max + 1e-9, r_step), 10)
    d_grid = np.concatenate([[0.0], np.geomspace(d_max * 1e-4, d_max, d_points)]) if has_d else np.array([0.0])

    def runtime_ratio(r, th_speed):
        if speed is None:
            return np.ones_like(np.asarray(r, dtype=float))
        return 1.0 / np.array([speedup_at(speed, x, cost.base_runtime_s, th_speed) for x in np.atleast_1d(r)])

    rr_grid = runtime_ratio(r_grid, speed.params if speed else None)

    def solve(th: dict[str, float], rr: np.ndarray):
        R, Dg = np.meshgrid(r_grid, d_grid, indexing="ij")
        RR = np.broadcast_to(rr[:, None], R.shape)
        pts = [pd.DataFrame({"r": R.ravel(), "D": Dg.ravel(), "runtime_ratio": RR.ravel()})]
        if sigma is not None and has_d:
            extra = [(r, _d_min(law, th, r, sigma)[0], x) for r, x in zip(r_grid, rr, strict=True)]
            extra = [e for e in extra if math.isfinite(e[1])]
            if extra:
                pts.append(pd.DataFrame(extra, columns=["r", "D", "runtime_ratio"]))
        pts = pd.concat(pts, ignore_index=True)
        pts["retention"] = law.retention(pts["r"], pts["D"], th)
        pts["cost"] = cost.total(pts["r"], pts["D"], pts["runtime_ratio"])
        if sigma is not None:
            ok = pts[pts["retention"] >= sigma * (1 - 1e-9)]
            best = ok.loc[ok["cost"].idxmin()] if len(ok) else None
        else:
            ok = pts[pts["cost"] <= budget * (1 + 1e-12)]
            best = ok.sort_values(["retention", "cost"], ascending=[False, True]).iloc[0] if len(ok) else None
        return pts, best

    pts, best = solve(law.params, rr_grid)
    if law.violations():
        notes.append("the law violates its sign conditions: " + "; ".join(law.violations()))
    if best is None:
        notes.append("no plan on the grid meets the target" if sigma is not None else "every plan exceeds the budget")
    keys = ("r", "D", "cost", "retention", "runtime_ratio")
    optimum = {k: float(best[k]) for k in keys} if best is not None else None
    if optimum:
        optimum["speedup"] = 1.0 / optimum["runtime_ratio"]
    samples: dict[str, list[float]] = {k: [] for k in keys}
    speed_draws = speed.draws() if speed is not None and speed.boot is not None else []
    for i, th in enumerate(law.draws()):
        rr = runtime_ratio(r_grid, speed_draws[i % len(speed_draws)]) if speed_draws else rr_grid
        _, b = solve(th, rr)
        for k in keys:
            samples[k].append(float(b[k]) if b is not None else math.nan)
    intervals = {k: _interval(v, law.conf) for k, v in samples.items()} if law.boot is not None else {}
    return Plan("min-cost" if sigma is not None else "max-retention", sigma if sigma is not None else budget,
                optimum, _pareto(pts), intervals, tuple(notes))
