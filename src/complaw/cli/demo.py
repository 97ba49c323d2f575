"""``complaw demo``: the main job on the embedded default, the zoo (or the law engine alone on the example table).

The demo composes the same pieces the other commands use (:func:`complaw.cli.sweep.sweep_and_report`, the law
views of :mod:`complaw.cli.laws`); it never calls another command.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from complaw.checks import output_path
from complaw.cli import laws
from complaw.cli.options import console
from complaw.cli.sweep import sweep_and_report


def demo_cmd(
    preset: Annotated[str, typer.Option(help="Sweep preset: demo (the main job, < 10 min on 2 cores) or quick.")] = "demo",
    example: Annotated[bool, typer.Option("--example", help="Only the law engine, on the bundled example table.")] = False,
    out: Annotated[Path | None, typer.Option(help="Report directory (default reports/<preset>).")] = None,
) -> int:
    """The main job: a compression-law study on the bundled model zoo — sweep, fit, decide, report.

    Runs the demo sweep preset (three Llama sizes, PruneNet and SliceGPT, five ratios, three RFT budgets),
    stores every experiment in complaw_results/results.db (a rerun is near-instant), fits the laws and writes
    the report to reports/demo. With --example it runs the law engine alone on the bundled (synthetic) example
    table instead (complaw zoo example writes that table out).
    """
    if example:
        out = out or Path("reports/example")
        output_path(out, "--out", directory=True)
        _example_demo(out)
        return
    return sweep_and_report(preset, [f"report={out}"] if out is not None else [])


def _example_demo(out: Path) -> None:
    from complaw.data import example_table_path
    from complaw.laws import DUnit, compare, fit_groups, load_results
    from complaw.laws.validate import SCHEMES

    path = example_table_path()
    console.rule(f"complaw demo — law engine on {path.name}")
    forms = ["sengupta2025", "sengupta2025-L0-r", "pruning-law", "talk"]
    unit = DUnit("M-tokens")
    ld, items = laws.fit_table(path, forms=forms, unit=unit, bootstrap=1000)
    laws.show_fits(ld, items, [0.8, 0.9])
    laws.show_validations(ld, ["sengupta2025"], list(SCHEMES), laws.grouping(ld, None), unit=unit)
    ld, items = laws.fit_table(path, forms=["sengupta2025"], group="method,metric", unit=unit, bootstrap=1000)
    fitted, failures = laws.split_laws(ld, items)
    laws.show_decisions(fitted, failures, [0.8], [0.1, 0.2, 0.3])
    at, failures = laws.fitted_speed_laws(ld, group="method")
    laws.show_speedups(at, failures, [0.3, 0.6])
    out.mkdir(parents=True, exist_ok=True)
    ld = load_results(path)
    results = fit_groups(ld, ["sengupta2025", "sengupta2025-L0-r", "pruning-law", "talk"],
                         unit=DUnit("M-tokens"), bootstrap=200)
    (out / "fits.json").write_text(json.dumps([r.to_dict() for r in results], indent=2))
    compare(results).to_csv(out / "comparison.csv", index=False)
    console.print(f"\nwrote {out / 'fits.json'} and {out / 'comparison.csv'}")
    from complaw.report import build_report

    rep = build_report(path, out / "report", unit=DUnit("M-tokens"), bootstrap=200,
                       title="complaw demo: compression laws of the bundled example table")
    console.print("\n".join(rep.summary_lines()), highlight=False)
