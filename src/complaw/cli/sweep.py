"""``complaw sweep`` (run or resume a grid of experiments) and ``complaw results`` (list, filter, export).

The sweep machinery (torch, the recipe) is imported inside the commands, so the CLI starts without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from complaw.checks import not_inside_checkpoint, output_path
from complaw.errors import ComplawError

console = Console(width=None if Console().is_terminal else 140)


def sweep_command(
    spec: Annotated[str, typer.Argument(help="Sweep spec (YAML file) or a preset: quick, demo, real-quick (SmolLM2, ~6 min once cached), real (the study on SmolLM2, ~1 h).")],
    overrides: Annotated[list[str] | None, typer.Argument(help="key=value overrides, e.g. ratios=[0.2,0.4] rft.lr=1e-3.",
                                                          show_default=False)] = None,
    executor: Annotated[str, typer.Option(help="local, or ray (units as Ray tasks).")] = "local",
    address: Annotated[str | None, typer.Option(help="Ray cluster address (default: start a local Ray).")] = None,
    retry_failed: Annotated[bool, typer.Option(help="Run again the experiments stored as failed.")] = False,
    no_report: Annotated[bool, typer.Option("--no-report", help="Skip fitting and the report.")] = False,
) -> None:
    """Run a sweep (resuming whatever the store already holds), then fit the laws and write the report."""
    return sweep_and_report(spec, overrides, executor=executor, address=address, retry_failed=retry_failed,
                            report=not no_report)


def sweep_and_report(spec: str, overrides: list[str] | None = None, *, executor: str = "local",
                     address: str | None = None, retry_failed: bool = False, report: bool = True) -> int:
    """Load a spec (with overrides), run the sweep, then fit the laws and write its report; print a summary.

    Returns the exit code: 0, 130 when interrupted (Ctrl-C) or 143 when terminated (SIGTERM); either way every
    finished unit is stored, the claims are released and a rerun resumes."""
    from complaw.sweep.run import stop_on_sigterm

    with stop_on_sigterm():
        return _sweep_and_report(spec, overrides, executor=executor, address=address, retry_failed=retry_failed,
                                 report=report)


def _sweep_and_report(spec: str, overrides: list[str] | None, *, executor: str, address: str | None,
                      retry_failed: bool, report: bool) -> int:
    from complaw.sweep import load_spec, run_sweep
    from complaw.sweep.executors import EXECUTORS
    from complaw.sweep.store import ResultStore

    if executor not in EXECUTORS:  # before the spec is read or anything written
        EXECUTORS.get(executor)  # the one-line "unknown; use one of …"
    s = load_spec(spec, overrides)
    report = report and s.report_dir() is not None
    if report:  # a report that cannot be written fails now, not after the sweep
        output_path(s.report_dir(), "report", directory=True)
        not_inside_checkpoint(s.report_dir(), "report")
    output_path(s.store, "store")
    ResultStore.check_writable(s.store)  # a device, a FIFO, another program's database: refused here
    try:
        result = run_sweep(s, executor=executor, address=address, retry_failed=retry_failed, console=console)
    except KeyboardInterrupt as err:  # Ctrl-C (130) or SIGTERM (Terminated, 143): run_sweep said what is stored
        return getattr(err, "exit_code", 130)
    c = result.counts
    console.print(f"done in {result.wall_s:.0f}s: {result.units_run} units run, {result.units_skipped} already "
                  f"stored, {result.units_elsewhere} left to another process; experiments: "
                  + ", ".join(f"{v} {k}" for k, v in sorted(c.items())))
    if report:
        from complaw.report.build import sweep_report

        with ResultStore(s.store, readonly=True) as store:
            frame = store.law_frame()
        _, lines = sweep_report(frame, s)
        for line in lines:  # ends with the report's path
            console.print(line, highlight=False)
    return 0


def results_command(
    store: Annotated[Path, typer.Argument(help="The SQLite results store (opened read-only).")] = Path("complaw_results/results.db"),
    status: Annotated[str | None, typer.Option(help="Only this status: success, failed, invalid (with --law-rows "
                                                    "also excluded; a record that cannot be read: unreadable).")] = None,
    model: Annotated[str | None, typer.Option(help="Only this base model.")] = None,
    method: Annotated[str | None, typer.Option(help="Only this compression method.")] = None,
    law_rows: Annotated[bool, typer.Option("--law-rows", help="The law engine's rows (one per metric).")] = False,
    export: Annotated[Path | None, typer.Option(help="Write to .csv or .parquet instead of printing.")] = None,
    limit: Annotated[int, typer.Option(help="Rows to print (≥ 0).")] = 50,
) -> None:
    """List, filter and export the experiments of a results store (which is only read, never changed)."""
    from complaw import checks
    from complaw.sweep.store import STATUSES, ResultStore

    # Every option is checked before the store is read.
    valid = (*STATUSES, "excluded") if law_rows else (*STATUSES, "unreadable")
    if status is not None and status not in valid:
        raise ComplawError(f"--status {status}: unknown; use one of {', '.join(valid)}")
    if limit < 0:
        raise ComplawError(f"--limit {limit}: must be ≥ 0 (the number of rows to print)")
    if export is not None:
        if export.suffix not in (".csv", ".parquet", ".pq"):
            raise ComplawError(f"--export {export}: use a .csv or .parquet file name")
        checks.output_path(export, "--export")
        checks.not_the_input(export, store, "--export", "the store it reads")
        if export.suffix != ".csv":
            import importlib.util

            if not any(importlib.util.find_spec(m) for m in ("pyarrow", "fastparquet")):  # pandas' engines
                raise ComplawError(f"--export {export}: writing .parquet needs an optional package (pyarrow); "
                                   "pip install 'complaw[parquet]', or export to .csv") from None
    with ResultStore(store, readonly=True) as st:
        frame = st.law_frame() if law_rows else st.frame()
        unreadable = dict(st.unreadable)
    for h, why in list(unreadable.items())[:5]:
        typer.echo(f"warning: store {store}: the record of experiment {h} cannot be read ({why}); listed from "
                   "its columns, status unreadable", err=True)
    if len(unreadable) > 5:
        typer.echo(f"warning: store {store}: {len(unreadable) - 5} more records cannot be read", err=True)
    ratio_col = "r" if law_rows else "ratio"
    for col, value in (("status", status), ("model", model), ("method", method)):
        if value is not None:
            frame = frame[frame[col] == value]
    if export is not None:
        if export.suffix == ".csv":
            def write(path: Path) -> None:
                path.parent.mkdir(parents=True, exist_ok=True)
                frame.to_csv(path, index=False)
        else:
            def write(path: Path) -> None:
                path.parent.mkdir(parents=True, exist_ok=True)
                try:
                    frame.to_parquet(path, index=False)
                except ImportError as err:
                    raise ComplawError(f"--export {export}: writing .parquet needs an optional package "
                                       f"({err.name}); pip install 'complaw[parquet]', or export to .csv") from None
        written = checks.write_or_keep(write, export, "--export")
        console.print(f"wrote {len(frame)} rows to {written}")
        return
    t = Table(title=f"{store} — {len(frame)} rows")
    cols = (["model", "method", ratio_col, "D", "metric", "L0", "L", "status"] if law_rows else
            ["model", "method", ratio_col, "rft_samples", "status", "param_reduction", "test_loss", "avg_acc",
             "peak_rss_mb", "error"])
    for col in cols:
        t.add_column(col)
    for _, row in frame.head(limit).iterrows():
        t.add_row(*[_cell(row[c]) for c in cols])
    console.print(t)


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)
