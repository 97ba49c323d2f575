"""The numbers behind a compression-law report: fits, validation, decisions and speed laws per group.

Everything here is computed from a results table in the law engine's canonical columns and kept in plain
immutable records; :mod:`complaw.report.figures` draws them and :mod:`complaw.report.render` writes them.
A fit that cannot be made (too few rows, a rank-deficient design, an unknown direction) is recorded with
its one-line reason instead of stopping the report.

    >>> a = analyse(load_results("results.csv"), failures=pd.DataFrame(), unit=DUnit("M-tokens"))
    >>> a.groups[0].best_form, a.groups[0].r_crit[0.8].value

Identifiability drives what is reported: the best form is the one with the lowest AIC among the forms
whose every parameter the table identifies (a form with an unidentified parameter only wins when no form
is fully identified), and a decision that needs an unidentified parameter is "not identifiable from this
table" instead of a number (no D_min at all from a table without RFT rows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from complaw.decide import Decision, Law, critical_ratio, min_rft_data, speedup, speedup_at
from complaw.errors import ComplawError
from complaw.laws import SCHEMES, DUnit, FitResult, LawData, ValidationResult, fit, validate
from complaw.laws.data import check_direction, runtime_rows, unit_interval_metric
from complaw.laws.fit import default_groups
from complaw.report.captions import DECISION_FORM, DEFAULT_FORMS

#: The decision law of a table without a D column: the paper's law without its RFT factor (Eq. 2).
DECISION_FALLBACK = "sengupta2025-L0-r"

#: The per-model law behind the critical-ratio-vs-size figure: v1 with α·log L0 absorbed in an intercept.
PER_MODEL_FORM = "sengupta2025-r-D+1"
PER_MODEL_FALLBACK = "sengupta2025-r+1"  # when a model's rows have a single D
#: The speed law the report fits: S = S0 (1+r)^b, so that the speedup S0/S = (1+r)^(-b) is the law's own
#: prediction whatever S0 is (the paper's S = S0^a (1+r)^b with a free a is not identified by one model).
SPEED_FORM = "speed-ratio"
#: Ratios at which the speed law's speedup is reported.
SPEEDUP_RATIOS = (0.3, 0.5, 0.7)
#: Ratio grid of the minimum-RFT-data curves.
D_MIN_GRID = tuple(np.round(np.arange(0.0, 0.951, 0.05), 2))
#: Status values that mean the experiment succeeded (as in the law engine's loader).
SUCCESS = ("success", "ok", "done", "")
#: Errors a single fit may raise that the report records instead of stopping.
FIT_ERRORS = (ComplawError, np.linalg.LinAlgError)
#: How the best form is chosen (stated in the report).
BEST_CRITERION = "lowest AIC among the forms whose parameters are all identifiable"
#: Units of the N column: name → parameters per unit.
N_UNITS = {"parameters": 1.0, "params": 1.0, "K": 1e3, "thousands": 1e3, "M": 1e6, "millions": 1e6,
           "B": 1e9, "billions": 1e9, "T": 1e12}


@dataclass(frozen=True)
class NUnit:
    """The unit of the model-size column ``N``: ``N × scale`` is the number of parameters.

    >>> NUnit.parse("B").params(6.7)      # 6.7e9
    """

    name: str = "parameters"
    scale: float = 1.0

    @classmethod
    def parse(cls, text: str | None) -> NUnit:
        if text is None:
            return cls()
        key = str(text).strip()
        scale = N_UNITS.get(key, N_UNITS.get(key.lower()))
        if scale is None:
            raise ComplawError(f"--n-unit {text!r}: unknown unit of N; use parameters (default), K, M or B "
                               "(billions of parameters)")
        return cls("parameters" if scale == 1 else key, scale)

    def params(self, n):
        """N in parameters."""
        return np.asarray(n, dtype=float) * self.scale if np.ndim(n) else float(n) * self.scale


def group_label(key: dict[str, str]) -> str:
    """``prunenet / avg_acc`` (``all rows`` for an ungrouped table)."""
    return " / ".join(str(v) for v in key.values()) or "all rows"


def succeeded(frame: pd.DataFrame) -> np.ndarray:
    """Boolean mask of the rows whose ``status`` says the experiment succeeded (all rows if no status)."""
    if "status" not in frame.columns:
        return np.ones(len(frame), dtype=bool)
    return frame["status"].fillna("").astype(str).str.strip().str.lower().isin(SUCCESS).to_numpy()


def model_order(frame: pd.DataFrame) -> list[str]:
    """Base models ordered by size (``N``), else by base metric, else by name."""
    if "model" not in frame.columns or frame.empty:
        return []
    f = frame.assign(model=frame["model"].astype(str))
    for col in ("N", "S0", "L0"):
        if col in f.columns:
            size = pd.to_numeric(f[col], errors="coerce").groupby(f["model"]).median()
            if size.notna().all():
                return [str(m) for m in sorted(size.index, key=lambda m: (size[m], m))]
    return sorted(f["model"].unique())


@dataclass(frozen=True, eq=False)
class GroupAnalysis:
    """Fits, validation and decisions of one (method, metric) group.

    Attributes:
        key: the group, e.g. ``{"method": "prunenet", "metric": "avg_acc"}``.
        frame: the group's successful rows (law columns as in the table).
        n_failed: rows of this group whose experiment failed (not in ``frame``).
        fits: form name → fit, for the forms that could be fitted.
        fit_errors: form name → why it could not be fitted.
        best_form: the fitted form with the lowest AIC (None if none was fitted).
        validation: held-out validation results, one per (form, scheme) that could run.
        validation_skipped: ``(form, scheme, reason)`` for schemes the data cannot support.
        decision_fit: the fit the decisions come from (``sengupta2025``), or None.
        decision_error: why there are no decisions, if there are none.
        d_min_error: why there is no minimum-RFT-data curve (e.g. γ not identifiable without RFT rows).
        r_crit: σ → critical ratio (with bootstrap interval).
        d_min: one record per (σ, r) of the minimum RFT data curve.
        per_model: one record per (model, σ): a per-model critical ratio (see :data:`PER_MODEL_FORM`).
    """

    key: dict[str, str]
    frame: pd.DataFrame
    n_failed: int
    fits: dict[str, FitResult]
    fit_errors: dict[str, str]
    best_form: str | None
    validation: tuple[ValidationResult, ...]
    validation_skipped: tuple[tuple[str, str, str], ...]
    decision_fit: FitResult | None
    decision_error: str
    r_crit: dict[float, Decision]
    d_min: tuple[dict, ...]
    per_model: tuple[dict, ...]
    d_min_error: str = ""

    @property
    def label(self) -> str:
        return group_label(self.key)

    @property
    def has_rft(self) -> bool:
        """Whether the group has rows with recovery fine-tuning (D > 0) next to rows without."""
        if "D" not in self.frame.columns:
            return False
        d = pd.to_numeric(self.frame["D"], errors="coerce")
        return bool((d > 0).any()) and d.nunique() > 1

    @property
    def best(self) -> FitResult | None:
        return self.fits.get(self.best_form) if self.best_form else None

    @property
    def direction(self) -> str | None:
        fits = list(self.fits.values())
        return fits[0].direction if fits else None

    def excluded(self, form: str) -> dict[str, int]:
        """Rows this group's fit of ``form`` did not use, by reason (failed experiments, invalid cells)."""
        out = {"failed experiments": self.n_failed} if self.n_failed else {}
        res = self.fits.get(form)
        if res is not None:
            out.update({k: v for k, v in res.dropped.items() if k != "status is not success"})
        return out

    def best_validation(self, form: str | None = None) -> ValidationResult | None:
        """The validation of ``form`` (default the best form) with the worst median error: the honest one."""
        form = form or self.best_form
        runs = [v for v in self.validation if v.form == form and math.isfinite(v.median_are)]
        return max(runs, key=lambda v: v.median_are) if runs else None


