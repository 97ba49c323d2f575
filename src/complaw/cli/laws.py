"""CLI commands of the law engine: ``fit``, ``validate``, ``critical``, ``speedup``, ``plan``, ``forms``.

Each command is a plain typed function over the public API (:mod:`complaw.laws`, :mod:`complaw.decide`);
``--json`` prints machine-readable output instead of tables. Every table-reading command fits each group
on its own: a group that cannot be fitted is a row with its reason, the others are fitted, and the exit
code is 0 when at least one group was fitted (2 when none was, or with ``--strict`` when any failed).

The law engine (pandas; statsmodels, its OLS, only once a law is fitted) is imported inside the commands, so
``complaw forms``, ``complaw critical`` and ``complaw --help`` start without it, and no table command imports
torch or transformers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from complaw.checks import number
from complaw.cli.options import (
    MAX_EXPONENT,
    MAX_FRONTIER,
    MAX_PLAN_WORK,
    MIN_R_STEP,
    SCHEME_NAMES,
    BootOpt,
    ClusterOpt,
    DataArg,
    DirOpt,
    DropOpt,
    DScaleOpt,
    DUnitOpt,
    EpsOpt,
    FormOpt,
    GroupOpt,
    IntervalOpt,
    JsonOpt,
    MapOpt,
    PairsArg,
    RobustOpt,
    SeedOpt,
    SigmaOpt,
    StrictOpt,
    TableOpt,
    check_ratios,
    check_table_args,
    console,
    load_table,
)
from complaw.errors import ComplawError

if TYPE_CHECKING:
    from complaw.decide import Law
    from complaw.laws.data import LawData
    from complaw.laws.fit import FitFailure, FitResult

def _check_cluster(ld: LawData, cluster: str | None) -> str:
    """An explicit --cluster must name a column; the default is ``model`` (rows are resampled without it)."""
    if cluster is not None and cluster not in ld.frame.columns:
        raise ComplawError(f"--cluster {cluster!r}: no such column in {ld.source}; columns are "
                           f"{', '.join(map(str, ld.frame.columns))}")
    return cluster or "model"


def grouping(ld: LawData, group: str | None) -> list[str]:
    """The columns to fit one law per group by, as ``--group`` reads them (None: the default; 'none': pooled)."""
    from complaw.laws.fit import default_groups

    if group is None:
        return default_groups(ld)
    if group.strip().lower() in ("none", ""):
        return []
    return [g.strip() for g in group.split(",") if g.strip()]


def _fits(data, pairs, mapping, table, forms, group, direction, d_unit, d_scale, eps, robust, bootstrap,
          cluster, seed, drop_invalid, interval="auto") -> tuple[LawData, list[FitResult | FitFailure]]:
    """Every (group, form) fitted on its own: results and failures, in group order."""
    from complaw.laws.data import express_d
    from complaw.laws.forms import DUnit

    check_table_args(bootstrap=bootstrap, seed=seed, d_scale=d_scale, eps=eps)
    ld = express_d(load_table(data, pairs, mapping, table), d_unit)
    return fit_table(ld, forms, group, direction=direction,
                     unit=DUnit(d_unit, d_scale, eps), robust=robust, bootstrap=bootstrap, cluster=cluster, seed=seed,
                     drop_invalid=drop_invalid, interval=interval)


def fit_table(ld: LawData | Path, forms: list[str] | None = None, group: str | None = None, *,
              direction: str | None = None, unit=None, robust: bool = False, bootstrap: int = 1000,
              cluster: str | None = None, seed: int = 0, drop_invalid: bool = False,
              interval: str = "auto") -> tuple[LawData, list[FitResult | FitFailure]]:
    """Fit every (group, form) of a table on its own (``group`` as ``--group`` reads it); ``(table, items)``."""
    from complaw.laws.fit import fit_each
    from complaw.laws.forms import DUnit

    if not hasattr(ld, "frame"):
        ld = load_table(ld, None, None, None)
    cluster = _check_cluster(ld, cluster)
    items = fit_each(ld, forms or ["sengupta2025"], group=grouping(ld, group), direction=direction,
                     unit=unit or DUnit(), robust=robust, bootstrap=bootstrap, cluster=cluster,
                     seed=seed, drop_invalid=drop_invalid, interval=interval)
    return ld, items


def split_laws(ld: LawData, items) -> tuple[list[tuple[dict[str, str], Law]], list[FitFailure]]:
    """The fitted laws of ``items`` keyed by their group and form, and the failures."""
    from complaw.decide import Law

    results, failures = _split(ld, items)
    return [({**r.group, "form": r.form.name}, Law.from_fit(r)) for r in results], failures


def _split(ld: LawData, items) -> tuple[list[FitResult], list[FitFailure]]:
    """(results, failures); none fitted is the user's error (exit 2), naming the reason."""
    from complaw.laws.fit import FitFailure

    results = [x for x in items if not isinstance(x, FitFailure)]
    failures = [x for x in items if isinstance(x, FitFailure)]
    if not results:
        first = failures[0]
        where = f"{ld.source}{_bracket(first.group)}"
        if len(failures) == 1:
            raise ComplawError(f"{where}: {first.reason}")
        raise ComplawError(f"{ld.source}: none of {len(failures)} fits could be made; first, {_bracket(first.group)} "
                           f"{first.form}: {first.reason}".replace(",  ", ", "))
    return results, failures


