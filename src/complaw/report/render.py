"""Writing a report: ``report.json`` (numbers), ``summary.md`` (key numbers) and ``index.html`` (everything).

The HTML is self-contained: inline CSS, no scripts, images by relative path, tables as HTML tables.

    >>> data = to_dict(analysis, figures, title="…")
    >>> Path("report.json").write_text(json.dumps(data)); Path("index.html").write_text(html(data, analysis))
"""

from __future__ import annotations

import html as _html
import math
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from complaw.report.analysis import BEST_CRITERION, Analysis, GroupAnalysis
from complaw.report.captions import CAPTIONS

FAILURE_COLUMNS = ("model", "method", "metric", "r", "D", "status", "config_hash", "error")


# --- JSON ------------------------------------------------------------------------------------------------
def clean(obj):
    """JSON-ready: NaN/inf → None, numpy scalars → Python, tuples → lists, keys → strings."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return clean(obj.tolist())
    if isinstance(obj, np.generic):
        return clean(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj


def failures_records(a: Analysis, limit: int | None = None) -> list[dict]:
    f = a.failures
    if f.empty:
        return []
    cols = [c for c in FAILURE_COLUMNS if c in f.columns]
    out = f[cols].head(limit) if limit else f[cols]
    recs = out.astype(object).where(out.notna(), None).to_dict(orient="records")
    for r in recs:
        if not r.get("error"):
            r["error"] = "(no error text recorded)"
    return recs


def group_dict(g: GroupAnalysis, a: Analysis) -> dict[str, Any]:
    best_v = g.best_validation()
    speed = a.speed_for(g.key)
    return {
        "group": g.key, "label": g.label, "n_rows": len(g.frame), "n_failed": g.n_failed,
        "direction": g.direction, "best_form": g.best_form, "best_form_criterion": BEST_CRITERION,
        "fit_status": {name: (g.fits[name].status if name in g.fits else "failed" if name in g.fit_errors
                              else "not fitted") for name in dict.fromkeys([*a.forms, *g.fits, *g.fit_errors])},
        "fits": {name: res.to_dict() for name, res in g.fits.items()},
        "weighting": g.best.weighting if g.best is not None else None,
        "fit_errors": g.fit_errors,
        "excluded": {name: g.excluded(name) for name in g.fits},
        "validation": [v.to_dict() for v in g.validation],
        "validation_skipped": [{"form": f, "scheme": s, "reason": r} for f, s, r in g.validation_skipped],
        "best_validation": best_v.to_dict() if best_v else None,
        "decision_form": g.decision_fit.form.name if g.decision_fit else None,
        "decision_error": g.decision_error,
        "r_crit": {f"{s:g}": d.to_dict() for s, d in g.r_crit.items()},
        "d_min": list(g.d_min), "d_min_error": g.d_min_error,
        "per_model_r_crit": list(g.per_model),
        "speedup": {f"{r:g}": d.to_dict() for r, d in speed.speedups.items()} if speed else {},
    }


def to_dict(a: Analysis, figures: dict, figure_errors: dict, *, title: str,
            figure_notes: dict | None = None) -> dict[str, Any]:
    """Every number of the report, JSON-ready."""
    return clean({
        "title": title, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": a.source, "n_rows": a.n_rows, "n_success": a.n_success, "n_failed": len(a.failures),
        "d_unit": {"name": a.unit.name, "scale": a.unit.scale, "eps": a.unit.eps},
        "forms": list(a.forms), "sigmas": list(a.sigmas), "models": list(a.models),
        "n_unit": {"name": a.n_unit.name, "scale": a.n_unit.scale},
        "groups": [group_dict(g, a) for g in a.groups],
        "speed": [{"group": s.key, "label": s.label, "form": s.form, "n_rows": len(s.frame), "error": s.error,
                   "fit": s.fit.to_dict() if s.fit else None,
                   "speedup": {f"{r:g}": d.to_dict() for r, d in s.speedups.items()},
                   "measured_vs_predicted": s.table.to_dict(orient="records"), "band": s.band_note}
                  for s in a.speed],
        "failures": failures_records(a),
        "figures": {k: f"figures/{p.name}" for k, p in figures.items()},
        "figure_errors": figure_errors, "figure_notes": dict(figure_notes or {}), "notes": list(a.notes),
    })


# --- formatting ------------------------------------------------------------------------------------------
def fmt(x, spec: str = ".4g") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return format(x, spec)


def ival(iv, spec: str = ".3g") -> str:
    return f"[{fmt(iv[0], spec)}, {fmt(iv[1], spec)}]" if iv else ""


def pct(x) -> str:
    return fmt(x, ".1%")


def rcrit_text(d, spec=".3f") -> str:
    if d is None:
        return "–"
    if d.regime == "critical":
        return f"{fmt(d.value, spec)} {ival(d.interval, spec)}".strip()
    return {"all-recoverable": "≥ 1 (all r recoverable)", "unreachable": "unreachable",
            "infeasible": "– (sign conditions violated)",
            "not-identifiable": "not identifiable"}.get(d.regime, d.regime)


def interval_text(kind: str | None, clusters: int = 0, note: str = "") -> str:
    """``cluster bootstrap (5 clusters, rough)``, ``row bootstrap``, ``model-based (OLS)``."""
    if kind == "cluster-bootstrap":
        return f"cluster bootstrap ({clusters} clusters{', rough' if note else ''})"
    return {"row-bootstrap": "row bootstrap", "ols": "model-based (OLS)"}.get(kind or "", "none")


def params_text(res, spec=".3g") -> str:
    """``alpha = 0.98 [0.95, 1.01]; gamma not identifiable`` (interval kind: see :func:`interval_text`)."""
    parts = []
    for e in res.params.values():
        if not e.identifiable:
            parts.append(f"{e.name} not identifiable")
            continue
        parts.append(f"{e.name} = {fmt(e.estimate, spec)} {ival(e.interval, spec)}".strip())
    return "; ".join(parts)


def status_text(res) -> str:
    """``ok``, or ``unreliable: …``; with the parameters the table cannot identify."""
    out = res.status + (": " + "; ".join(res.unreliable) if res.unreliable else "")
    if res.unidentified:
        out += "; not identifiable: " + "; ".join(f"{k} ({v})" for k, v in res.unidentified.items())
    return out


def _cell(x) -> str:
    if x is None:
        return ""
    return fmt(x) if isinstance(x, float) else str(x)


def excluded_text(ex: dict[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in ex.items()) if ex else "none"


# --- Markdown --------------------------------------------------------------------------------------------
SPEED_TEXT = ("Per method, the speed law S = S0 (1+r)^b fitted on one row per runtime measurement (a unit's "
              "runtime is copied onto every D and metric and counted once). Every speedup printed is the law's "
              "own prediction S0/S = (1+r)^(-b); below 1× it is a slowdown. Intervals of the law: its fit's "
              "draws; the per-measurement table gives the 95% prediction interval of one measurement.")


def weighting_text(a: Analysis) -> str:
    """Whether the law fits were weighted, per group (the best form's weighting; every form of a group is
    weighted alike)."""
    by: dict[str, list[str]] = {}
    for g in a.groups:
        if g.best is not None:
            by.setdefault(g.best.weighting, []).append(g.label)
    if not by:
        return ""
    parts = [f"{how}: {', '.join(labels)}" for how, labels in by.items()]
    return "Weighting of the law fits — " + "; ".join(parts) + "."


def speed_law_rows(a: Analysis) -> tuple[list[str], list[list[str]]]:
    """The speed-law table: method, measurements, form, b, R², speedup at each ratio, note."""
    ratios = sorted({r for s in a.speed for r in s.speedups})
    rows = []
    for s in a.speed:
        if s.fit is None:
            rows.append([s.label, str(len(s.frame)), s.form, "–", "–"] + ["–"] * len(ratios) + [s.error])
            continue
        b = s.fit.params["b"]
        cells = []
        for r in ratios:
            d = s.speedups.get(r)
            ok = d is not None and math.isfinite(d.value)
            cells.append(f"{d.value:.3f}× {ival(d.interval, '.3f')}" + (" slowdown" if d.value < 1 else "")
                         if ok else "–")
        fitted = s.table[~s.table["noisy"]] if len(s.table) else s.table
        inside = int(fitted["inside"].sum()) if len(fitted) else 0
        note = f"{inside} of {len(fitted)} measurements inside the prediction band"
        if s.n_noisy:
            note += f"; {s.n_noisy} noisy, not fitted"
        rows.append([s.label, str(s.fit.n_obs), s.fit.form.formula, f"{fmt(b.estimate, '.3f')} {ival(b.boot_ci or b.ci, '.3f')}",
                     fmt(s.fit.r2, ".3f")] + cells + [note])
    return ["method", "measurements", "law", "b", "R²"] + [f"speedup r={r:g}" for r in ratios] + ["note"], rows


def speed_point_rows(a: Analysis) -> tuple[list[str], list[list[str]]]:
    """One row per runtime measurement: measured S0/S, the law's prediction at its S0, the prediction interval."""
    rows = []
    for s in a.speed:
        for t in s.table.itertuples(index=False):
            ideal = getattr(t, "flop_ideal", math.nan)
            rows.append([s.label, str(getattr(t, "model", "")), f"{t.r:g}", f"{t.S0 * 1e3:.3g} ms", f"{t.S * 1e3:.3g} ms",
                         f"{t.measured:.3f}×", f"{t.predicted:.3f}×", f"[{t.lo:.3f}, {t.hi:.3f}]",
                         "yes" if t.inside else "no", f"{ideal:.3f}×" if ideal == ideal else "–",
                         "noisy (not fitted)" if t.noisy else ""])
    return ["method", "model", "r", "S0", "S", "measured", "predicted", "95% prediction interval", "inside",
            "FLOP-ideal", "note"], rows


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(esc(c) for c in r) + " |" for r in rows]