@dataclass(frozen=True, eq=False)
class SpeedAnalysis:
    """The speed law of one method, fitted on one row per distinct runtime measurement.

    The report fits :data:`SPEED_FORM` (``S = S0 (1+r)^b``: the speedup ``S0/S = (1+r)^(−b)``), which one
    model's paired runtimes identify; every speedup it prints is that law's prediction, and ``table`` puts
    each measured speedup beside the prediction at its own S0 and the 95% prediction interval."""

    key: dict[str, str]
    frame: pd.DataFrame  # one row per runtime measurement (model, method, r, S, S0)
    fit: FitResult | None
    error: str
    speedups: dict[float, Decision]
    table: pd.DataFrame = field(default_factory=pd.DataFrame)  # measured vs predicted per measurement
    band_note: str = ""  # what the prediction band is made of
    n_noisy: int = 0  # measurements marked noisy, left out of the fit

    @property
    def label(self) -> str:
        return group_label(self.key)

    @property
    def form(self) -> str:
        return self.fit.form.name if self.fit is not None else SPEED_FORM


@dataclass(frozen=True, eq=False)
class Analysis:
    """All numbers of a report."""

    source: str
    unit: DUnit
    sigmas: tuple[float, ...]
    forms: tuple[str, ...]
    n_rows: int  # every row of the table, failed ones included
    n_success: int
    failures: pd.DataFrame  # the failed rows, with an ``error`` column
    groups: tuple[GroupAnalysis, ...]
    speed: tuple[SpeedAnalysis, ...]
    models: tuple[str, ...]  # base models ordered by size
    notes: tuple[str, ...] = field(default=())
    n_unit: NUnit = field(default_factory=NUnit)

    def speed_for(self, key: dict[str, str]) -> SpeedAnalysis | None:
        """The speed law of a (method, metric) group's method."""
        for s in self.speed:
            if all(key.get(k) == v for k, v in s.key.items()):
                return s
        return None