def _strict(failures, strict: bool) -> None:
    if strict and failures:
        f = failures[0]
        raise ComplawError(f"--strict: {len(failures)} fit(s) could not be made; first, {_short(f.group)} "
                           f"{f.form}: {f.reason}")


def _bracket(g: dict[str, str]) -> str:
    return f" [{', '.join(f'{k}={v}' for k, v in g.items())}]" if g else ""


def _fmt(x, spec=".4g") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return format(x, spec)


def _ival(iv, spec=".4g") -> str:
    return f"[{_fmt(iv[0], spec)}, {_fmt(iv[1], spec)}]" if iv else ""


def _group_label(g: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in g.items()) or "all rows"


def _print_dropped(ld: LawData, results: list[FitResult]) -> None:
    dropped: dict[str, int] = dict(ld.dropped)
    for res in results:
        for k, v in res.dropped.items():
            if k not in ld.dropped:
                dropped[k] = dropped.get(k, 0) + v
    if dropped:
        console.print("rows set aside: " + ", ".join(f"{v} ({k})" for k, v in dropped.items()), style="yellow")


def _kind(res: FitResult) -> str:
    k = res.interval_kind
    if k == "cluster-bootstrap":
        return f"cluster ×{res.n_clusters}" + (" (rough)" if res.interval_note else "")
    return {"row-bootstrap": "rows", "ols": "OLS" + (" (bootstrap refused)" if res.interval_note else ""),
            "none": "–"}.get(k, k)


def render_fits(items) -> None:
    """Print a Table-1 style comparison of the fits (failed groups included, with their reason), then one
    table of all parameters, then every warning, each naming its group and form."""
    from complaw.laws.fit import FitFailure

    results = [x for x in items if not isinstance(x, FitFailure)]
    table = Table(title="Compression-law fits (log-space " + ("Huber" if any(r.estimator == "huber" for r in results)
                                                             else "OLS") + ")")
    for col in ("group", "form", "status", "n", "R² unc.", "R²", "adj. R²", "AIC", "MARE", "signs", "note"):
        table.add_column(col, justify="left" if col in ("group", "form", "status", "signs", "note") else "right")
    for item in items:
        if isinstance(item, FitFailure):
            table.add_row(_short(item.group), item.form, "[red]failed[/red]", str(item.n_rows), "–", "–", "–", "–",
                          "–", "–", item.reason)
            continue
        res = item
        status = "ok" if res.status == "ok" else "[yellow]unreliable[/yellow]"
        note = "; ".join(res.unreliable)
        if res.unidentified:
            note = "; ".join(filter(None, [note, "not identifiable: " + ", ".join(res.unidentified)]))
        signs = res.sign_text() if res.sign_ok else "[red]violated[/red]"
        table.add_row(_short(res.group), res.form.name, status, str(res.n_obs), _fmt(res.r2_uncentred, ".4f"),
                      _fmt(res.r2, ".4f"), _fmt(res.r2_adj, ".4f"), _fmt(res.aic, ".1f"), _fmt(res.mare, ".2%"),
                      signs, note)
    console.print(table)
    conf = int(results[0].conf * 100) if results else 95
    t = Table(title="Parameters")
    for col in ("group", "form", "param", "estimate", "std err", f"{conf}% CI (t)", "bootstrap CI", "intervals"):
        t.add_column(col, justify="left" if col in ("group", "form", "param", "intervals") else "right")
    for res in results:
        for i, e in enumerate(res.params.values()):
            last = i == len(res.params) - 1
            head = (_short(res.group) if i == 0 else "", res.form.name if i == 0 else "", e.name)
            if not e.identifiable:
                t.add_row(*head, "–", "–", "[yellow]not identifiable[/yellow]", "", _kind(res) if i == 0 else "",
                          end_section=last)
                continue
            ci = _ival(e.ci, ".3f") if res.estimator == "ols" else ""
            t.add_row(*head, _fmt(e.estimate, ".4f"), _fmt(e.se, ".4f"), ci, _ival(e.boot_ci, ".3f"),
                      _kind(res) if i == 0 else "", end_section=last)
    console.print(t)
    for item in items:
        where = f"[{_group_label(item.group)}] {item.form if isinstance(item, FitFailure) else item.form.name}"
        if isinstance(item, FitFailure):
            console.print(f"  {where}: not fitted: {item.reason}", style="red", highlight=False, markup=False)
            continue
        res = item
        if not res.sign_ok:
            console.print(f"  {where}: sign conditions ({res.form.describe_conditions(res.direction)}) violated: "
                          + "; ".join(res.sign_violations), style="red", highlight=False, markup=False)
        for name, why in res.unidentified.items():
            console.print(f"  {where}: {name} not identifiable: {why}", style="yellow", highlight=False, markup=False)
        for w in res.warnings:
            if w.code in _SAID_BY_UNIDENTIFIED and res.unidentified:
                continue  # the "not identifiable" line above says it
            console.print(f"  {where} warning [{w.code}]: {w.message}", style="yellow", highlight=False, markup=False)


