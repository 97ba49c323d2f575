"""``build_report``: fit the laws of a compression study and write its report directory.

    >>> rep = build_report("results.csv", "reports/study", unit=DUnit("M-tokens"))
    >>> print("\\n".join(rep.summary_lines()))
    >>> rep.html            # reports/study/index.html

The directory holds ``index.html`` (self-contained), ``summary.md``, ``report.json``, ``comparison.csv``
and ``figures/*.png``.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from complaw.errors import ComplawError
from complaw.laws import DUnit, LawData, get_form, load_results, parse_mapping, read_table
from complaw.laws.data import apply_mapping, express_d
from complaw.report import render
from complaw.report.analysis import DECISION_FORM, DEFAULT_FORMS, Analysis, NUnit, analyse, succeeded


@dataclass(frozen=True, eq=False)
class Report:
    """A written report: where its files are, and its key numbers.

    Attributes:
        out_dir: the report directory.
        html, md, json: paths of ``index.html``, ``summary.md`` and ``report.json``.
        figures: figure name → PNG path (``perf_vs_r``, ``law_fit``, ``rft_impact``, ``critical_ratio``,
            ``d_min``, ``speedup``, ``obs_vs_pred``).
        data: the numbers of ``report.json`` (a dict).
        analysis: the fits, validations and decisions behind them (see :mod:`complaw.report.analysis`).
    """

    out_dir: Path
    html: Path
    md: Path
    json: Path
    figures: dict[str, Path]
    data: dict[str, Any]
    analysis: Analysis = field(repr=False)

    @property
    def groups(self) -> list[dict[str, Any]]:
        """One dict per (method, metric) group, as in ``report.json``."""
        return self.data["groups"]

    def r_crit(self, sigma: float, **group: str) -> float | None:
        """The critical ratio at σ of the one group matching ``group`` (e.g. ``method="prunenet"``)."""
        matches = [g for g in self.groups if all(g["group"].get(k) == v for k, v in group.items())]
        if len(matches) != 1:
            raise ComplawError(f"report: {len(matches)} groups match {group or 'all'}; name one group")
        d = matches[0]["r_crit"].get(f"{sigma:g}")
        return d["value"] if d else None

    def summary_lines(self) -> list[str]:
        """5–15 lines for a console: per group the best form, R², r_crit at each σ, speedup at r = 0.5."""
        a = self.analysis
        lines = [f"compression-law report: {len(a.groups)} group(s) from {a.n_success} experiment rows"
                 + (f" ({len(a.failures)} failed, excluded)" if len(a.failures) else "")]
        lines += [f"  {n}" for n in a.notes]
        shown = a.groups[:12]
        for g in shown:
            best = g.best
            head = f"  {g.label}: " + (f"best {g.best_form} (R² {best.r2:.3f}"
                                       + (", unreliable" if best.unreliable else "") + ")" if best
                                       else "no law fitted" + (f" ({_short(next(iter(g.fit_errors.values())))})"
                                                               if g.fit_errors else ""))
            crit = ", ".join(f"r_crit(σ={s:g}) {render.rcrit_text(g.r_crit.get(s))}" for s in a.sigmas)
            if not g.r_crit:
                crit = f"no r_crit ({_short(g.decision_error) or 'no decision law'})"
            sp = a.speed_for(g.key)
            sp05 = sp.speedups.get(0.5) if sp else None
            speed = f", speedup@0.5 {sp05.value:.2f}×" if sp05 else ""
            lines.append(f"{head}; {crit}{speed}")
        if len(a.groups) > len(shown):
            lines.append(f"  … and {len(a.groups) - len(shown)} more group(s) in the report")
        lines.append(f"report: {self.html}")
        return lines


def _short(text: str, n: int = 80) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _load(source, table: str | None, mapping=None) -> tuple[LawData | None, pd.DataFrame, int, str, pd.DataFrame]:
    """(successful rows as LawData or None, failed rows, total rows, source label, excluded rows)."""
    if isinstance(mapping, (list, str)):
        mapping = parse_mapping(mapping)
    if isinstance(source, LawData):
        n_failed = int(source.dropped.get("status is not success", 0))
        return source, pd.DataFrame(), len(source.frame) + n_failed, source.source, pd.DataFrame()
    if isinstance(source, pd.DataFrame):
        raw, name = source.copy(), "table"
    elif isinstance(source, (str, Path)):
        raw, name = read_table(source, table), str(source)
    else:
        raise ComplawError(f"report source {type(source).__name__}: give a path, a DataFrame or a LawData")
    raw = apply_mapping(raw, dict(mapping or {}), name)
    if raw.empty:
        raise ComplawError(f"{name}: the table has no rows")
    ok = succeeded(raw)
    # rows the store set aside on purpose (a task at ceiling or floor for its base model): not failures
    left_out = (raw["status"].fillna("").astype(str).str.strip().str.lower() == "excluded").to_numpy() \
        if "status" in raw.columns else np.zeros(len(raw), dtype=bool)
    failures = raw.loc[~ok & ~left_out].reset_index(drop=True)
    ld = replace(load_results(raw), source=name) if ok.any() else None
    return ld, failures, len(raw), name, raw.loc[left_out].reset_index(drop=True)


def build_report(
    source,
    out_dir: str | Path,
    *,
    forms: tuple[str, ...] | list[str] = DEFAULT_FORMS,
    sigmas: tuple[float, ...] | list[float] = (0.8, 0.9),
    unit: DUnit | None = None,
    bootstrap: int = 200,
    title: str | None = None,
    table: str | None = None,
    decision_form: str = DECISION_FORM,
    figures: bool = True,
    seed: int = 0,
    mapping: dict[str, str] | list[str] | str | None = None,
    direction: str | None = None,
    group: list[str] | None = None,
    n_unit: NUnit | str | None = None,
    interval: str = "auto",
    weights: str = "auto",
) -> Report:
    """Fit, validate and decide per (method, metric) group, fit the speed law per method, write the report.

    A group with too few rows or a fit that fails is recorded with its reason in the report, not raised.

    Args:
        source: results in the law engine's canonical columns (``model, N, method, metric, direction, r, D,
            L0, L, S, S0, status`` and optionally ``error``): a path (CSV/Parquet/JSONL/SQLite — for SQLite the
            ``law_rows`` table by default), a DataFrame, or a :class:`~complaw.laws.LawData`.
        out_dir: the report directory (created; files in it are overwritten).
        forms: law forms compared per group.
        sigmas: target retentions for the critical ratio and the minimum RFT data.
        unit: the unit of D the laws see (default raw samples, ε = 1).
        bootstrap: cluster-bootstrap resamples per fit (intervals of parameters and decisions).
        title: the report's title.
        table: the table to read from a SQLite file.
        decision_form: the law whose fit gives r_crit and D_min (fitted even if not in ``forms``).
        figures: draw the figures (off for quick numeric reports).
        seed: bootstrap seed.
        mapping: law variable → the table's column (``"L=value L0=base r=ratio model=model"``), as for ``fit``.
        direction: the metric direction (default: a direction column, else each metric's name); one that
            contradicts a metric's name is an error.
        group: columns to fit one law per group (default: method and metric).
        n_unit: the unit of ``N`` (``parameters`` by default; ``B`` for billions, ``M`` for millions).
        interval: ``auto`` (cluster bootstrap by base model with ≥ 2 clusters, model-based with one, row
            bootstrap without a model column), ``cluster``, ``rows`` or ``ols``.
        weights: ``auto`` (inverse-variance WLS for a group whose every row has a standard error ``L_se``,
            e.g. lm-eval accuracies from the store; else OLS), ``inverse-variance`` or ``none``. The report
            says per fit which was done.

    Returns:
        The :class:`Report` (paths and key numbers).

    Raises:
        ComplawError: an unreadable source, or bad settings (σ outside (0, 1), an unknown form).
    """
    unit = unit or DUnit()
    n_unit = n_unit if isinstance(n_unit, NUnit) else NUnit.parse(n_unit)
    ld, failures, n_rows, name, excluded = _load(source, table, mapping)
    if ld is not None:
        ld = express_d(ld, unit.name)  # complaw's store knows its D in samples and tokens: --d-unit converts it
    for f in (*forms, decision_form):
        get_form(f)  # an unknown form name is a user error, not a per-group failure
    out = Path(out_dir)
    _check_settings(ld, source, out, forms=forms, sigmas=sigmas, bootstrap=bootstrap, direction=direction,
                    group=group, interval=interval, weights=weights)
    try:  # before the analysis: an unwritable --out should not cost its minutes
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ComplawError(f"report directory {str(out)!r}: cannot be created ({err.strerror}); "
                           "give a writable --out") from None
    analysis = analyse(ld, failures=failures, excluded=excluded, n_rows=n_rows, forms=forms, sigmas=tuple(float(s) for s in sigmas),
                       unit=unit, bootstrap=bootstrap, seed=seed, decision_form=decision_form, source=name,
                       direction=direction, group=group, n_unit=n_unit, interval=interval, weights=weights)
    fig_paths, fig_errors, fig_notes = {}, {}, {}
    if figures:
        from complaw.report.figures import draw_all  # matplotlib only when drawing

        fig_paths, fig_errors, fig_notes = draw_all(analysis, out / "figures")
    title = title or f"Compression-law report: {Path(name).name if name != 'table' else 'results table'}"
    data = render.to_dict(analysis, fig_paths, fig_errors, title=title, figure_notes=fig_notes)
    paths = {"html": out / "index.html", "md": out / "summary.md", "json": out / "report.json"}
    paths["json"].write_text(json.dumps(data, indent=2, allow_nan=False), encoding="utf-8")
    paths["md"].write_text(render.markdown(data, analysis), encoding="utf-8")
    render.comparison_frame(analysis).to_csv(out / "comparison.csv", index=False)
    paths["html"].write_text(render.html(data, analysis), encoding="utf-8")
    return Report(out, paths["html"], paths["md"], paths["json"], fig_paths, data, analysis)


#: The files a report writes into its directory (a source among them would be overwritten).
REPORT_FILES = ("index.html", "summary.md", "report.json", "comparison.csv", "summary.txt", ".complaw-report-key")


def _check_settings(ld: LawData | None, source, out: Path, *, forms, sigmas, bootstrap: int, direction: str | None,
                    group: list[str] | None, interval: str, weights: str) -> None:
    """Every setting of the report, checked before its directory is created or any file written: a bad one is
    one line and the command leaves nothing behind (the analysis would refuse it only after ``mkdir``)."""
    from complaw import checks
    from complaw.laws.data import check_direction
    from complaw.laws.fit import check_fit_settings

    if not tuple(forms):
        raise ComplawError("report: no law forms given; use e.g. sengupta2025")
    for s in sigmas:
        checks.number(s, "--sigma", lo=0, hi=1, lo_open=True, hi_open=True, hint="e.g. 0.8")
    checks.number(bootstrap, "--bootstrap", lo=0)
    check_fit_settings(interval=interval, weights=weights)  # the fits' own check, before the folder exists
    if ld is not None:
        check_direction(ld, direction)
        for col in group or []:
            if col not in ld.frame.columns:
                raise ComplawError(f"--group {col!r}: no such column in {ld.source}; columns are "
                                   f"{', '.join(map(str, ld.frame.columns))}")
    if isinstance(source, (str, Path)):
        src, where = Path(source).expanduser().resolve(), out.expanduser().resolve()
        if src in [where / name for name in REPORT_FILES] or where / "figures" in src.parents:
            raise ComplawError(f"--out {out}: the report would overwrite the results table it reads ({source}); "
                               "choose another report directory")


def sweep_report(frame: pd.DataFrame, spec) -> tuple[Path, list[str]]:
    """Fit, decide and write the report of a sweep's law rows (kept as it is when nothing changed).

    Args:
        frame: the store's law rows (:meth:`~complaw.sweep.store.ResultStore.law_frame`); the rows used are
            those stored under the sweep's name ``spec.name`` and those of the spec's own experiments (by config
            hash: a renamed spec whose experiments are all stored still has its rows).
        spec: the sweep's :class:`~complaw.sweep.spec.SweepSpec` (its name, law settings and report directory).

    Returns:
        ``(report directory, summary lines)``.
    """
    if "sweep" in frame:
        mine = frame["sweep"] == spec.name
        if "config_hash" in frame:
            mine |= frame["config_hash"].isin({h for unit in spec.units() for h in unit.hashes})
        frame = frame[mine]
    out = spec.report_dir()
    # The report depends only on these rows and the law settings: an unchanged store keeps its report.
    key = hashlib.sha256(frame.drop(columns=["error"], errors="ignore").to_csv(index=False).encode()
                         + spec.laws.model_dump_json().encode()).hexdigest()
    stamp, lines_file = out / ".complaw-report-key", out / "summary.txt"
    if (out / "index.html").is_file() and stamp.is_file() and stamp.read_text() == key and lines_file.is_file():
        return out, lines_file.read_text().splitlines()
    law = spec.laws
    with warnings.catch_warnings():  # empty groups of a figure make numpy warn; the report says why
        warnings.simplefilter("ignore", RuntimeWarning)
        rep = build_report(frame, out, forms=tuple(law.forms), sigmas=tuple(law.sigmas),
                           unit=DUnit(law.d_unit, law.d_scale), bootstrap=law.bootstrap,
                           title=f"complaw sweep {spec.name}")
    lines = rep.summary_lines()
    lines_file.write_text("\n".join(lines))
    stamp.write_text(key)
    return out, lines