def _reason(err: Exception) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text


def _count_failed(failures: pd.DataFrame, key: dict[str, str]) -> int:
    if failures.empty:
        return 0
    mask = np.ones(len(failures), dtype=bool)
    for col, val in key.items():
        if col in failures.columns:
            mask &= failures[col].astype(str).to_numpy() == val
    return int(mask.sum())


def _fit_forms(sub: LawData, key, forms, unit, bootstrap, seed, direction=None, interval="auto", weights="none"):
    fits, errors = {}, {}
    for name in forms:
        try:
            fits[name] = fit(sub, name, unit=unit, bootstrap=bootstrap, seed=seed, drop_invalid=True, group=key,
                             direction=direction, interval=interval, weights=weights)
        except FIT_ERRORS as err:
            errors[name] = _strip(_reason(err), sub.source)
    return fits, errors


def _strip(reason: str, source: str) -> str:
    from complaw.laws.fit import without_source

    return without_source(reason, source)


def best_form(fits: dict[str, FitResult]) -> str | None:
    """The form with the lowest AIC among those whose parameters are all identifiable (see
    :data:`BEST_CRITERION`); a form with an unidentified parameter only when none is fully identified."""
    if not fits:
        return None
    return min(fits, key=lambda f: (bool(fits[f].unidentified), fits[f].aic))


def _validate(sub: LawData, key, forms, unit, fits, direction=None, weights="none"):
    runs, skipped = [], []
    for name in forms:
        if name not in fits:
            continue  # None, or a form that could not be fitted at all
        for scheme in SCHEMES:
            if scheme == "leave-one-method-out" and "method" in key:
                continue  # each group holds one method
            try:
                runs.append(validate(sub, name, scheme, group=key, unit=unit, drop_invalid=True,
                                     direction=direction, weights=weights))
            except FIT_ERRORS as err:
                skipped.append((name, scheme, _strip(_reason(err), sub.source)))
    return tuple(runs), tuple(skipped)