#: Warnings that repeat what a "not identifiable" line already says.
_SAID_BY_UNIDENTIFIED = ("single-base", "single-D", "rank-deficient")


def _short(g: dict[str, str]) -> str:
    return "/".join(g.values()) or "all"


def forms_cmd(json_out: JsonOpt = False) -> None:
    """List the law forms: name, formula, parameters and sign conditions."""
    from complaw.laws.forms import available_forms

    rows = []
    for name, f in available_forms().items():
        conds = {d: f.describe_conditions(d) for d in (("lower",) if f.fixed_direction else ("higher", "lower"))}
        rows.append({"name": name, "formula": f.formula, "params": f.param_names, "intercept": f.intercept,
                     "columns": f.columns, "sign_conditions": conds, "reference": f.reference})
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="Law forms (append +1 for an intercept, +0 for none)")
    for col in ("name", "formula", "params", "needs", "sign conditions (higher / lower is better)"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["formula"], ", ".join(r["params"]), ", ".join(r["columns"]),
                      " / ".join(r["sign_conditions"].values()))
    console.print(table)


def fit_cmd(
    data: DataArg = None, pairs: PairsArg = None, mapping: MapOpt = None, form: FormOpt = None,
    group: GroupOpt = None, direction: DirOpt = None, table: TableOpt = None, d_unit: DUnitOpt = "samples",
    d_scale: DScaleOpt = 1.0, eps: EpsOpt = 1.0, robust: RobustOpt = False, bootstrap: BootOpt = 1000,
    cluster: ClusterOpt = None, interval: IntervalOpt = "auto", seed: SeedOpt = 0,
    drop_invalid: DropOpt = False, sigma: SigmaOpt = None,
    summary: Annotated[bool, typer.Option("--summary", help="Print the full text summary of every fit.")] = False,
    strict: StrictOpt = False, json_out: JsonOpt = False,
) -> None:
    """Fit compression laws to a results table, one per group, with intervals, diagnostics and a status per fit."""
    check_table_args(sigma=sigma)
    ld, items = _fits(data, pairs, mapping, table, form, group, direction, d_unit, d_scale, eps, robust,
                      bootstrap, cluster, seed, drop_invalid, interval)
    failures = show_fits(ld, items, sigma, summary=summary, json_out=json_out)
    _strict(failures, strict)


def show_fits(ld: LawData, items, sigma: list[float] | None, *, summary: bool = False,
              json_out: bool = False) -> list[FitFailure]:
    """Print fitted laws (with r_crit at each σ) as tables or JSON; returns the groups that could not be fitted."""
    from complaw.decide import Law, critical_ratio

    results, failures = _split(ld, items)
    decisions = [(res, critical_ratio(Law.from_fit(res), s)) for res in results for s in (sigma or [])
                 if res.form.term("compression") is not None and res.form.compression_effect == "harm"]
    if json_out:
        out = {"source": ld.source, "dropped": ld.dropped, "fits": [r.to_dict() for r in results],
               "failures": [f.to_dict() for f in failures],
               "critical": [{"form": r.form.name, "group": r.group, **d.to_dict()} for r, d in decisions]}
        typer.echo(json.dumps(out, indent=2))
        return failures
    render_fits(items)
    if summary:
        for res in results:
            console.print(res.summary(), highlight=False, markup=False)
    _render_critical(decisions)
    _print_dropped(ld, results)
    return failures


def _interval_label(d) -> str:
    kind = d.extra.get("interval_kind", "none")
    if kind == "cluster-bootstrap":
        return f"cluster ×{d.extra.get('clusters', 0)}" + (" (rough)" if d.extra.get("interval_note") else "")
    return {"row-bootstrap": "rows", "ols": "model-based (OLS)", "none": "–"}.get(kind, kind)


def _render_critical(decisions) -> None:
    if not decisions:
        return
    t = Table(title="Critical compression ratio")
    for col in ("group", "form", "σ", "r_crit", "interval", "interval kind", "reading"):
        t.add_column(col)
    for res, d in decisions:
        t.add_row(_short(res.group), res.form.name, _fmt(d.extra["sigma"]), _fmt(d.value, ".4f"),
                  _ival(d.interval, ".4f"), _interval_label(d) if d.interval else "", d.message)
    console.print(t)


