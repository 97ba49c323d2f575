"""CLI command ``complaw report``: fit the laws of a results table and write the report directory.

    complaw report results.db --out reports/study --d-unit M-tokens
    complaw report results.csv --map L=value L0=base r=ratio model=model method=method metric=metric

It reads tables like ``complaw fit`` does (``--map``, ``--direction``, ``--group``, ``--d-unit/--d-scale``);
the report itself is imported inside the command (matplotlib only when it draws).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from complaw.checks import output_path
from complaw.cli.options import (
    MAX_BOOTSTRAP,
    DataArg,
    DirOpt,
    GroupOpt,
    IntervalOpt,
    MapOpt,
    PairsArg,
    StrictOpt,
    check_table_args,
)
from complaw.errors import ComplawError
from complaw.report.captions import DEFAULT_FORMS


def report_cmd(
    source: DataArg = None,
    pairs: PairsArg = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Report directory (default: reports/<source name>).")] = None,
    mapping: MapOpt = None,
    direction: DirOpt = None,
    group: GroupOpt = None,
    d_unit: Annotated[str, typer.Option("--d-unit", help="Name of the unit of D seen by the law.")] = "samples",
    d_scale: Annotated[float, typer.Option("--d-scale", help="Raw D units per law unit (D_law = D / scale).")] = 1.0,
    eps: Annotated[float, typer.Option("--eps", help="ε in the recovery factor 1 + 1/(D+ε).")] = 1.0,
    n_unit: Annotated[str, typer.Option(
        "--n-unit", help="Unit of the model-size column N: parameters (default), K, M or B (billions).")] = "parameters",
    bootstrap: Annotated[int, typer.Option("--bootstrap", "-B", help="Bootstrap resamples per fit (at most "
                                                                       f"{MAX_BOOTSTRAP:,}).")] = 200,
    interval: IntervalOpt = "auto",
    weights: Annotated[str, typer.Option(
        "--weights", help="Row weights of the law fits: auto (inverse-variance where every row of a group has a "
                          "standard error L_se, e.g. lm-eval accuracies; else OLS), inverse-variance, none.")] = "auto",
    table: Annotated[str | None, typer.Option("--table", help="Table to read from a SQLite file.")] = None,
    form: Annotated[list[str] | None, typer.Option(
        "--form", "-f", help="Law form(s) to compare (default: " + ", ".join(DEFAULT_FORMS) + ").")] = None,
    sigma: Annotated[list[float] | None, typer.Option(
        "--sigma", "-s", help="Target retention(s) for r_crit and D_min (default 0.8 and 0.9).")] = None,
    title: Annotated[str | None, typer.Option("--title", help="Title of the report.")] = None,
    figures: Annotated[bool, typer.Option("--figures/--no-figures", help="Draw the figures.")] = True,
    strict: StrictOpt = False,
) -> None:
    """Fit the compression laws per method and metric, validate, decide, and write index.html + summary.md.

    The table holds the law variables (model, N, method, metric, direction, r, D, L0, L, S, S0, status) or other column names mapped with --map. A group that cannot be fitted is recorded with its reason; the exit code is 2 when no group could be fitted (or, with --strict, when any form of any group failed).
    """  # one line: typer keeps the line breaks of a help paragraph
    from complaw.laws.data import parse_mapping
    from complaw.laws.forms import DUnit
    from complaw.report.analysis import NUnit
    from complaw.report.build import build_report

    if source is None:
        raise ComplawError("no results table given; pass a CSV/Parquet/JSONL/SQLite file")
    check_table_args(bootstrap=bootstrap, d_scale=d_scale, eps=eps, sigma=sigma)
    out = out or Path("reports") / source.stem
    output_path(out, "--out", directory=True)
    groups = None
    if group is not None:
        groups = [] if group.strip().lower() in ("none", "") else [g.strip() for g in group.split(",") if g.strip()]
    rep = build_report(source, out, forms=tuple(form or DEFAULT_FORMS), sigmas=tuple(sigma or (0.8, 0.9)),
                       unit=DUnit(d_unit, d_scale, eps), bootstrap=bootstrap, title=title, table=table,
                       figures=figures, mapping=parse_mapping((mapping or []) + (pairs or [])),
                       direction=direction, group=groups, n_unit=NUnit.parse(n_unit), interval=interval,
                       weights=weights)
    for line in rep.summary_lines():
        typer.echo(line)
    a = rep.analysis
    failed = [(g, f, why) for g in a.groups for f, why in g.fit_errors.items()]
    if a.groups and not any(g.fits for g in a.groups):
        g, f, why = failed[0]
        raise ComplawError(f"{a.source} [{g.label}]: no law could be fitted to any group ({f}: {why}); "
                           f"the report lists every reason ({rep.html})")
    if strict and failed:
        g, f, why = failed[0]
        raise ComplawError(f"--strict: {len(failed)} fit(s) could not be made; first, {g.label} {f}: {why}")