def _decisions(res: FitResult, sigmas):
    """(r_crit per σ, D_min records, why there is no D_min curve)."""
    law = Law.from_fit(res)
    r_crit = {s: critical_ratio(law, s) for s in sigmas}
    d_min = []
    if res.form.term("recovery") is None:
        return r_crit, (), f"the decision law {res.form.name} has no RFT term"
    why = law.not_identifiable("D_min")
    if why:
        return r_crit, (), why
    for s in sigmas:
        for r in D_MIN_GRID:
            d = min_rft_data(law, float(r), s)
            d_min.append({"sigma": s, "r": float(r), "value": d.value, "interval": d.interval,
                          "regime": d.regime, "share_unreachable": d.extra.get("share_unreachable"),
                          "interval_kind": d.extra.get("interval_kind")})
    return r_crit, tuple(d_min), ""


def d_min_curve(res: FitResult, sigma: float, ratios) -> np.ndarray:
    """D_min(r, σ) of a fit's point estimate on a ratio grid (no intervals: cheap enough for a fine grid);
    ``nan`` where no amount of RFT reaches σ (or where the table cannot identify it)."""
    full = Law.from_fit(res)
    law = Law(res.form, full.params, res.direction, res.unit, unidentified=full.unidentified)  # no draws
    values = [min_rft_data(law, float(r), sigma).value for r in ratios]
    return np.array([v if math.isfinite(v) else math.nan for v in values])


def _per_model(sub: LawData, direction: str, sigmas, unit, bootstrap, seed):
    """Critical ratio of each base model, from the v1 law refitted to that model's rows alone."""
    if "model" not in sub.frame.columns:
        return ()
    out = []
    for model in model_order(sub.frame):
        rows = LawData(sub.frame[sub.frame["model"].astype(str) == model].reset_index(drop=True), sub.source)
        n_size = float(pd.to_numeric(rows.frame["N"], errors="coerce").median()) if "N" in rows.frame else math.nan
        res, reason = None, ""
        for form in (PER_MODEL_FORM, PER_MODEL_FALLBACK):
            try:
                # One model is one cluster: resample its rows instead.
                got = fit(rows, form, direction=direction, unit=unit, bootstrap=bootstrap, cluster=None,
                          seed=seed, drop_invalid=True)
            except FIT_ERRORS as err:
                reason = _reason(err)
                continue
            res = res or got
            if not got.unidentified:  # e.g. a model with one D: its RFT term is not identifiable, drop it
                res = got
                break
        for s in sigmas:
            rec = {"model": model, "N": n_size, "sigma": s, "form": res.form.name if res else None}
            if res is None:
                rec.update({"value": math.nan, "interval": None, "regime": "not-fitted",
                            "reason": _strip(reason, sub.source)})
            else:
                d = critical_ratio(Law.from_fit(res), s)
                rec.update({"value": d.value, "interval": d.interval, "regime": d.regime,
                            "interval_kind": d.extra.get("interval_kind"),
                            "reason": d.message if d.regime == "not-identifiable" else "",
                            "beta": res.params[res.form.term("compression").param].estimate, "r2": res.r2})
            out.append(rec)
    return tuple(out)