def _skip_reason(scheme: str, by: list[str]) -> str:
    if scheme == "leave-one-method-out" and "method" in by:
        return ("each group holds one method (laws are fitted per method); to validate across methods, "
                "group by the metric only: --group metric (or --group none)")
    return ""


def validate_cmd(
    data: DataArg = None, pairs: PairsArg = None, mapping: MapOpt = None, form: FormOpt = None,
    scheme: Annotated[list[str] | None, typer.Option(
        "--scheme", help=f"Validation scheme(s): {', '.join(SCHEME_NAMES)} or all (default).")] = None,
    group: GroupOpt = None, direction: DirOpt = None, table: TableOpt = None, d_unit: DUnitOpt = "samples",
    d_scale: DScaleOpt = 1.0, eps: EpsOpt = 1.0, robust: RobustOpt = False, drop_invalid: DropOpt = False,
    strict: StrictOpt = False, json_out: JsonOpt = False,
) -> None:
    """Held-out validation: fit without a model / ratio / method (or the largest model) and predict it.

    A scheme that cannot run on a group (no model column, one ratio, one method per group, …) is listed with the reason; the command fails (exit 2) only when no scheme could run at all.
    """  # one line: typer keeps the line breaks of a help paragraph
    from complaw.laws.data import express_d
    from complaw.laws.forms import DUnit, get_form
    from complaw.laws.validate import SCHEMES

    check_table_args(d_scale=d_scale, eps=eps)
    ld = express_d(load_table(data, pairs, mapping, table), d_unit)
    for s in scheme or []:
        if s != "all" and s not in SCHEMES:
            raise ComplawError(f"--scheme {s!r}: unknown; use one of {', '.join(SCHEMES)} or all")
    schemes = list(SCHEMES) if not scheme or "all" in scheme else list(dict.fromkeys(scheme))
    forms = [get_form(f).name for f in form or ["sengupta2025"]]
    show_validations(ld, forms, schemes, grouping(ld, group), direction=direction, unit=DUnit(d_unit, d_scale, eps),
                     robust=robust, drop_invalid=drop_invalid, strict=strict, json_out=json_out)


def show_validations(ld: LawData, forms: list[str], schemes: list[str], by: list[str], *, direction: str | None = None,
                     unit=None, robust: bool = False, drop_invalid: bool = False, strict: bool = False,
                     json_out: bool = False) -> None:
    """Run every (group, form, scheme) validation that can run and print them (tables or JSON) with the skipped."""
    from complaw.laws.data import check_direction
    from complaw.laws.validate import validate

    groups = ld.groups(by)
    check_direction(ld, direction)
    out, skipped = [], []
    for key, sub in groups:
        for f in forms:
            for s in schemes:
                why = _skip_reason(s, by)
                if not why:
                    try:
                        out.append(validate(sub, f, s, direction=direction, group=key, unit=unit, robust=robust,
                                            drop_invalid=drop_invalid))
                        continue
                    except ComplawError as err:
                        why = _strip_where(str(err), ld.source)
                skipped.append({"group": key, "form": f, "scheme": s, "reason": why})
    if not out:
        first = skipped[0]
        raise ComplawError(f"{ld.source}{_bracket(first['group'])}: no validation could run; {first['scheme']}: "
                           f"{first['reason']}" + (f" (and {len(skipped) - 1} more scheme(s) skipped)"
                                                   if len(skipped) > 1 else ""))
    if json_out:
        typer.echo(json.dumps({"source": ld.source, "validations": [v.to_dict() for v in out], "skipped": skipped},
                              indent=2))
    else:
        t = Table(title="Held-out validation (absolute relative error on held-out rows)")
        for col in ("group", "form", "scheme", "folds", "held-out rows", "median", "max", "rating"):
            t.add_column(col)
        for v in out:
            color = {"good": "green", "usable": "yellow", "unreliable": "red"}.get(v.rating, "white")
            t.add_row(_short(v.group), v.form, v.scheme, str(len(v.folds)), str(v.n_test),
                      _fmt(v.median_are, ".2%"), _fmt(v.max_are, ".2%"), f"[{color}]{v.rating}[/{color}]")
        console.print(t)
        for v in out:
            for f in v.folds:
                if f.skipped:
                    console.print(f"  [{_group_label(v.group)}] {v.form} {v.scheme}: fold {f.held_out} skipped: "
                                  f"{_strip_where(f.skipped, ld.source)}", style="yellow", highlight=False, markup=False)
        for sk in skipped:
            console.print(f"  [{_group_label(sk['group'])}] {sk['form']}: scheme {sk['scheme']} not run: "
                          f"{sk['reason']}", style="yellow", highlight=False, markup=False)
    if strict and skipped:
        sk = skipped[0]
        raise ComplawError(f"--strict: {len(skipped)} validation(s) could not run; first, {_short(sk['group'])} "
                           f"{sk['scheme']}: {sk['reason']}")


