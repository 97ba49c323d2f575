"""CLI command ``complaw report``: fit the laws of a results table and write the report directory.

    complaw report results.db --out reports/study --d-unit M-tokens
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from complaw.cli import app
from complaw.laws import DUnit
from complaw.report import DEFAULT_FORMS, build_report


@app.command("report")
def report_cmd(
    source: Annotated[Path, typer.Argument(
        help="Results table in canonical columns: CSV, TSV, Parquet, JSONL or SQLite (table law_rows by default).",
        show_default=False)],
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Report directory (default: reports/<source name>).")] = None,
    d_unit: Annotated[str, typer.Option("--d-unit", help="Name of the unit of D seen by the law.")] = "samples",
    d_scale: Annotated[float, typer.Option("--d-scale", help="Raw D units per law unit (D_law = D / scale).")] = 1.0,
    eps: Annotated[float, typer.Option("--eps", help="ε in the recovery factor 1 + 1/(D+ε).")] = 1.0,
    bootstrap: Annotated[int, typer.Option("--bootstrap", "-B", help="Bootstrap resamples per fit.")] = 200,
    table: Annotated[str | None, typer.Option("--table", help="Table to read from a SQLite file.")] = None,
    form: Annotated[list[str] | None, typer.Option(
        "--form", "-f", help="Law form(s) to compare (default: " + ", ".join(DEFAULT_FORMS) + ").")] = None,
    sigma: Annotated[list[float] | None, typer.Option(
        "--sigma", "-s", help="Target retention(s) for r_crit and D_min (default 0.8 and 0.9).")] = None,
    title: Annotated[str | None, typer.Option("--title", help="Title of the report.")] = None,
    figures: Annotated[bool, typer.Option("--figures/--no-figures", help="Draw the figures.")] = True,
) -> None:
    """Fit the compression laws per method and metric, validate, decide, and write index.html + summary.md."""
    out = out or Path("reports") / source.stem
    rep = build_report(source, out, forms=tuple(form or DEFAULT_FORMS), sigmas=tuple(sigma or (0.8, 0.9)),
                       unit=DUnit(d_unit, d_scale, eps), bootstrap=bootstrap, title=title, table=table,
                       figures=figures)
    for line in rep.summary_lines():
        typer.echo(line)
