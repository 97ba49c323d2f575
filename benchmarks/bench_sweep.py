"""Orchestration overhead of a sweep: its wall time against the sum of its jobs' own compute.

Runs a sweep preset (default: demo) into a fresh temporary store, then prints side by side the sweep's
wall time (validation, scheduling, storing every record — the report excluded and timed on its own) and
the summed wall time of its jobs measured inside them. Target: overhead ≤ 10%.

    python benchmarks/bench_sweep.py [--preset demo] [key=value overrides …]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console

from complaw.report.build import sweep_report
from complaw.sweep import ResultStore, load_spec, run_sweep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="demo")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        spec = load_spec(args.preset, [f"store={Path(tmp) / 'results.db'}", f"report={Path(tmp) / 'report'}",
                                       *args.overrides])
        res = run_sweep(spec, console=Console(quiet=True), show_progress=False)
        t = time.perf_counter()
        with ResultStore(spec.store, readonly=True) as store:
            sweep_report(store.law_frame(), spec)
        report_s = time.perf_counter() - t
    overhead = res.wall_s - res.compute_s
    print(f"preset {args.preset}: {res.units_run} units, experiments {res.counts}")
    print(f"{'sweep wall time (no report)':<40}{res.wall_s:>9.1f} s")
    print(f"{'sum of the jobs own compute':<40}{res.compute_s:>9.1f} s")
    print(f"{'orchestration overhead':<40}{overhead:>9.1f} s  ({overhead / res.compute_s:.1%} of compute; "
          f"target ≤ 10%: {'met' if overhead <= 0.1 * res.compute_s else 'MISSED'})")
    print(f"{'report (fits, bootstrap, figures)':<40}{report_s:>9.1f} s")


if __name__ == "__main__":
    main()