def _strip_where(message: str, source: str) -> str:
    from complaw.laws.fit import without_source

    return without_source(message, source)


def _laws(data, pairs, mapping, table, form, group, direction, d_unit, d_scale, eps, robust, bootstrap, cluster,
          seed, drop_invalid, alpha, beta, gamma, interval="auto") -> tuple[list[tuple[dict[str, str], Law]], list]:
    """Laws from a table (fitted per group) or from parameters given on the command line; and the failures."""
    from complaw.decide import Law
    from complaw.laws.forms import DUnit

    if data is not None:
        ld, items = _fits(data, pairs, mapping, table, form or ["sengupta2025"], group, direction, d_unit,
                          d_scale, eps, robust, bootstrap, cluster, seed, drop_invalid, interval)
        return split_laws(ld, items)
    if beta is None:
        raise ComplawError("give a results table to fit, or the law's parameters (--alpha, --beta, --gamma)")
    # Without --gamma the law has no recovery term (Eq. 2, sengupta2025-L0-r): r_crit needs only beta, and a
    # gamma of 0 filled in here would be judged against the sign conditions as if the user had given it.
    name = (form or ["sengupta2025" if gamma is not None else "sengupta2025-L0-r"])[0]
    law = Law.from_params(name, direction=direction or "higher", unit=DUnit(d_unit, d_scale, eps),
                          alpha=alpha if alpha is not None else 1.0, beta=beta,
                          gamma=gamma if gamma is not None else 0.0)
    return [({"form": law.form.name}, law)], []


AlphaOpt = Annotated[float | None, typer.Option("--alpha", help="α (base-metric exponent), to skip fitting.")]
BetaOpt = Annotated[float | None, typer.Option("--beta", help="β (compression exponent), to skip fitting.")]
GammaOpt = Annotated[float | None, typer.Option("--gamma", help="γ (recovery exponent), to skip fitting.")]
SpeedBOpt = Annotated[float | None, typer.Option("--speed-b", help="Speed-law exponent b (talk: -0.67).")]