def markdown(data: dict, a: Analysis) -> str:
    """``summary.md``: the key numbers per group."""
    sig = a.sigmas
    lines = [f"# {data['title']}", "",
             f"Source: `{a.source}` — {a.n_rows} rows, {a.n_success} succeeded, {len(a.failures)} failed"
             + (f", {a.n_rows - a.n_success - len(a.failures)} set aside (tasks at ceiling or floor, named in the notes)"
                if a.n_rows - a.n_success - len(a.failures) > 0 else "") + ". "
             f"D unit: {a.unit.name} (scale {a.unit.scale:g}, ε {a.unit.eps:g}). Forms compared: "
             + ", ".join(f"`{f}`" for f in a.forms) + ".", ""]
    if weighting_text(a):
        lines += [weighting_text(a), ""]
    for n in a.notes:
        lines += [f"> {n}", ""]
    rows = []
    for g in a.groups:
        best, v = g.best, g.best_validation()
        sp = a.speed_for(g.key)
        sp05 = sp.speedups.get(0.5) if sp else None
        rows.append([g.label, g.best_form or "–", best.status if best else "failed",
                     fmt(best.r2, ".3f") if best else "–",
                     f"{pct(v.median_are)} / {pct(v.max_are)} ({v.rating})" if v else "–"]
                    + [rcrit_text(g.r_crit.get(s)) for s in sig]
                    + [f"{sp05.value:.2f}×" if sp05 else "–"])
    lines += ["## Key numbers", "", f"Best form: the {BEST_CRITERION}.", ""]
    lines += _md_table(["group", "best form", "status", "R²", "held-out error median / max"]
                       + [f"r_crit σ={s:g}" for s in sig] + ["speedup r=0.5"], rows)
    lines.append("")
    for g in a.groups:
        lines += [f"## {g.label}", ""]
        fitted = ", ".join(f"`{f}`" for f in g.fits) or "none (no form could be fitted)"
        lines.append(f"- rows: {len(g.frame)} successful experiment rows; forms fitted: {fitted}"
                     + (f"; {g.n_failed} failed experiments excluded" if g.n_failed else ""))
        if g.best is not None:
            b = g.best
            lines.append(f"- best form ({BEST_CRITERION}): `{b.form.name}` ({b.form.formula}); "
                         f"status {status_text(b)}; R² {b.r2:.4f} (centred), "
                         f"{b.r2_uncentred:.4f} (uncentred); mean |rel. err.| {pct(b.mare)}; "
                         f"sign conditions {b.sign_text() if b.sign_ok else 'VIOLATED: ' + '; '.join(b.sign_violations)}")
            lines.append(f"- parameters ({int(b.conf * 100)}% {interval_text(b.interval_kind, b.n_clusters, b.interval_note)} "
                         f"interval): {params_text(b)}")
        for name, res in g.fits.items():
            if res.status != "ok" or res.unidentified:
                lines.append(f"- `{name}` [{g.label}] status: {status_text(res)}")
            for w in res.warnings:
                if res.unidentified and w.code in ("single-base", "single-D", "rank-deficient"):
                    continue  # the status line says it
                lines.append(f"- warning `{name}` [{g.label}] ({w.code}): {w.message}")
        for form, why in g.fit_errors.items():
            lines.append(f"- `{form}` [{g.label}] not fitted: {why}")
        for v in g.validation:
            lines.append(f"- validation `{v.form}` {v.scheme}: median {pct(v.median_are)}, max {pct(v.max_are)} "
                         f"({v.rating}; {len(v.folds)} fold(s), {v.n_test} held-out rows)")
        for form, scheme, why in g.validation_skipped:
            lines.append(f"- validation `{form}` {scheme} skipped: {why}")
        if g.r_crit:
            for s, d in g.r_crit.items():
                kind = (f" ({interval_text(d.extra.get('interval_kind'), d.extra.get('clusters', 0), d.extra.get('interval_note', ''))}"
                        " interval)") if d.interval else ""
                lines.append(f"- r_crit(σ = {s:g}) from `{g.decision_fit.form.name}`: {rcrit_text(d, '.4f')}{kind} — "
                             f"{d.message}")
        else:
            lines.append(f"- r_crit: not available ({g.decision_error or 'no decision law'})")
        if g.d_min_error:
            lines.append(f"- D_min: none — {g.d_min_error}")
        sp = a.speed_for(g.key)
        if sp and sp.speedups:
            lines.append("- speedup (speed law of " + sp.label + "): " + ", ".join(
                f"r = {r:g}: {d.value:.3f}× {ival(d.interval, '.3f')}" for r, d in sp.speedups.items()))
        lines.append("")
    lines += ["## Speed laws", "", SPEED_TEXT, ""]
    head, srows = speed_law_rows(a)
    lines += _md_table(head, srows)
    head, prows = speed_point_rows(a)
    if prows:
        lines += ["", "Measured vs predicted speedup per runtime measurement:", ""] + _md_table(head, prows)
    lines += ["", "## Failures", ""]
    if a.failures.empty:
        lines.append("No failed experiments.")
    else:
        lines.append(f"{len(a.failures)} experiment row(s) failed and were excluded from every fit:")
        lines.append("")
        recs = failures_records(a, limit=50)
        cols = list(recs[0])
        lines += _md_table(cols, [[_cell(r[c]) for c in cols] for r in recs])
        if len(a.failures) > 50:
            lines.append(f"\n… and {len(a.failures) - 50} more (see report.json).")
    lines += ["", "Figures and full tables: [index.html](index.html); numbers: [report.json](report.json).", ""]
    return "\n".join(lines)


