"""``complaw capacity FORMAT…``: GMSE, effective bits, capacity ρ and the bridge r_eff of formats.

    $ complaw capacity int4-g128 mxfp4 nvfp4 sparse-0.5 2:4 --r 0.2
    $ complaw capacity fp8-e4m3 --json
"""

from __future__ import annotations

import json
import math
from typing import Annotated

import typer

from complaw.checks import number, work_bound

#: Monte Carlo samples: at least one row of the estimator, at most 2**28 (2**25 took 3.1 s wall on 2 cores; 2**28 is estimated at ~10-20 s per format).
MIN_SAMPLES, MAX_SAMPLES = 4096, 2**28


def _num(v: float, fmt: str = ".4g") -> str:
    return "inf" if math.isinf(v) else format(v, fmt)


def capacity_cmd(
    formats: Annotated[list[str], typer.Argument(help="format names, e.g. int4-g128 int8-channel fp4 mxfp4 nvfp4 "
                                                      "fp8-e4m3 sparse-0.5 2:4 2:4+int4-g128")],
    r: Annotated[float, typer.Option("--r", help="structured pruning ratio in [0, 1) combined with the format")] = 0.0,
    samples: Annotated[int, typer.Option(help=f"Monte Carlo samples for data-dependent scales ({MIN_SAMPLES:,} … "
                                              f"{MAX_SAMPLES:,})")] = 4 * 1024 * 1024,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON rows instead of a table")] = False,
) -> None:
    """GMSE (vs N(0,1), optimal scale), effective bits, capacity ρ and r_eff = 1 − (1 − r)·ρ per format."""
    from complaw.capacity import describe_format, get_format

    number(r, "--r", lo=0, hi=1, hi_open=True, hint="a structured pruning ratio such as 0.2")
    number(samples, "--samples", lo=MIN_SAMPLES, integer=True, hint=f"at least {MIN_SAMPLES:,}")
    work_bound(samples, "--samples", MAX_SAMPLES, what="Monte Carlo samples per format")
    for f in formats:
        get_format(f)  # fail fast, before any Monte Carlo, on an unknown name
    rows = [describe_format(f, r=r, samples=samples) for f in formats]
    if as_json:
        typer.echo(json.dumps([{k: (None if isinstance(v, float) and math.isinf(v) else v) for k, v in row.items()}
                               for row in rows], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"capacity of compressed formats (r = {r:g})")
    for col in ("format", "method", "bits", "GMSE", "± se", "eff. bits", "4^-bits", "ρ", "r_eff"):
        table.add_column(col, justify="left" if col in ("format", "method") else "right")
    for row in rows:
        table.add_row(row["format"], row["method"], _num(row["bits"], ".3f"), _num(row["gmse"]),
                      _num(row["gmse_stderr"], ".1e"), _num(row["effective_bits"], ".3f"),
                      _num(row["shannon_bound"], ".2e"), _num(row["rho"]), _num(row["r_eff"]))
    Console(width=max(Console().width, 120)).print(table)