def critical_cmd(
    data: DataArg = None, pairs: PairsArg = None, sigma: SigmaOpt = None,
    r: Annotated[list[float] | None, typer.Option("--r", help="Ratio(s) at which to give the minimum RFT data.")] = None,
    alpha: AlphaOpt = None, beta: BetaOpt = None, gamma: GammaOpt = None, speed_b: SpeedBOpt = None,
    mapping: MapOpt = None, form: FormOpt = None, group: GroupOpt = None, direction: DirOpt = None,
    table: TableOpt = None, d_unit: DUnitOpt = "samples", d_scale: DScaleOpt = 1.0, eps: EpsOpt = 1.0,
    robust: RobustOpt = False, bootstrap: BootOpt = 1000, cluster: ClusterOpt = None,
    interval: IntervalOpt = "auto", seed: SeedOpt = 0, drop_invalid: DropOpt = False, strict: StrictOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Critical compression ratio r_crit(σ) and minimum RFT data D_min(r, σ), from a table or from parameters.

    A decision that needs a parameter the table cannot identify says so instead of giving a number.
    """

    check_table_args(d_scale=d_scale, eps=eps, sigma=sigma, alpha=alpha, beta=beta, gamma=gamma, speed_b=speed_b)
    check_ratios(r)
    laws, failures = _laws(data, pairs, mapping, table, form, group, direction, d_unit, d_scale, eps, robust,
                           bootstrap, cluster, seed, drop_invalid, alpha, beta, gamma, interval)
    failures = show_decisions(laws, failures, sigma or [0.8, 0.9], r, speed_b=speed_b, json_out=json_out)
    _strict(failures, strict)


def show_decisions(laws, failures, sigmas: list[float], r: list[float] | None, *, speed_b: float | None = None,
                   json_out: bool = False) -> list:
    """Print r_crit(σ), D_min(r, σ) (and speedups with ``speed_b``) of fitted laws; returns ``failures``."""
    from complaw.decide import critical_ratio, min_rft_data, speed_law, speedup

    rows = []
    for key, law in laws:
        for s in sigmas:
            rows.append({"group": key, **critical_ratio(law, s).to_dict()})
            for x in r or []:
                if law.form.term("recovery") is None:  # said once per law and ratio, not an error for the others
                    rows.append({"group": key, "name": "D_min", "value": None, "interval": None, "regime": "no-rft-term",
                                 "message": f"form {law.form.name} has no RFT term: no minimum RFT data", "r": x,
                                 "sigma": s})
                    continue
                rows.append({"group": key, **min_rft_data(law, x, s).to_dict()})
    for f in failures:
        rows.append({"group": {**f.group, "form": f.form}, "name": "fit", "value": None, "interval": None,
                     "regime": "not-fitted", "message": f"not fitted: {f.reason}"})
    speed = speed_law(speed_b) if speed_b is not None else None
    if speed is not None:
        rows += [{"group": {"form": "speed"}, **speedup(speed, x).to_dict()} for x in (r or [0.3, 0.6])]
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
        return failures
    t = Table(title="Decisions")
    for col in ("law", "decision", "σ", "r", "value", "interval", "interval kind", "reading"):
        t.add_column(col)
    for row in rows:
        value = row["value"]
        shown = "∞" if value is None and row["regime"] == "unreachable" else _fmt(value, ".4g")
        reading = row["message"]
        if row.get("share_unreachable"):
            reading += f" (unreachable in {row['share_unreachable']:.0%} of bootstrap draws)"
        kind = ""
        if row["interval"]:
            kind = {"cluster-bootstrap": f"cluster ×{row.get('clusters', 0)}"
                    + (" (rough)" if row.get("interval_note") else ""),
                    "row-bootstrap": "rows", "ols": "model-based (OLS)"}.get(row.get("interval_kind"), "")
        t.add_row(_short(row["group"]), row["name"], _fmt(row.get("sigma")), _fmt(row.get("r")), shown,
                  _ival(row["interval"]), kind, reading)
    console.print(t)
    return failures


def speedup_cmd(
    data: DataArg = None, pairs: PairsArg = None,
    r: Annotated[list[float] | None, typer.Option("--r", help="Ratio(s) to evaluate.")] = None,
    b: Annotated[float | None, typer.Option("--b", help="Speed-law exponent b, to skip fitting.")] = None,
    a: Annotated[float, typer.Option("--a", help="Speed-law exponent a of S0, with --b (1: speedup independent of S0).")] = 1.0,
    s0: Annotated[float | None, typer.Option(
        "--s0", help="Base runtime S0 (seconds) at which to predict, needed when a ≠ 1; default: each model's "
                     "median S0 in the table.")] = None,
    form: Annotated[str, typer.Option(
        "--form", help="Speed law to fit: 'speed' (S = S0^a (1+r)^b, the paper's) or 'speed-ratio' "
                       "(S = S0 (1+r)^b, a = 1: identifiable from one model's paired runtimes).")] = "speed",
    mapping: MapOpt = None, group: GroupOpt = None, table: TableOpt = None, bootstrap: BootOpt = 1000,
    cluster: ClusterOpt = None, interval: IntervalOpt = "auto", seed: SeedOpt = 0, drop_invalid: DropOpt = False,
    strict: StrictOpt = False, json_out: JsonOpt = False,
) -> None:
    """Expected speedup S0/S at given ratios: the speed law's own prediction (fitted from S, S0, r columns on one
    row per runtime measurement, or given with --b/--a). With a ≠ 1 it depends on S0 and is given per model."""
    from complaw.decide import speed_law

    if form.split("+")[0] not in ("speed", "speed-ratio"):
        raise ComplawError(f"--form {form!r}: not a speed law; use 'speed' or 'speed-ratio'")
    if s0 is not None and not (math.isfinite(s0) and s0 > 0):
        raise ComplawError(f"--s0 {s0}: the base runtime must be a finite number of seconds > 0")
    check_table_args(bootstrap=bootstrap, seed=seed)
    check_ratios(r)
    if b is not None:
        number(b, "--b", lo=-MAX_EXPONENT, hi=MAX_EXPONENT, hint="a speed-law exponent such as -0.67")
    number(a, "--a", lo=-MAX_EXPONENT, hi=MAX_EXPONENT, hint="1 unless the law was fitted with a ≠ 1")
    failures = []
    at: list[tuple[dict, Law, str, float | None]] = []  # (group, law, model, S0)
    if data is not None:
        at, failures = fitted_speed_laws(load_table(data, pairs, mapping, table), form, group, s0=s0,
                                         bootstrap=bootstrap, cluster=cluster, seed=seed, drop_invalid=drop_invalid,
                                         interval=interval)
    elif b is not None:
        law = speed_law(b, a)
        if _needs_base(law) and s0 is None:
            raise ComplawError(f"--a {a}: with a ≠ 1 the speedup depends on the base runtime; give --s0 SECONDS")
        at.append(({}, law, "", s0))
    else:
        raise ComplawError("give a results table with S, S0 and r columns, or the exponent with --b")
    show_speedups(at, failures, r or [0.1, 0.3, 0.5, 0.7, 0.9], ratio_form=form.startswith("speed-ratio"),
                  json_out=json_out)
    _strict(failures, strict)


def fitted_speed_laws(ld: LawData, form: str = "speed", group: str | None = None, *, s0: float | None = None,
                      bootstrap: int = 1000, cluster: str | None = None, seed: int = 0, drop_invalid: bool = False,
                      interval: str = "auto") -> tuple[list[tuple[dict, Law, str, float | None]], list]:
    """Speed laws fitted per group on the runtime rows of ``ld``: ([(group, law, model, S0)], failures), one entry
    per model where the speedup depends on S0 (a ≠ 1), else one per group at ``s0`` or the group's median S0."""
    from complaw.decide import Law
    from complaw.laws.data import LawData, runtime_rows
    from complaw.laws.fit import fit_each

    ld = LawData(runtime_rows(ld.frame), ld.source)
    cluster = _check_cluster(ld, cluster)
    by = [g for g in grouping(ld, group) if g != "metric"]
    items = fit_each(ld, form, group=by, bootstrap=bootstrap, cluster=cluster, seed=seed,
                     drop_invalid=drop_invalid, interval=interval)
    results, failures = _split(ld, items)
    at: list[tuple[dict, Law, str, float | None]] = []
    for res in results:
        law = Law.from_fit(res)
        rows = ld.frame
        for k, v in res.group.items():
            rows = rows[rows[k].astype(str) == str(v)]
        if s0 is not None or "model" not in rows.columns or not _needs_base(law):
            at.append((res.group, law, "", s0 if s0 is not None else _median(rows.get("S0"))))
        else:
            at += [(res.group, law, str(m), _median(sub["S0"])) for m, sub in rows.groupby("model", sort=False)]
    return at, failures


