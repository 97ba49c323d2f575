"""The report's figures (matplotlib, Agg backend, PNG), in the spirit of the compression-laws paper.

One file per kind of figure, one subplot per group; every base model keeps one colour (ordered by size)
across all figures, with the legend drawn once per figure.

    >>> paths = draw_all(analysis, Path("report/figures"))   # {"perf_vs_r": Path(...), ...}
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display; set before pyplot is imported

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from complaw.report.analysis import Analysis, GroupAnalysis, SpeedAnalysis, d_min_curve, speed_prediction  # noqa: E402
from complaw.report.captions import CAPTIONS  # noqa: E402,F401 (re-exported)

DPI = 110
_PLAIN = FuncFormatter(lambda v, _: f"{v:g}")
R_GRID = np.linspace(0.0, 0.95, 96)
SIGMA_COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd")  # one per target retention σ
RATIO_COLORS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a")

# --- helpers -------------------------------------------------------------------------------------------
def model_colors(models: tuple[str, ...] | list[str]) -> dict[str, tuple]:
    """One colour per base model, from small (dark) to large (bright) along viridis."""
    cmap = plt.get_cmap("viridis")
    n = len(models)
    return {m: cmap(0.05 + 0.85 * (i / max(n - 1, 1))) for i, m in enumerate(models)}


def _size_text(n) -> str:
    """A size in parameters as ``6.7B``, ``350M``, ``42K`` (plain below a thousand)."""
    if n is None or not np.isfinite(n):
        return ""
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= 0.1 * div:
            return f"{n / div:.3g}{suffix}"
    return f"{n:.3g}"


def _log_if_wide(ax, values, axis: str = "y") -> bool:
    """Log-scale a metric axis whose positive values span more than a decade (perplexities up to 2,868
    would hide every low-ratio point on a linear one); returns whether it did."""
    v = np.asarray(pd.to_numeric(pd.Series(np.ravel(values)), errors="coerce"), dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size < 2 or v.max() / v.min() <= 10:
        return False
    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(_PLAIN)
    return True


def _thin_ticks(values: list[float], min_gap: float) -> list[bool]:
    """Which of the sorted positive ``values`` to label on a log axis so that labels keep ``min_gap``
    (in log10 units) apart: the first, then every one far enough from the last labelled."""
    keep, last = [], -math.inf
    for v in values:
        ok = math.log10(v) - last >= min_gap
        keep.append(ok)
        if ok:
            last = math.log10(v)
    return keep


def _model_legend(fig, a: Analysis, colors, present: set[str] | None = None):
    sizes = {}
    frames = [g.frame for g in a.groups] + [s.frame for s in a.speed]
    for f in frames:
        if "model" in f.columns and "N" in f.columns:
            for m, n in pd.to_numeric(f["N"], errors="coerce").groupby(f["model"].astype(str)).median().items():
                sizes[m] = a.n_unit.params(n)
    handles = [Line2D([], [], color=colors[m], marker="o", lw=2,
                      label=f"{m}" + (f" ({_size_text(sizes.get(m))})" if sizes.get(m) and _size_text(sizes[m])
                                      and _size_text(sizes[m]) not in m else ""))
               for m in a.models if present is None or m in present]
    if handles:
        W, H, right, top = fig._complaw_margins
        fig.legend(handles=handles, title="base model (by size)", loc="upper left", fontsize=8,
                   title_fontsize=9, frameon=False, bbox_to_anchor=(1 - (right - 0.1) / W, 1 - top / H))


def _metric_label(g: GroupAnalysis) -> str:
    metric = g.key.get("metric", "L")
    d = g.direction
    return f"{metric}" + (f" ({d} is better)" if d else "")


def _grid(n: int, ncols: int, width: float = 4.8, height: float = 3.3, *, legend: bool = False,
          title_lines: int = 1, bottom: float = 0.55):
    """A figure of ``n`` axes (inches per axes: width × height) with fixed margins.

    Margins are set by hand rather than by constrained layout, which draws every figure twice.
    """
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    left, right, top = 0.8, (2.3 if legend else 0.3), 0.7 + 0.2 * title_lines  # inches
    wgap, hgap = 0.85, 0.75 + 0.18 * title_lines + (bottom - 0.55)
    W = left + ncols * width + (ncols - 1) * wgap + right
    H = top + nrows * height + (nrows - 1) * hgap + bottom
    fig, axes = plt.subplots(nrows, ncols, figsize=(W, H), squeeze=False)
    fig.subplots_adjust(left=left / W, right=1 - right / W, top=1 - top / H, bottom=bottom / H,
                        wspace=wgap / width, hspace=hgap / height)
    fig._complaw_margins = (W, H, right, top)  # where the legend goes
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _suptitle(fig, text: str):
    W, H, _, _ = fig._complaw_margins
    fig.suptitle(textwrap.fill(text, max(30, int(W * 9))), fontsize=12, y=1 - 0.12 / H, va="top")


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _d_text(a: Analysis, d: float) -> str:
    u = a.unit
    unit = u.name if u.scale == 1 else "raw units"
    return f"D = {d:g} {unit}"


def _d_axis(a: Analysis) -> str:
    u = a.unit
    return f"recovery data D ({u.name})" if u.scale == 1 else f"recovery data D (raw; D/{u.scale:g} in {u.name})"


def _wrap(text: str, width: int = 60) -> str:
    return "\n".join(textwrap.fill(part, width) for part in text.split("\n"))


def _empty(ax, text: str):
    ax.text(0.5, 0.5, _wrap(text), ha="center", va="center", fontsize=9, color="0.4", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _num(frame: pd.DataFrame, col: str) -> pd.Series:
    return pd.to_numeric(frame[col], errors="coerce")


# --- (1) performance vs r -------------------------------------------------------------------------------
def perf_vs_r(a: Analysis, path: Path, colors) -> Path:
    groups = [g for g in a.groups if {"r", "L"} <= set(g.frame.columns)]
    has_d = any("D" in g.frame.columns and _num(g.frame, "D").nunique() > 1 for g in groups)
    ncols = 2 if has_d else 1
    fig, axes = _grid(max(len(groups), 1) * ncols, ncols, legend=True)
    if not groups:
        _empty(axes[0], "no group with r and L columns")
        return _save(fig, path)
    present = set()
    for i, g in enumerate(groups):
        f = g.frame.copy()
        for col in ("r", "L", "L0", "D", "L_se", "L0_se"):
            if col in f.columns:
                f[col] = _num(f, col)
        ds = [0.0, float(f["D"].max())] if has_d else [None]
        for j, d in enumerate(ds):
            ax = axes[i * ncols + j]
            sub = f if d is None or "D" not in f.columns else f[f["D"] == d]
            errbars = False
            for m in a.models:
                rows = sub[sub["model"].astype(str) == m].sort_values("r") if "model" in sub.columns else sub
                if rows.empty:
                    continue
                present.add(m)
                r, L = rows["r"].to_numpy(), rows["L"].to_numpy()
                se = rows["L_se"].to_numpy(dtype=float) if "L_se" in rows.columns else np.full(len(r), np.nan)
                if "L0" in rows.columns and (r > 0).all():  # the base model at r = 0
                    se0 = float(rows["L0_se"].iloc[0]) if "L0_se" in rows.columns else np.nan
                    r, L, se = np.r_[0.0, r], np.r_[rows["L0"].iloc[0], L], np.r_[se0, se]
                color = colors.get(m, "0.3")
                ax.plot(r, L, marker="o", ms=3, lw=1.4, color=color)
                if np.isfinite(se).any():  # ± one standard error (lm-eval's) of each accuracy
                    ax.errorbar(r, L, yerr=np.nan_to_num(se), fmt="none", ecolor=color, elinewidth=0.9,
                                capsize=2, alpha=0.8)
                    errbars = True
            if d is None:  # one amount of RFT data in the group (or no D column)
                only = f["D"].dropna().unique() if "D" in f.columns else []
                what = ("no RFT (D = 0)" if len(only) == 1 and only[0] == 0 else
                        _d_text(a, float(only[0])) if len(only) == 1 else "all D")
            else:
                what = "no RFT (D = 0)" if d == 0 else f"with RFT ({_d_text(a, d)})"
            ax.set_title(f"{g.label}: {what}" + ("  (bars: ±1 s.e.)" if errbars else ""), fontsize=10)
            ax.set_xlabel("compression ratio r")
            ax.set_ylabel(_metric_label(g))
            ax.grid(alpha=0.3)
        values = np.r_[f["L"].to_numpy(dtype=float), f["L0"].to_numpy(dtype=float) if "L0" in f.columns else []]
        for j in range(ncols):
            _log_if_wide(axes[i * ncols + j], values)
        if has_d:  # the same y range left and right, so RFT's effect reads off directly
            lo = min(axes[i * ncols].get_ylim()[0], axes[i * ncols + 1].get_ylim()[0])
            hi = max(axes[i * ncols].get_ylim()[1], axes[i * ncols + 1].get_ylim()[1])
            axes[i * ncols].set_ylim(lo, hi)
            axes[i * ncols + 1].set_ylim(lo, hi)
    _suptitle(fig, "Performance vs compression ratio")
    _model_legend(fig, a, colors, present)
    return _save(fig, path)


# --- (2) fitted law over observed points ---------------------------------------------------------------
def _law_fit_forms(g: GroupAnalysis) -> list:
    """The fits drawn: the best form by the report's criterion, and the paper's v1 law beside it."""
    out = [g.best] if g.best is not None else []
    if g.decision_fit is not None and g.decision_fit is not g.best:
        out.append(g.decision_fit)
    return out


def law_fit(a: Analysis, path: Path, colors) -> Path:
    fig, axes = _grid(max(len(a.groups), 1), 2, legend=True, title_lines=2)
    present = set()
    styles = ("-", "--")
    for ax, g in zip(axes, a.groups, strict=False):
        fits = _law_fit_forms(g)
        f = g.frame.copy()
        if not fits or not {"r", "L", "L0"} <= set(f.columns):
            why = next(iter(g.fit_errors.values()), "") or g.decision_error or "missing columns"
            _empty(ax, f"{g.label}\nno fitted law: {why}")
            continue
        for col in ("r", "L", "L0", "D"):
            if col in f.columns:
                f[col] = _num(f, col)
        if "D" in f.columns:
            f = f[f["D"] == f["D"].min()]
        d0 = float(f["D"].min()) if "D" in f.columns else 0.0
        for m in a.models if "model" in f.columns else [None]:
            rows = f[f["model"].astype(str) == m] if m is not None else f
            if rows.empty:
                continue
            if m is not None:
                present.add(m)
            c = colors.get(m, "0.3")
            ax.scatter(rows["r"], rows["L"], s=14, color=c, zorder=3)
            grid = pd.DataFrame({"L0": float(rows["L0"].iloc[0]), "r": R_GRID, "D": d0})
            for res, ls in zip(fits, styles, strict=False):
                ax.plot(R_GRID, res.predict(grid), color=c, lw=1.3, ls=ls)
        parts = [f"{res.form.name} (R² {res.r2:.3f}{', unreliable' if res.unreliable else ''})" for res in fits]
        ax.set_title(f"{g.label}, D = {d0:g}\n" + " — dashed: ".join(parts), fontsize=9)
        for res, ls in zip(fits, styles, strict=False):
            ax.plot([], [], color="0.3", ls=ls, label=res.form.name + (" (best)" if res is g.best else " (v1)"))
        ax.legend(fontsize=7, loc="best")
        _log_if_wide(ax, np.r_[f["L"].to_numpy(dtype=float), f["L0"].to_numpy(dtype=float)])
        ax.set_xlabel("compression ratio r")
        ax.set_ylabel(_metric_label(g))
        ax.grid(alpha=0.3)
    _suptitle(fig, "Fitted laws (solid: best form; dashed: the paper's v1 law) over the observations, without RFT")
    _model_legend(fig, a, colors, present)
    return _save(fig, path)


# --- (3) RFT impact ---------------------------------------------------------------------------------------
def _pick_ratios(values: np.ndarray, wanted=(0.3, 0.5, 0.7)) -> list[float]:
    values = np.unique(values[values > 0])
    out = []
    for w in wanted:
        if len(values):
            v = float(values[np.argmin(np.abs(values - w))])
            if v not in out:
                out.append(v)
    return out


def rft_impact(a: Analysis, path: Path, colors) -> Path:
    fig, axes = _grid(max(len(a.groups), 1), 2)
    for ax, g in zip(axes, a.groups, strict=False):
        f = g.frame.copy()
        if not {"r", "L", "L0", "D"} <= set(f.columns) or _num(f, "D").nunique() < 2:
            _empty(ax, f"{g.label}\nonly one amount of recovery data D: no RFT curve")
            continue
        for col in ("r", "L", "L0", "D"):
            f[col] = _num(f, col)
        f["ret"] = f["L"] / f["L0"]
        for k, r in enumerate(_pick_ratios(f["r"].to_numpy())):
            stats = f[np.isclose(f["r"], r)].groupby("D")["ret"].agg(["mean", "min", "max"]).reset_index()
            c = RATIO_COLORS[k % len(RATIO_COLORS)]
            ax.plot(stats["D"], stats["mean"], marker="o", ms=4, color=c, label=f"r = {r:g}")
            ax.fill_between(stats["D"], stats["min"], stats["max"], color=c, alpha=0.15, lw=0)
        pos = f.loc[f["D"] > 0, "D"]
        if len(pos):
            ax.set_xscale("symlog", linthresh=float(pos.min()))
        ds = np.unique(f["D"])
        if len(ds) <= 8:
            ax.set_xticks(ds, [f"{d:g}" for d in ds])
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.axhline(1.0, color="0.5", lw=0.8, ls=":")
        ax.set_title(g.label, fontsize=10)
        ax.set_xlabel(_d_axis(a))
        ax.set_ylabel(f"L / L0 ({g.direction or '?'} is better)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, title="ratio (mean, min–max over models)", title_fontsize=8)
    _suptitle(fig, "Recovery fine-tuning: L / L0 vs recovery data")
    return _save(fig, path)


# --- (4) critical ratio vs model size --------------------------------------------------------------------
# A per-model law without a finite r_crit in (0, 1): (marker, y on the frame, legend text) per case.
_NO_RCRIT = {
    "all-recoverable": ("^", 1.0, "r_crit ≥ 1: every r recoverable"),
    "unreachable": ("v", 0.0, "r_crit ≤ 0: σ out of reach"),
    "none": ("x", 0.0, "no r_crit: signs violated / not fitted"),
}


def critical_vs_size(a: Analysis, path: Path, colors) -> Path:
    fig, axes = _grid(max(len(a.groups), 1), 2, bottom=1.0)  # room for the slanted size labels
    for ax, g in zip(axes, a.groups, strict=False):
        if not g.per_model:
            _empty(ax, f"{g.label}\nno critical ratio: {g.decision_error or 'no model column'}")
            continue
        pm = pd.DataFrame(g.per_model)
        shown: set[str] = set()
        pm["N"] = a.n_unit.params(pm["N"].to_numpy(dtype=float))
        use_n = pm["N"].notna().all() and pm["N"].nunique() > 1
        xs = {m: (float(n) if use_n else i) for i, (m, n) in enumerate(dict(zip(pm["model"], pm["N"],
                                                                               strict=True)).items())}
        for k, s in enumerate(a.sigmas):
            c = SIGMA_COLORS[k % len(SIGMA_COLORS)]
            rows = pm[pm["sigma"] == s]
            shift = 1.0 + 0.04 * (k - (len(a.sigmas) - 1) / 2) if use_n else 0.08 * (k - (len(a.sigmas) - 1) / 2)
            for _, row in rows.iterrows():
                x = xs[row["model"]] * shift if use_n else xs[row["model"]] + shift
                v = row["value"]
                if row["regime"] == "critical" and np.isfinite(v):
                    iv = row["interval"]
                    yerr = None
                    if iv and all(np.isfinite(iv)):
                        yerr = [[max(v - min(iv[0], 1.0), 0)], [max(min(iv[1], 1.0) - v, 0)]]
                    ax.errorbar(x, v, yerr=yerr, marker="o", color=c, ms=5, capsize=3, lw=1)
                else:  # no finite r_crit in (0, 1): a marker on the frame says which case
                    kind = row["regime"] if row["regime"] in _NO_RCRIT else "none"
                    marker, y = _NO_RCRIT[kind][:2]
                    ax.plot(x, y, marker=marker, color=c, ms=7, ls="none", clip_on=False, zorder=5)
                    shown.add(kind)
            pooled = g.r_crit.get(s)
            if pooled is not None and pooled.regime == "critical":
                ax.axhline(pooled.value, color=c, lw=1.2, ls="--")
                if pooled.interval:
                    ax.axhspan(*pooled.interval, color=c, alpha=0.12, lw=0)
            ax.plot([], [], marker="o", color=c, ls="--", label=f"σ = {s:g}" + (
                f" (pooled {pooled.value:.3f})" if pooled is not None and pooled.regime == "critical" else ""))
        for kind in sorted(shown):
            marker, _, text = _NO_RCRIT[kind]
            ax.plot([], [], marker=marker, color="0.35", ls="none", label=text)
        if use_n:
            ax.set_xscale("log")
            sizes = sorted(set(pm["N"]))
            ax.set_xlim(sizes[0] / 1.35, sizes[-1] * 1.35)  # every model's slot, plotted or not
            # labels at least 1/12 of the axis apart (sizes such as 6.7B and 7B would overlap): the others
            # keep an unlabelled tick
            span = math.log10(sizes[-1] * 1.35) - math.log10(sizes[0] / 1.35)
            keep = _thin_ticks(sizes, span / 12)
            ax.set_xticks(sizes, [_size_text(n) if k else "" for n, k in zip(sizes, keep, strict=True)],
                          rotation=45, ha="right", fontsize=8)
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            ax.set_xlabel("base-model size N (parameters)")
        else:
            ax.set_xlim(-0.5, len(xs) - 0.5)
            ax.set_xticks(list(xs.values()), list(xs), rotation=45, ha="right", fontsize=8)
            ax.set_xlabel("base model")
        top = [v for v in pm["value"] if np.isfinite(v) and v < 1] + [
            d.interval[1] for d in g.r_crit.values() if d.regime == "critical" and d.interval]
        top += [v for row in pm["interval"] if row for v in row if np.isfinite(v) and v < 1]
        ax.set_ylim(0, 1.05 if (pm["regime"] == "all-recoverable").any() or not top else min(1.05, 1.3 * max(top) + 0.02))
        ax.set_ylabel("critical ratio r_crit")
        ax.set_title(g.label, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    _suptitle(fig, "Critical compression ratio per base model (markers) and pooled (dashed)")
    return _save(fig, path)


# --- (7) minimum RFT data ------------------------------------------------------------------------------
def _d_min_note(curve: np.ndarray, rc, r_last: float) -> str:
    """Why a D_min curve shows nothing useful ('' when it does)."""
    finite = curve[np.isfinite(curve)]
    if finite.size and (finite > 0).any():
        return ""
    if finite.size:
        return f"D_min = 0 for r ≤ {r_last:.2f} (no RFT needed)"
    reasons = {"infeasible": " (law's signs violated)", "unreachable": " (σ out of reach)"}
    return "no D_min" + (reasons.get(rc.regime, "") if rc is not None else "")


def d_min_skip_reason(a: Analysis) -> str:
    """Why the report has no D_min figure at all ('' when it has one)."""
    if not any(g.has_rft for g in a.groups):
        return ("no group has rows with recovery fine-tuning next to rows without (every D is the same), so the "
                "minimum RFT data cannot be estimated from this table")
    if not any(g.d_min for g in a.groups):
        return "no group's decision law gives a minimum RFT data: " + "; ".join(
            f"{g.label}: {g.d_min_error}" for g in a.groups if g.d_min_error)
    return ""


def d_min_curves(a: Analysis, path: Path, colors) -> Path:
    fig, axes = _grid(max(len(a.groups), 1), 2)
    for ax, g in zip(axes, a.groups, strict=False):
        if not g.d_min:
            _empty(ax, f"{g.label}\nno minimum-D curve: {g.d_min_error or g.decision_error or 'no decision law'}")
            continue
        dm = pd.DataFrame(g.d_min)
        r_max = max([d.value for d in g.r_crit.values() if d.regime == "critical"], default=0.95)
        fine = np.linspace(0.0, min(r_max, 0.95), 200)
        positive = False
        for k, s in enumerate(a.sigmas):
            c = SIGMA_COLORS[k % len(SIGMA_COLORS)]
            curve = d_min_curve(g.decision_fit, s, fine)
            note = _d_min_note(curve, g.r_crit.get(s), fine[-1])  # a blank or flat curve says why
            ax.plot(fine, curve, color=c, lw=1.6, label=f"σ = {s:g}" + (f": {note}" if note else ""))
            positive |= bool((curve[np.isfinite(curve)] > 0).any())
            rows = dm[(dm["sigma"] == s) & dm["interval"].notna() & (dm["regime"] == "finite")]
            if len(rows):  # bootstrap intervals on the coarse grid of the report's table
                v = rows["value"].to_numpy(dtype=float)
                iv = np.array(list(rows["interval"]), dtype=float)
                ax.errorbar(rows["r"], v, yerr=[np.maximum(v - iv[:, 0], 0), np.maximum(iv[:, 1] - v, 0)],
                            fmt="o", ms=3.5, color=c, capsize=3, lw=1)
            rc = g.r_crit.get(s)
            if rc is not None and rc.regime == "critical":
                ax.axvline(rc.value, color=c, ls=":", lw=1.2)
        ax.set_yscale("symlog", linthresh=max(a.unit.scale * 0.1, 1e-12))
        ax.set_ylim(bottom=0) if positive else ax.set_ylim(0, 1)
        ax.yaxis.set_major_formatter(_PLAIN)
        ax.set_xlim(0, min(1.0, 1.15 * r_max + 0.02))
        ax.set_xlabel("compression ratio r")
        ax.set_ylabel(f"minimum RFT data D_min ({a.unit.name if a.unit.scale == 1 else 'raw units'})")
        ax.set_title(g.label, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    _suptitle(fig, "Minimum recovery data to keep retention ≥ σ (dotted: r_crit)")
    return _save(fig, path)


# --- (5) speedup -----------------------------------------------------------------------------------------
def _speed_curve(s: SpeedAnalysis) -> tuple[np.ndarray, np.ndarray | None, tuple[np.ndarray, np.ndarray]]:
    """The law's speedup on R_GRID at the measurements' median S0, its parameter band and prediction band."""
    from complaw.decide import Law, speedup_at

    s0 = float(np.median(s.frame["S0"].dropna())) if "S0" in s.frame else None
    law = Law.from_fit(s.fit)
    curve = np.array([speedup_at(law, r, s0) for r in R_GRID])
    band = None
    draws = law.draws()
    if draws:
        vals = np.array([[speedup_at(law, r, s0, th) for r in R_GRID] for th in draws])
        band = np.percentile(vals, [2.5, 97.5], axis=0)
    _, lo, hi = speed_prediction(s.fit, R_GRID, s0 if s0 is not None else 1.0, s.fit.conf)
    return curve, band, (lo, hi)


def speedup_fig(a: Analysis, path: Path, colors) -> Path:
    fig, axes = _grid(max(len(a.speed), 1), 2, legend=True)
    present = set()
    if not a.speed:
        _empty(axes[0], "no speed law")
    for ax, s in zip(axes, a.speed, strict=False):
        f = s.frame
        if {"S", "S0", "r"} <= set(f.columns):
            for m in a.models:
                rows = f[f["model"].astype(str) == m] if "model" in f.columns else f
                if rows.empty:
                    continue
                present.add(m)
                ax.scatter(rows["r"], rows["S0"] / rows["S"], s=12, color=colors.get(m, "0.3"), alpha=0.8, zorder=3)
        if s.fit is None:
            ax.set_title(f"{s.label}: no speed law", fontsize=10)
            ax.text(0.5, 0.9, _wrap(s.error), ha="center", va="top", fontsize=8, color="0.4",
                    transform=ax.transAxes)
        else:
            curve, band, (plo, phi) = _speed_curve(s)
            b = s.fit.params["b"]
            ax.plot(R_GRID, curve, color="black", lw=1.8, label=f"speed law: b = {b.estimate:.3f}")
            if band is not None:
                ax.fill_between(R_GRID, band[0], band[1], color="black", alpha=0.15, lw=0, label="95% CI of the law")
            ax.plot(R_GRID, plo, color="black", lw=0.8, ls="--", label="95% prediction interval")
            ax.plot(R_GRID, phi, color="black", lw=0.8, ls="--")
            fitted = s.table[~s.table["noisy"]] if len(s.table) else s.table
            inside = int(fitted["inside"].sum()) if len(fitted) else 0
            noisy = s.table[s.table["noisy"]] if len(s.table) else s.table
            if len(noisy):
                ax.scatter(noisy["r"], noisy["measured"], s=22, facecolors="none", edgecolors="red", zorder=4,
                           label="noisy (not fitted)")
            ax.set_title(f"{s.label}: {s.fit.form.formula}\n{s.fit.n_obs} measurements, {inside} inside the "
                         f"prediction band (R² {s.fit.r2:.2f})", fontsize=9)
            ax.legend(fontsize=7, loc="upper left")
        ax.axhline(1.0, color="0.5", lw=0.8, ls=":")
        ax.set_xlim(-0.02, 1.0)
        ax.set_xlabel("compression ratio r")
        ax.set_ylabel("speedup S0 / S (latency ratio, ×)")
        ax.grid(alpha=0.3)
    _suptitle(fig, "Speedup of the compressed model vs compression ratio")
    _model_legend(fig, a, colors, present)
    return _save(fig, path)


# --- (6) observed vs predicted ---------------------------------------------------------------------------
def obs_vs_pred(a: Analysis, path: Path, colors) -> Path:
    fig, axes = _grid(max(len(a.groups), 1), 2, width=4.0, height=4.0, legend=True, title_lines=2)
    present = set()
    for ax, g in zip(axes, a.groups, strict=False):
        res = g.best
        if res is None:
            _empty(ax, f"{g.label}\nno law could be fitted")
            continue
        f, _ = _usable(g, res)
        pred = res.predict(f)
        obs = f[res.form.target].to_numpy(dtype=float)
        for m in a.models:
            mask = (f["model"].astype(str) == m).to_numpy() if "model" in f.columns else np.ones(len(f), bool)
            if mask.any():
                present.add(m)
                ax.scatter(pred[mask], obs[mask], s=10, color=colors.get(m, "0.3"), alpha=0.8)
        lo, hi = float(min(pred.min(), obs.min())), float(max(pred.max(), obs.max()))
        pad = (hi / lo) ** 0.05
        ax.plot([lo / pad, hi * pad], [lo / pad, hi * pad], color="0.3", ls="--", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):  # plain numbers at round values, not 6×10⁻¹
            axis.set_major_locator(matplotlib.ticker.MaxNLocator(6))
            axis.set_major_formatter(_PLAIN)
            axis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlim(lo / pad, hi * pad)
        ax.set_ylim(lo / pad, hi * pad)
        ax.set_title(f"{g.label}: {res.form.name}\nR² {res.r2:.3f}, mean |rel. err.| {res.mare:.1%}", fontsize=10)
        ax.set_xlabel(f"predicted {g.key.get('metric', res.form.target)}")
        ax.set_ylabel(f"observed {g.key.get('metric', res.form.target)}")
        ax.grid(alpha=0.3, which="both")
    _suptitle(fig, "Observed vs predicted (best law by AIC per group)")
    _model_legend(fig, a, colors, present)
    return _save(fig, path)


def _usable(g: GroupAnalysis, res):
    from complaw.laws import LawData

    return LawData(g.frame, "report").rows_for(res.form, drop_invalid=True)


FIGURES: dict[str, Callable] = {
    "perf_vs_r": perf_vs_r,
    "law_fit": law_fit,
    "rft_impact": rft_impact,
    "critical_ratio": critical_vs_size,
    "d_min": d_min_curves,
    "speedup": speedup_fig,
    "obs_vs_pred": obs_vs_pred,
}


#: Figures that a table may not support: name → why not ('' when it does).
SKIP: dict[str, Callable[[Analysis], str]] = {"d_min": d_min_skip_reason}


def draw_all(a: Analysis, out_dir: Path) -> tuple[dict[str, Path], dict[str, str], dict[str, str]]:
    """Draw every figure into ``out_dir``; returns (name → path, name → error for figures that failed,
    name → why a figure the table cannot support was not drawn).

    A figure that fails is recorded, not raised: the numbers of the report matter more than one plot.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    colors = model_colors(a.models)
    paths, errors, notes = {}, {}, {}
    with plt.rc_context({"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9}):
        for name, draw in FIGURES.items():
            why = SKIP[name](a) if name in SKIP else ""
            if why:
                notes[name] = why
                (out_dir / f"{name}.png").unlink(missing_ok=True)  # a stale figure of an earlier run
                continue
            try:
                paths[name] = draw(a, out_dir / f"{name}.png", colors)
            except Exception as err:  # noqa: BLE001 — recorded in the report, see the docstring
                plt.close("all")
                errors[name] = f"{type(err).__name__}: {err}"
    return paths, errors, notes
