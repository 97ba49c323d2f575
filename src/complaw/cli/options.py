"""What the commands that read a results table share: their options, the bounds on the work they may ask
for, and the checks of their numbers (made before any work).

Only typer and rich are imported here, so every command module can use these without slowing the CLI's start.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from complaw.checks import MAX_BOOTSTRAP, number, work_bound
from complaw.checks import seed as checks_seed
from complaw.errors import ComplawError

if TYPE_CHECKING:
    from complaw.laws.data import LawData

# Tables are wide: when piped, rich would fall back to 80 columns.
console = Console(width=None if Console().is_terminal else 140)

#: Validation schemes (as complaw.laws.validate.SCHEMES; spelled out here so --help needs no pandas).
SCHEME_NAMES = ("leave-one-model-out", "small-to-large", "leave-one-ratio-out", "leave-one-method-out")
DIRECTION_TEXT = ("higher (also max, 1: higher is better, e.g. accuracy) or lower (also min, 0: e.g. loss, "
                  "perplexity)")

# --- options shared by the commands that read a results table ------------------------------------------
DataArg = Annotated[Path | None, typer.Argument(help="Results table: CSV, TSV, Parquet, JSONL, JSON or SQLite.",
                                                show_default=False)]
PairsArg = Annotated[list[str] | None, typer.Argument(help="More VARIABLE=COLUMN pairs, as after --map.",
                                                      show_default=False)]
MapOpt = Annotated[list[str] | None, typer.Option(
    "--map", "-m", help="Column mapping VARIABLE=COLUMN (L, L0, r, D, S, S0, model, method, metric, direction, N); "
    "repeat, or list several: --map L=acc L0=base r=ratio D=rft_samples.")]
FormOpt = Annotated[list[str] | None, typer.Option(
    "--form", "-f", help="Law form(s) to fit (see `complaw forms`); +1 adds an intercept, +0 removes it.")]
GroupOpt = Annotated[str | None, typer.Option(
    "--group", "-g", help="Comma-separated columns to fit one law per group (default: method,metric; 'none' pools).")]
DirOpt = Annotated[str | None, typer.Option(
    "--direction", help=f"Metric direction: {DIRECTION_TEXT}. Default: a direction column (same values), else "
    "the metric's name (acc… higher; …loss, ppl lower). A --direction that contradicts a metric's name or the "
    "direction column is an error naming both.")]
TableOpt = Annotated[str | None, typer.Option("--table", help="Table to read from a SQLite file.")]
DUnitOpt = Annotated[str, typer.Option("--d-unit", help="The unit of D seen by the law. On complaw's own store "
                                       "(D in samples and tokens) it converts: samples, tokens, k-tokens, M-tokens, "
                                       "100-samples…; on any other table it names the unit D is already in.")]
DScaleOpt = Annotated[float, typer.Option("--d-scale", help="Raw D units per law unit (D_law = D / scale).")]
EpsOpt = Annotated[float, typer.Option("--eps", help="ε in the recovery factor 1 + 1/(D+ε).")]
RobustOpt = Annotated[bool, typer.Option("--robust", help="Summed Huber loss on log residuals instead of OLS.")]
#: Bounds on the work one argument can ask for (stated in --help).
MIN_R_STEP = 1e-4
#: Most (draw × ratio) evaluations one plan may ask for: each bootstrap draw re-solves the plan on the whole ratio
#: grid (~10 µs each on one core, so about 20 s per group at the bound).
MAX_PLAN_WORK = 2_000_000
MAX_FRONTIER = 10_000
#: |exponent| bound of a speed law given by hand (beyond it, (1+r)^b overflows or means nothing).
MAX_EXPONENT = 100.0
BootOpt = Annotated[int, typer.Option("--bootstrap", "-B", help="Bootstrap resamples (or model-based draws for "
                                      f"decisions with --interval ols); 0 for none, at most {MAX_BOOTSTRAP:,}.")]
ClusterOpt = Annotated[str | None, typer.Option("--cluster", help="Column resampled as a cluster in the bootstrap "
                                                "(default: model, when the table has it).", show_default=False)]
IntervalOpt = Annotated[str, typer.Option(
    "--interval", help="Intervals: auto (cluster bootstrap by base model with ≥ 2 clusters, flagged rough below "
    "10; model-based OLS with one cluster; row bootstrap without a cluster column), cluster, rows, or ols.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the bootstrap and robust starts (0 … 2**32-1).")]
DropOpt = Annotated[bool, typer.Option("--drop-invalid", help="Set invalid rows aside (counted) instead of stopping.")]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Exit 2 when any group could not be fitted "
                                         "(default: 2 only when none could).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
SigmaOpt = Annotated[list[float] | None, typer.Option("--sigma", "-s", help="Target retention(s) in (0, 1).")]


def load_table(data: Path | None, pairs: list[str] | None, mapping: list[str] | None, table: str | None) -> LawData:
    from complaw.laws.data import load_results, parse_mapping

    if data is None:
        raise ComplawError("no results table given; pass a CSV/Parquet/JSONL/SQLite file (or the law's parameters)")
    ld = load_results(data, mapping=parse_mapping((mapping or []) + (pairs or [])), table=table)
    if not any(v in ld.frame.columns for v in ("L", "L0", "r", "S", "S0")):
        have = ", ".join(map(str, ld.frame.columns)) or "none"
        raise ComplawError(f"{ld.source}: no law columns (L, L0, r; or S, S0, r for a speed law); columns are "
                           f"{have}; map them with --map L=COLUMN L0=COLUMN r=COLUMN")
    return ld


def check_table_args(*, bootstrap: int = 0, seed: int = 0, d_scale: float = 1.0, eps: float = 1.0,
                sigma: list[float] | float | None = None, **finite: float | list[float] | None) -> None:
    """The numeric arguments every table command shares, checked before any work; ``finite`` names further
    arguments (``--beta``…) that only need to be finite numbers."""
    number(bootstrap, "--bootstrap", lo=0, integer=True)
    work_bound(bootstrap, "--bootstrap", MAX_BOOTSTRAP, what="resamples")
    checks_seed(seed)
    number(d_scale, "--d-scale", lo=0, lo_open=True, hint="raw D units per law unit, e.g. 1e6")
    number(eps, "--eps", lo=0, hint="ε in 1 + 1/(D+ε), e.g. 1")
    for s in [sigma] if isinstance(sigma, (int, float)) else sigma or []:
        number(s, "--sigma", lo=0, hi=1, lo_open=True, hi_open=True, hint="a target retention such as 0.9")
    for name, value in finite.items():
        for v in value if isinstance(value, list) else [value]:
            if v is not None:
                number(v, "--" + name.replace("_", "-"))


def check_ratios(r: list[float] | None) -> None:
    for x in r or []:
        number(x, "--r", lo=0, hi=1, hi_open=True, hint="a compression ratio such as 0.3")