def show_speedups(at, failures, ratios: list[float], *, ratio_form: bool = False, json_out: bool = False) -> None:
    """Print the speedup S0/S of speed laws ``at`` = [(group, law, model, S0)] at ``ratios`` (tables or JSON)."""
    from complaw.decide import speedup

    rows = [{"group": g, "model": m or None, **speedup(law, x, base).to_dict(), "b": law.params["b"]}
            for g, law, m, base in at for x in ratios]
    rows += [{"group": f.group, "name": "speedup", "value": None, "interval": None, "regime": "not-fitted",
              "message": f"not fitted: {f.reason}", "b": None} for f in failures]
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
        return
    formula = "S = S0 (1+r)^b" if ratio_form else "S = S0^a (1+r)^b"
    t = Table(title=f"Speed law {formula}: speedup S0/S (< 1× is a slowdown)")
    for col in ("group", "model", "S0", "b", "r", "speedup", "interval", "runtime ×"):
        t.add_column(col, justify="right")
    for row in rows:
        head = (_short(row["group"]), row.get("model") or "", _fmt(row.get("s0")))
        if row["regime"] == "not-fitted":
            t.add_row(*head, "–", "–", "–", "", row["message"])
            continue
        if row["value"] is None:  # the table cannot identify b
            t.add_row(*head, "–", _fmt(row["r"]), "–", "", row["message"])
            continue
        slow = " (slower)" if row["value"] < 1 else ""
        t.add_row(*head, _fmt(row["b"], ".3f"), _fmt(row["r"]), f"{row['value']:.3f}×{slow}",
                  _ival(row["interval"], ".3f"), _fmt(row["runtime_ratio"], ".3f"))
    console.print(t)


def _needs_base(law) -> bool:
    from complaw.decide import speedup_needs_s0

    return speedup_needs_s0(law)


def _median(col) -> float | None:
    import pandas as pd

    if col is None:
        return None
    v = pd.to_numeric(col, errors="coerce").dropna()
    return float(v.median()) if len(v) else None