# --- HTML ------------------------------------------------------------------------------------------------
CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #bbb; }
table { border-collapse: collapse; margin: .8em 0 1.4em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; vertical-align: top; }
th { background: #f0f0f0; } td.l, th.l { text-align: left; }
tr:nth-child(even) td { background: #fafafa; }
.bad { color: #b00; font-weight: 600; } .warn { color: #a60; } .good { color: #060; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 13px; color: #444; max-width: 1000px; }
nav a { margin-right: 1em; } code { background: #f4f4f4; padding: 0 3px; }
.small { font-size: 12px; color: #555; }
"""


def esc(x) -> str:
    return _html.escape(str(x))


def _table(header: list[str], rows: list[list], left: int = 1, raw: bool = False) -> str:
    """An HTML table; the first ``left`` columns are left-aligned; cells are escaped unless ``raw``."""
    th = "".join(f'<th class="{"l" if i < left else ""}">{esc(h)}</th>' for i, h in enumerate(header))
    body = []
    for r in rows:
        cells = "".join(f'<td class="{"l" if i < left else ""}">{c if raw else esc(c)}</td>' for i, c in enumerate(r))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _rating(v) -> str:
    cls = {"good": "good", "usable": "warn", "unreliable": "bad"}.get(v.rating, "")
    return f'<span class="{cls}">{esc(v.rating)}</span>'


def html(data: dict, a: Analysis) -> str:
    """``index.html``: summary, figures, comparison, validation, decisions, speed laws, failures."""
    out = _html_header(data, a)
    out += _html_summary(a)
    out += _html_figures(data)
    out += _html_comparison(a)
    out += _html_validation(a)
    out += _html_decisions(a)
    out += _html_d_min(a)
    out += _html_speed(a)
    out += _html_failures(a)
    out.append("<p class='small'>Written by complaw report.</p></body></html>")
    return "\n".join(out)


def _html_header(data: dict, a: Analysis) -> list[str]:
    """The page head, title, source line and navigation; then the weighting and the analysis notes."""
    out = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(data['title'])}</title>",
           f"<style>{CSS}</style></head><body>", f"<h1>{esc(data['title'])}</h1>",
           f"<p>Source <code>{esc(a.source)}</code>: {a.n_rows} rows, {a.n_success} succeeded, "
           f"{len(a.failures)} failed. D unit: <b>{esc(a.unit.name)}</b> (scale {a.unit.scale:g}, ε {a.unit.eps:g}). "
           f"Laws fitted per group by log-space OLS; intervals by a cluster bootstrap over base models where the "
           f"table has at least two (flagged rough below 10), else model-based (OLS) — each fit names its kind. "
           f"Created {esc(data['created'])}.</p>",
           "<nav><a href='#summary'>summary</a><a href='#figures'>figures</a><a href='#comparison'>fits</a>"
           "<a href='#validation'>validation</a><a href='#decisions'>decisions</a><a href='#speed'>speed laws</a>"
           "<a href='#failures'>failures</a><a href='summary.md'>summary.md</a><a href='report.json'>report.json</a>"
           "<a href='comparison.csv'>comparison.csv</a></nav>"]
    if weighting_text(a):
        out.append(f"<p>{esc(weighting_text(a))}</p>")
    out += [f"<p class='warn'>{esc(n)}</p>" for n in a.notes]
    return out


def _html_summary(a: Analysis) -> list[str]:
    """The summary section: one row of key numbers per group."""
    sig = a.sigmas
    rows = []
    for g in a.groups:
        best, v = g.best, g.best_validation()
        sp = a.speed_for(g.key)
        sp05 = sp.speedups.get(0.5) if sp else None
        status = (best.status if best.status == "ok" else "<span class='warn'>unreliable</span>") if best else \
            "<span class='bad'>failed</span>"
        rows.append([esc(g.label), esc(g.best_form or "–"), status, fmt(best.r2, ".3f") if best else "–",
                     (f"{pct(v.median_are)} / {pct(v.max_are)} " + _rating(v)) if v else "–"]
                    + [esc(rcrit_text(g.r_crit.get(s))) for s in sig] + [f"{sp05.value:.2f}×" if sp05 else "–"])
    return ["<h2 id='summary'>Summary</h2>",
            f"<p>Per (method, metric) group: the best form (the {BEST_CRITERION}), its status (unreliable: "
            "fewer than 3 ratios, a negative centred R² or an ill-conditioned design), its centred R², the worst "
            "held-out validation "
            "scheme of that form (median / max absolute relative error; ≤ 5% good, 5–15% usable, > 15% "
            "unreliable), the critical ratio of the decision law with its 95% bootstrap interval, and the "
            "speed law's speedup at r = 0.5.</p>",
            _table(["group", "best form", "status", "R²", "held-out error"] + [f"r_crit σ={s:g}" for s in sig]
                   + ["speedup r=0.5"], rows, left=2, raw=True)]


def _html_figures(data: dict) -> list[str]:
    """The figures section: each drawn figure with its caption, then the ones not drawn and why."""
    out = ["<h2 id='figures'>Figures</h2>"]
    for name, rel in data["figures"].items():
        title, caption = CAPTIONS.get(name, (name, ""))
        out.append(f"<figure><img src='{esc(rel)}' alt='{esc(title)}'><figcaption><b>{esc(title)}.</b> "
                   f"{esc(caption)}</figcaption></figure>")
    for name, note in data.get("figure_notes", {}).items():
        title, _ = CAPTIONS.get(name, (name, ""))
        out.append(f"<p class='warn'><b>{esc(title)}</b>: not drawn — {esc(note)}</p>")
    for name, err in data["figure_errors"].items():
        out.append(f"<p class='bad'>figure {esc(name)} could not be drawn: {esc(err)}</p>")
    return out


def _html_comparison(a: Analysis) -> list[str]:
    """The law-fit section: one row per (group, form), Table-1 style."""
    rows = [_html_comparison_row(g, name, g.fits.get(name)) for g in a.groups for name in a.forms]
    return ["<h2 id='comparison'>Law fits (Table-1 style comparison)</h2>",
            "<p>R² unc. is the uncentred R² that statsmodels reports for a model without intercept (what the "
            "paper compares; it flatters the fit); R² is the centred one. Parameter intervals: 95%, of the kind "
            "named in the status column. A parameter the table cannot identify has no estimate, interval or sign "
            "verdict. Rows excluded: failed experiments and invalid cells.</p>",
            _table(["group", "form", "status (intervals)", "n", "rows excluded", "R² unc.", "R²", "AIC", "MARE",
                    "signs", "parameters [95% interval]", "warnings"], rows, left=3, raw=True)]


def _html_comparison_row(g: GroupAnalysis, name: str, res) -> list[str]:
    """One row of the law-fit table (cells already escaped): the fit of form ``name``, or why there is none."""
    if res is None:
        why = g.fit_errors.get(name, "not fitted")
        return [esc(g.label), esc(name), "<span class='bad'>failed</span>", "–", "–", "–", "–", "–",
                "–", f"<span class='bad'>not fitted: {esc(why)}</span>", "", ""]
    best = " <b>(best)</b>" if name == g.best_form else ""
    signs = esc(res.sign_text()) if res.sign_ok else \
        "<span class='bad'>violated: " + esc("; ".join(res.sign_violations)) + "</span>"
    warns = "<br>".join(f"<span class='warn'>[{esc(w.code)}]</span> {esc(w.message)}" for w in res.warnings)
    status = esc(status_text(res))
    if res.status != "ok" or res.unidentified:
        status = f"<span class='warn'>{status}</span>"
    status += "<br><span class='small'>" + esc(interval_text(res.interval_kind, res.n_clusters,
                                                               res.interval_note)) + "</span>"
    return [esc(g.label), esc(name) + best, status, str(res.n_obs), esc(excluded_text(g.excluded(name))),
            fmt(res.r2_uncentred, ".4f"), fmt(res.r2, ".4f"), fmt(res.aic, ".1f"), pct(res.mare),
            signs, esc(params_text(res)), warns]


def _html_validation(a: Analysis) -> list[str]:
    """The held-out validation section: every scheme run, then every scheme skipped and why."""
    rows = [[esc(g.label), esc(v.form), esc(v.scheme), str(len(v.folds)), str(v.n_test), pct(v.median_are),
             pct(v.max_are), _rating(v)] for g in a.groups for v in g.validation]
    rows += [[esc(g.label), esc(f), esc(s), "–", "–", "–", "–",
              f"<span class='warn'>skipped: {esc(why)}</span>"] for g in a.groups for f, s, why in g.validation_skipped]
    return ["<h2 id='validation'>Held-out validation</h2>",
            "<p>Each scheme refits the law without a part of the data and predicts it: leave-one-model-out, "
            "small-to-large (fit on smaller models, predict the largest), leave-one-ratio-out. Shown for the "
            "best form and the decision law of each group.</p>",
            _table(["group", "form", "scheme", "folds", "held-out rows", "median", "max", "rating"], rows,
                   left=3, raw=True)]


def _html_decisions(a: Analysis) -> list[str]:
    """The decisions section's head and its r_crit table: one row per (group, σ), or the group's error."""
    decision = next((g.decision_fit.form.name for g in a.groups if g.decision_fit), "sengupta2025")
    rows = []
    for g in a.groups:
        if not g.r_crit:
            rows.append([esc(g.label), "–", "–", "–", "", f"<span class='bad'>{esc(g.decision_error)}</span>"])
        for s, d in g.r_crit.items():
            kind = interval_text(d.extra.get("interval_kind"), d.extra.get("clusters", 0),
                                 d.extra.get("interval_note", "")) if d.interval else ""
            rows.append([esc(g.label), f"{s:g}", esc(rcrit_text(d, ".4f")) if d.regime != "critical" else
                         fmt(d.value, ".4f"), ival(d.interval, ".4f"), esc(kind), esc(d.message)])
    return ["<h2 id='decisions'>Decisions</h2>",
            f"<p>From the decision law (<code>{esc(decision)}</code>, paper Theorem 3.1): beyond r_crit(σ) no "
            "amount of RFT keeps retention ≥ σ. Intervals: 95%, of the kind named. A decision that needs a "
            "parameter the table cannot identify is not given.</p>",
            _table(["group", "σ", "r_crit", "95% interval", "interval kind", "reading"], rows, raw=True)]


def _d_min_cell(g: GroupAnalysis, sigma: float, r: float) -> str:
    """One cell of the D_min table: the minimum RFT data at (r, σ) with its interval, or its regime."""
    rec = next((x for x in g.d_min if x["sigma"] == sigma and abs(x["r"] - r) < 1e-9), None)
    if rec is None:
        return "–"
    if rec["regime"] == "unreachable":
        return "unreachable"
    if rec["regime"] == "no-rft-needed":
        return "0"
    return f"{fmt(rec['value'], '.3g')} {ival(rec['interval'], '.3g')}".strip()


def _html_d_min(a: Analysis) -> list[str]:
    """The rest of the decisions section: the groups without D_min and why, then the D_min(r, σ) table."""
    shown_r = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
    rows = [[g.label, f"{s:g}"] + [_d_min_cell(g, s, r) for r in shown_r]
            for g in a.groups if g.d_min for s in a.sigmas]
    out = []
    no_dmin = [[g.label, g.d_min_error] for g in a.groups if not g.d_min and g.d_min_error]
    if no_dmin:
        out += ["<p>No minimum RFT data for:</p>", _table(["group", "reason"], no_dmin, left=2)]
    if rows:
        out += [f"<p>Minimum RFT data D_min(r, σ) in {esc(a.unit.name)} (raw D units of the table), "
                "with its 95% interval (kind as for r_crit):</p>",
                _table(["group", "σ"] + [f"r = {r:g}" for r in shown_r], rows, left=1)]
    return out


def _html_speed(a: Analysis) -> list[str]:
    """The speed-law section: the law per method, then measured vs predicted per runtime measurement."""
    head, srows = speed_law_rows(a)
    out = ["<h2 id='speed'>Speed laws</h2>", f"<p>{esc(SPEED_TEXT)}</p>", _table(head, srows)]
    head, prows = speed_point_rows(a)
    if prows:
        out += ["<p>Measured vs predicted speedup per runtime measurement:</p>",
                _table(head, prows, left=2)]
    return out


def _html_failures(a: Analysis) -> list[str]:
    """The failures section: the failed experiment rows, then the rows each fit excluded per group."""
    out = ["<h2 id='failures'>Failures</h2>"]
    if a.failures.empty:
        out.append("<p>No failed experiments.</p>")
    else:
        out.append(f"<p>{len(a.failures)} experiment row(s) did not succeed; every fit excluded them.</p>")
        recs = failures_records(a)
        cols = list(recs[0])
        out.append(_table(cols, [[_cell(r[c]) for c in cols] for r in recs], left=len(cols)))
    rows = [[g.label, str(len(g.frame)), str(g.n_failed)] + [excluded_text(g.excluded(f)) if f in g.fits else
                                                              "not fitted" for f in a.forms] for g in a.groups]
    out += ["<p>Rows each fit excluded:</p>",
            _table(["group", "rows", "failed"] + list(a.forms), rows, left=1)]
    return out


def comparison_frame(a: Analysis) -> pd.DataFrame:
    from complaw.laws import compare

    fits = [res for g in a.groups for res in g.fits.values()]
    return compare(fits) if fits else pd.DataFrame()