def analyse_group(sub: LawData, key: dict[str, str], *, n_failed: int, forms, sigmas, unit: DUnit,
                  bootstrap: int, seed: int = 0, decision_form: str = DECISION_FORM,
                  direction: str | None = None, interval: str = "auto", weights: str = "auto") -> GroupAnalysis:
    """Fit, validate and decide for one (method, metric) group, recording whatever cannot be done."""
    fits, errors = _fit_forms(sub, key, forms, unit, bootstrap, seed, direction, interval, weights)
    best = best_form(fits)
    # Held-out validation of the forms the report leans on (the best one and the decision law): each
    # scheme refits the law once per fold, so validating every form would multiply the cost.
    validation, skipped = _validate(sub, key, dict.fromkeys([best, decision_form]), unit, fits, direction, weights)
    dec_fit, dec_error, r_crit, d_min, per_model, d_min_error = fits.get(decision_form), "", {}, (), (), ""
    if dec_fit is None:
        if decision_form in errors:
            dec_error = errors[decision_form]
        else:  # not among the compared forms: fit it for the decisions alone
            more, err = _fit_forms(sub, key, [decision_form], unit, bootstrap, seed, direction, interval)
            dec_fit, dec_error = more.get(decision_form), err.get(decision_form, "")
    if dec_fit is not None:
        r_crit, d_min, d_min_error = _decisions(dec_fit, sigmas)
        per_model = _per_model(sub, dec_fit.direction, sigmas, unit, bootstrap, seed)
    else:
        d_min_error = dec_error
    return GroupAnalysis(key, sub.frame, n_failed, fits, errors, best, validation, skipped, dec_fit,
                         dec_error, r_crit, d_min, per_model, d_min_error)


def _log_speedups(law: Law, th_list, r: float, s0: float) -> np.ndarray:
    return np.log([speedup_at(law, r, s0, th) for th in th_list])