def plan_cmd(
    data: DataArg = None, pairs: PairsArg = None,
    sigma: Annotated[float | None, typer.Option("--sigma", "-s", help="Target retention: minimise cost.")] = None,
    budget: Annotated[float | None, typer.Option("--budget", help="Cost budget: maximise retention.")] = None,
    rft_price: Annotated[float, typer.Option(help="Cost per raw unit of D.")] = 1.0,
    compression_cost: Annotated[float, typer.Option(help="Cost of compressing (paid when r > 0).")] = 0.0,
    serving_volume: Annotated[float, typer.Option(help="Requests (or tokens) to be served.")] = 0.0,
    base_runtime_s: Annotated[float, typer.Option(help="Dense-model runtime per request, seconds.")] = 1.0,
    price_per_s: Annotated[float, typer.Option(help="Serving cost per second of runtime.")] = 1.0,
    speed_b: SpeedBOpt = None,
    r_max: Annotated[float, typer.Option(help="Largest ratio considered.")] = 0.95,
    r_step: Annotated[float, typer.Option(help=f"Ratio grid step ({MIN_R_STEP:g} … 0.5).")] = 0.01,
    d_max: Annotated[float | None, typer.Option(help="Largest D considered (raw units; default 1000 law units).")] = None,
    alpha: AlphaOpt = None, beta: BetaOpt = None, gamma: GammaOpt = None,
    mapping: MapOpt = None, form: FormOpt = None, group: GroupOpt = None, direction: DirOpt = None,
    table: TableOpt = None, d_unit: DUnitOpt = "samples", d_scale: DScaleOpt = 1.0, eps: EpsOpt = 1.0,
    robust: RobustOpt = False, bootstrap: BootOpt = 200, cluster: ClusterOpt = None,
    interval: IntervalOpt = "auto", seed: SeedOpt = 0, drop_invalid: DropOpt = False, strict: StrictOpt = False,
    frontier: Annotated[int, typer.Option(help=f"Frontier points to print (0: none; at most {MAX_FRONTIER}).")] = 12,
    json_out: JsonOpt = False,
) -> None:
    """Cheapest (r, D) that keeps retention ≥ σ, or the best retention within a budget, with the Pareto frontier."""
    import numpy as np

    from complaw.decide import CostModel, plan, speed_law

    check_table_args(d_scale=d_scale, eps=eps, sigma=sigma, alpha=alpha, beta=beta, gamma=gamma)
    for name, value in (("--budget", budget), ("--rft-price", rft_price), ("--compression-cost", compression_cost),
                        ("--serving-volume", serving_volume), ("--base-runtime-s", base_runtime_s),
                        ("--price-per-s", price_per_s), ("--d-max", d_max)):
        if value is not None:
            number(value, name, lo=0)
    if speed_b is not None:
        number(speed_b, "--speed-b", lo=-MAX_EXPONENT, hi=MAX_EXPONENT, hint="a speed-law exponent such as -0.67")
    number(r_max, "--r-max", lo=0, hi=1, lo_open=True, hi_open=True, hint="e.g. 0.95")
    number(r_step, "--r-step", lo=MIN_R_STEP, hi=0.5, hint=f"the ratio grid step, {MIN_R_STEP:g} … 0.5")
    number(frontier, "--frontier", lo=0, hi=MAX_FRONTIER, integer=True, hint="frontier points to print")
    ratios = int(r_max / r_step) + 1
    if data is not None and bootstrap * ratios > MAX_PLAN_WORK:
        raise ComplawError(f"--bootstrap {bootstrap} with --r-step {r_step:g}: {bootstrap:,} draws × {ratios:,} ratios "
                           f"is {bootstrap * ratios:,} plan evaluations per group, at most {MAX_PLAN_WORK:,} (about "
                           "20 s); lower --bootstrap or raise --r-step")
    laws, failures = _laws(data, pairs, mapping, table, form, group, direction, d_unit, d_scale, eps, robust,
                           bootstrap, cluster, seed, drop_invalid, alpha, beta, gamma, interval)
    cost = CostModel(rft_price, compression_cost, serving_volume, base_runtime_s, price_per_s)
    speed = speed_law(speed_b) if speed_b is not None else None
    plans = [(key, plan(law, sigma=sigma, budget=budget, cost=cost, speed=speed,
                                               r_max=r_max, r_step=r_step, d_max=d_max)) for key, law in laws]
    if json_out:
        typer.echo(json.dumps([{"group": k, **p.to_dict()} for k, p in plans]
                              + [{"group": {**f.group, "form": f.form}, "status": "failed", "reason": f.reason}
                                 for f in failures], indent=2, default=float))
        _strict(failures, strict)
        return
    for key, p in plans:
        t = Table(title=f"Plan ({p.mode}, target {p.target:g}) — {_group_label(key)}")
        for col in ("", "r", "D", "retention", "cost", "speedup"):
            t.add_column(col, justify="right")
        if p.optimum:
            o = p.optimum
            t.add_row("optimum", _fmt(o["r"], ".2f"), _fmt(o["D"]), _fmt(o["retention"], ".4f"), _fmt(o["cost"]),
                      f"{o['speedup']:.3f}×")
            if p.intervals:
                iv = p.intervals
                t.add_row("interval", _ival(iv.get("r"), ".2f"), _ival(iv.get("D")), _ival(iv.get("retention"), ".4f"),
                          _ival(iv.get("cost")), "")
        console.print(t)
        for n in p.notes:
            console.print("  note: " + n, style="yellow")
        if frontier and len(p.frontier):
            f = Table(title="Pareto frontier (cost vs retention)")
            for col in ("r", "D", "retention", "cost"):
                f.add_column(col, justify="right")
            idx = sorted(set(int(i) for i in
                             np.linspace(0, len(p.frontier) - 1, min(frontier, len(p.frontier)))))
            for i in idx:
                row = p.frontier.iloc[i]
                f.add_row(_fmt(row["r"], ".2f"), _fmt(row["D"]), _fmt(row["retention"], ".4f"), _fmt(row["cost"]))
            console.print(f)
    for f in failures:
        console.print(f"  [{_group_label(f.group)}] {f.form}: not fitted: {f.reason}", style="red", highlight=False, markup=False)
    _strict(failures, strict)
