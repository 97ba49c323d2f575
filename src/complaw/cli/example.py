"""``complaw zoo example``: the bundled example results table, written where you can fit it.

The table is *synthetic* — drawn from known exponents by ``scripts/make_example_table.py`` — so a user can fit,
validate, plan and report before running any experiment:

    complaw zoo example --out example.csv && complaw fit example.csv
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

import typer

from complaw.checks import output_path
from complaw.errors import ComplawError


def example_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the table (CSV); an existing file is "
                                      "never overwritten.")] = Path("example_results.csv"),
) -> None:
    """Write the bundled example results table (synthetic: 8 model sizes, 0.5B–32B × 2 methods × 2 metrics, known exponents).

    Its columns already carry the law's names (model, N, method, metric, direction, r, D, L0, L, S, S0, status), so
    `complaw fit FILE`, `validate`, `critical`, `plan` and `report` read it without --map. D is in millions of
    tokens: give `--d-unit M-tokens` to label it.
    """
    from complaw.data import example_table_path

    source = example_table_path()
    data = source.read_bytes()
    path = output_path(out, "--out")
    if path.exists():
        if path.is_file() and hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(data).digest():
            typer.echo(f"{path}: already holds the example table")
            return
        raise ComplawError(f"--out {out}: exists and is not the example table; choose a new file name")
    path.write_bytes(data)
    rows = data.count(b"\n") - 1
    typer.echo(f"wrote {rows} rows to {path} (synthetic: drawn from known exponents)")