def speed_prediction(res: FitResult, r, s0, conf: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(predicted speedup, lower, upper) at ratios ``r`` and base runtimes ``s0``: the law's own S0/S and its
    prediction interval for one new measurement, exp(log pred ± t·sqrt(var_param + s²)), var_param from the
    fit's draws and s² the residual variance in log space."""
    from scipy import stats

    law = Law.from_fit(res)
    r = np.atleast_1d(np.asarray(r, dtype=float))
    s0 = np.broadcast_to(np.asarray(s0, dtype=float), r.shape)
    pred = np.array([_log_speedups(law, [law.params], x, y)[0] for x, y in zip(r, s0, strict=True)])
    draws = law.draws()
    var_p = (np.array([np.var(_log_speedups(law, draws, x, y), ddof=1) for x, y in zip(r, s0, strict=True)])
             if len(draws) > 1 else np.zeros_like(r))
    dfr = res.df_resid
    s2 = res.log_rmse ** 2 * res.n_obs / dfr if dfr > 0 else 0.0
    q = stats.t.ppf(0.5 + conf / 2, dfr) if dfr > 0 else stats.norm.ppf(0.5 + conf / 2)
    half = q * np.sqrt(var_p + s2)
    return np.exp(pred), np.exp(pred - half), np.exp(pred + half)


def _band_note(res: FitResult) -> str:
    parts = "the fit's " + ("bootstrap" if res.interval_kind.endswith("bootstrap") else "model-based") + " draws"
    if res.df_resid > 0:
        return f"95% prediction interval: {parts} plus the residual scatter (t, {res.df_resid} df)"
    return f"95% interval from {parts} only: no residual degrees of freedom to estimate the scatter"


def speed_table(res: FitResult, rows: pd.DataFrame) -> pd.DataFrame:
    """Each measurement's speedup S0/S beside the law's prediction at its S0 and r, with the prediction interval."""
    ok = rows.dropna(subset=["S", "S0", "r"])
    ok = ok[(ok["S"] > 0) & (ok["S0"] > 0)]
    pred, lo, hi = speed_prediction(res, ok["r"].to_numpy(), ok["S0"].to_numpy(), res.conf)
    out = pd.DataFrame({c: ok[c].to_numpy() for c in ("model", "r", "S0", "S") if c in ok.columns})
    out["noisy"] = (pd.to_numeric(ok["noisy"], errors="coerce").fillna(0) > 0).to_numpy() \
        if "noisy" in ok.columns else False
    if "S_ideal_speedup" in ok.columns:
        out["flop_ideal"] = pd.to_numeric(ok["S_ideal_speedup"], errors="coerce").to_numpy()
    out["measured"] = (ok["S0"] / ok["S"]).to_numpy()
    out["predicted"], out["lo"], out["hi"] = pred, lo, hi
    out["inside"] = (out["measured"] >= lo * (1 - 1e-9)) & (out["measured"] <= hi * (1 + 1e-9))
    return out.sort_values([c for c in ("model", "r") if c in out.columns]).reset_index(drop=True)


def analyse_speed(ld: LawData, *, bootstrap: int, seed: int = 0, ratios=SPEEDUP_RATIOS,
                  form: str = SPEED_FORM, include_noisy: bool = False) -> tuple[SpeedAnalysis, ...]:
    """The speed law per method (default form ``speed-ratio``) on one row per runtime measurement, with its
    speedups at ``ratios`` and the measured-vs-predicted table. Measurements marked ``noisy`` (their
    per-round speedups spread beyond the bound) are shown in the table but left out of the fit unless
    ``include_noisy``."""
    missing = [c for c in ("S", "S0", "r") if c not in ld.frame.columns]
    by = ["method"] if "method" in ld.frame.columns else []
    out = []
    for key, sub in ld.groups(by):
        rows = runtime_rows(sub.frame)
        if missing:
            out.append(SpeedAnalysis(key, rows, None, f"no runtime column(s) {', '.join(missing)} in the table", {}))
            continue
        noisy = (pd.to_numeric(rows["noisy"], errors="coerce").fillna(0) > 0).to_numpy() \
            if "noisy" in rows.columns and include_noisy is False else np.zeros(len(rows), dtype=bool)
        used = rows.loc[~noisy].reset_index(drop=True)
        left = f"; {int(noisy.sum())} noisy measurement(s) left out of the fit" if noisy.any() else ""
        try:
            res = fit(LawData(used, ld.source), form, unit=DUnit(), bootstrap=bootstrap, seed=seed,
                      drop_invalid=True, group=key)
        except FIT_ERRORS as err:
            out.append(SpeedAnalysis(key, rows, None, _reason(err) + left, {}))
            continue
        law = Law.from_fit(res)
        s0 = float(np.median(pd.to_numeric(used["S0"], errors="coerce").dropna())) if "S0" in used else None
        dec = {float(r): speedup(law, float(r), s0) for r in ratios}
        table = speed_table(res, rows)
        out.append(SpeedAnalysis(key, used, res, "", dec, table, _band_note(res) + left, int(noisy.sum())))
    return tuple(out)


def analyse(ld: LawData | None, *, failures: pd.DataFrame, n_rows: int, excluded: pd.DataFrame | None = None,
            forms=DEFAULT_FORMS,
            sigmas=(0.8, 0.9), unit: DUnit | None = None, bootstrap: int = 200, seed: int = 0,
            decision_form: str = DECISION_FORM, source: str = "table", direction: str | None = None,
            group: list[str] | None = None, n_unit: NUnit | None = None, interval: str = "auto",
            weights: str = "auto") -> Analysis:
    """Every number of the report, per (method, metric) group and per method (speed).

    Args:
        ld: the successful rows (None when every experiment failed).
        failures: the failed rows (any columns; ``error`` holds the text when known).
        excluded: rows set aside on purpose (status ``excluded``: a task at ceiling or floor for its base
            model, left out of the average); each is named in the notes with its reason.
        n_rows: rows in the table, failed ones included.
        direction: the metric direction for every group (default: the direction column or metric names).
        group: columns to fit one law per group (default: method and metric).
        n_unit: the unit of the N column.
        interval: the interval kind of every fit (``auto``, ``cluster``, ``rows``, ``ols``; see
            :func:`complaw.laws.fit.fit`).
        weights: row weights of the law fits: ``auto`` (inverse-variance from ``L_se``/``L0_se`` where every
            row of a group has them — lm-eval accuracies — else OLS), ``inverse-variance`` or ``none``.
    """
    unit = unit or DUnit()
    n_unit = n_unit or NUnit()
    forms = tuple(forms)
    if not forms:
        raise ComplawError("report: no law forms given; use e.g. sengupta2025")
    for s in sigmas:
        if not (0 < s < 1):
            raise ComplawError(f"--sigma {s}: the target retention must lie in (0, 1), e.g. 0.8")
    if bootstrap < 0:
        raise ComplawError(f"--bootstrap {bootstrap}: must be ≥ 0")
    from complaw.laws.fit import INTERVALS

    if interval not in INTERVALS:
        raise ComplawError(f"--interval {interval!r}: unknown; use one of {', '.join(INTERVALS)}")
    notes = _excluded_notes(excluded)
    groups, speed, models = [], (), ()
    if ld is None:
        notes.append("every experiment failed: nothing to fit")
    else:
        check_direction(ld, direction)
        if decision_form == DECISION_FORM and "D" not in ld.frame.columns:
            decision_form = DECISION_FALLBACK
            notes.append(f"the table has no recovery-data column D: decisions come from {DECISION_FALLBACK} "
                         "(the paper's law without its RFT factor), and there is no minimum RFT data")
        models = tuple(model_order(ld.frame))
        by = default_groups(ld) if group is None else list(group)
        for key, sub in ld.groups(by):
            groups.append(analyse_group(sub, key, n_failed=_count_failed(failures, key), forms=forms,
                                        sigmas=tuple(sigmas), unit=unit, bootstrap=bootstrap, seed=seed,
                                        decision_form=decision_form, direction=direction, interval=interval,
                                        weights=weights))
        speed = analyse_speed(ld, bootstrap=bootstrap, seed=seed)
        notes += _n_notes(ld.frame, n_unit) + _ceiling_notes(ld.frame)
    n_success = len(ld.frame) if ld is not None else 0
    return Analysis(source, unit, tuple(sigmas), forms, n_rows, n_success, failures, tuple(groups),
                    speed, models, tuple(notes), n_unit)


def _excluded_notes(excluded: pd.DataFrame | None) -> list[str]:
    """One note per (metric, model) the store left out: a task at ceiling or floor for the base model."""
    if excluded is None or excluded.empty:
        return []
    cols = [c for c in ("metric", "model", "error") if c in excluded.columns]
    out = []
    for _, row in excluded[cols].drop_duplicates().iterrows():
        what = f"{row.get('metric', '?')} on {row.get('model', '?')}"
        why = str(row.get("error") or "set aside").split(": ", 1)[-1]
        out.append(f"{what} excluded from the average and from every fit: {why}")
    return out


def _ceiling_notes(frame: pd.DataFrame) -> list[str]:
    """A higher-is-better metric whose base value is 1 (or 0) for a model: at ceiling (floor), log L0 carries
    nothing and the task cannot register compression until it falls off. Named, since a table brought by a
    user has no ``excluded`` rows."""
    if not {"L0", "metric", "model"} <= set(frame.columns):
        return []
    f = frame.assign(L0=pd.to_numeric(frame["L0"], errors="coerce"))
    if "direction" in f.columns:
        f = f[f["direction"].astype(str).str.lower().str.startswith("h")]
    out = []
    for (metric, model), sub in f.groupby(["metric", "model"], sort=True):
        v = sub["L0"].dropna()
        if len(v) and (v >= 1 - 1e-9).all() and unit_interval_metric(sub, str(metric)):
            out.append(f"{metric} on {model}: the base model is at ceiling (L0 = 1); its rows cannot show the "
                       "effect of compression until it falls off, and leave the base exponent unidentified")
    return out


def _n_notes(frame: pd.DataFrame, n_unit: NUnit) -> list[str]:
    """A model size that reads like billions under the default unit of parameters is almost surely a slip."""
    if "N" not in frame.columns or n_unit.scale != 1:
        return []
    n = pd.to_numeric(frame["N"], errors="coerce").dropna()
    if len(n) and n.max() < 1e4:
        return [f"model sizes N are at most {float(n.max()):g} parameters; if they are in billions, pass --n-unit B "
                "(or --n-unit M for millions)"]
    return []
