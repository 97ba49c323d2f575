"""``complaw sweep`` (run or resume a grid of experiments) and ``complaw results`` (list, filter, export).

The sweep machinery (torch, the recipe) is imported inside the commands, so the CLI starts without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from complaw.cli import app
from complaw.errors import ComplawError

console = Console(width=None if Console().is_terminal else 140)


@app.command("sweep")
def sweep_command(
    spec: Annotated[str, typer.Argument(help="Sweep spec (YAML file) or a preset: quick, demo, real-quick (SmolLM2, ~10 min), real (the study on SmolLM2, ~1 h).")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides, e.g. ratios=[0.2,0.4] rft.lr=1e-3.",
                                                          show_default=False)] = None,
    executor: Annotated[str, typer.Option(help="local, or ray (units as Ray tasks).")] = "local",
    address: Annotated[str | None, typer.Option(help="Ray cluster address (default: start a local Ray).")] = None,
    retry_failed: Annotated[bool, typer.Option(help="Run again the experiments stored as failed.")] = False,
    no_report: Annotated[bool, typer.Option("--no-report", help="Skip fitting and the report.")] = False,
) -> None:
    """Run a sweep (resuming whatever the store already holds), then fit the laws and write the report."""
    from complaw.sweep import load_spec, run_sweep

    s = load_spec(spec, overrides)
    try:
        result = run_sweep(s, executor=executor, address=address, retry_failed=retry_failed, report=not no_report,
                           console=console)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    c = result.counts
    console.print(f"done in {result.wall_s:.0f}s: {result.units_run} units run, {result.units_skipped} already "
                  f"stored; experiments: " + ", ".join(f"{v} {k}" for k, v in sorted(c.items())))
    for line in result.summary:  # ends with the report's path
        console.print(line, highlight=False)


@app.command("results")
def results_command(
    store: Annotated[Path, typer.Argument(help="The SQLite results store.")] = Path("complaw_results/results.db"),
    status: Annotated[str | None, typer.Option(help="Only this status: success, failed, invalid.")] = None,
    model: Annotated[str | None, typer.Option(help="Only this base model.")] = None,
    method: Annotated[str | None, typer.Option(help="Only this compression method.")] = None,
    law_rows: Annotated[bool, typer.Option("--law-rows", help="The law engine's rows (one per metric).")] = False,
    export: Annotated[Path | None, typer.Option(help="Write to .csv or .parquet instead of printing.")] = None,
    limit: Annotated[int, typer.Option(help="Rows to print.")] = 50,
) -> None:
    """List, filter and export the experiments of a results store."""
    from complaw.sweep import ResultStore

    if not store.is_file():
        raise ComplawError(f"{store}: no such results store; run `complaw sweep` first or name the .db file")
    with ResultStore(store) as st:
        frame = st.law_frame() if law_rows else st.frame()
    ratio_col = "r" if law_rows else "ratio"
    for col, value in (("status", status), ("model", model), ("method", method)):
        if value is not None:
            frame = frame[frame[col] == value]
    if export is not None:
        if export.suffix == ".csv":
            frame.to_csv(export, index=False)
        elif export.suffix in (".parquet", ".pq"):
            frame.to_parquet(export, index=False)
        else:
            raise ComplawError(f"--export {export}: use a .csv or .parquet file name")
        console.print(f"wrote {len(frame)} rows to {export}")
        return
    t = Table(title=f"{store} — {len(frame)} rows")
    cols = (["model", "method", ratio_col, "D", "metric", "L0", "L", "status"] if law_rows else
            ["model", "method", ratio_col, "rft_samples", "status", "param_reduction", "test_loss", "avg_acc",
             "peak_rss_mb", "error"])
    for col in cols:
        t.add_column(col)
    for _, row in frame.head(limit).iterrows():
        t.add_row(*[("" if row[c] is None else f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c]))
                    for c in cols])
    console.print(t)
