"""Reading result tables for the law engine: files, column mapping, metric direction, validation.

Users' tables come with their own column names; a mapping such as ``L=value L0=base r=ratio
D=rft_samples`` renames them to the law variables below. Every check names the input, what is wrong and
what would be right (:class:`~complaw.errors.ComplawError`); nothing is silently dropped — rows the
engine sets aside (failed experiments, or invalid rows under ``drop_invalid``) are counted and reported.

    >>> data = load_results("results.csv", mapping={"L": "acc", "L0": "base_acc", "r": "ratio"})
    >>> frame, dropped = data.rows_for(get_form("sengupta2025-L0-r"))
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd

from complaw.checks import STORE_UNITS, unit_parts
from complaw.errors import ComplawError
from complaw.laws.forms import HIGHER, LOWER, LawForm

#: The law variables a table can provide, with what they mean.
VARIABLES: dict[str, str] = {
    "L": "metric after compression (and RFT)",
    "L0": "the same metric of the uncompressed base model",
    "r": "compression ratio in [0, 1) (the method's own setting)",
    "D": "recovery fine-tuning data, in the unit given to the fit",
    "S": "runtime (latency) of the compressed model",
    "S0": "runtime of the uncompressed base model",
    "model": "base-model id (bootstrap cluster; leave-one-model-out)",
    "method": "compression method (laws are fitted per method by default)",
    "metric": "metric/task name (laws are fitted per metric by default)",
    "direction": "metric direction per row: higher/max/1 or lower/min/0 (is better)",
    "N": "base-model size, in parameters unless a unit is given (--n-unit)",
}
NUMERIC = ("L", "L0", "r", "D", "S", "S0", "N")
POSITIVE = ("L", "L0", "S", "S0", "N")  # used under a log, or a size

_HIGHER_WORDS = ("acc", "accuracy", "f1", "exact", "score", "bleu", "rouge", "retention", "speedup", "mcc")
#: Higher-is-better quantities that are not confined to [0, 1] even when a table's values happen to be.
_UNBOUNDED_WORDS = ("retention", "speedup", "ratio", "bleu", "rouge", "score", "mcc")
_LOWER_WORDS = ("loss", "ppl", "perplexity", "nll", "ce", "cross_entropy", "error", "latency", "runtime", "time")
_DIRECTION_ALIASES = {
    "higher": HIGHER, "higher_is_better": HIGHER, "max": HIGHER, "up": HIGHER, "+": HIGHER, "1": HIGHER,
    "true": HIGHER,
    "lower": LOWER, "lower_is_better": LOWER, "min": LOWER, "down": LOWER, "-": LOWER, "0": LOWER, "false": LOWER,
}
#: How the direction values read, for --help and messages.
DIRECTION_HELP = "higher (also max, 1: higher is better, e.g. accuracy) or lower (also min, 0: e.g. loss, perplexity)"
_OK_STATUS = ("success", "ok", "done", "")


def read_table(path: str | Path, table: str | None = None) -> pd.DataFrame:
    """Read CSV/TSV, Parquet, JSON Lines, JSON records or a SQLite table into a DataFrame of plain cells."""
    return _plain_cells(_read_any(path, table), Path(path))


def _plain_cells(frame: pd.DataFrame, p: Path) -> pd.DataFrame:
    """Refuse a cell that holds a container (a JSON object or list, a Parquet list): every cell of a results table
    is one number or one string, and pandas would fail on it far from here (grouping, hashing)."""
    for col in frame.columns:
        if frame[col].dtype != object:
            continue
        nested = frame[col].map(lambda v: isinstance(v, (dict, list, tuple, set, np.ndarray))).to_numpy()
        if nested.any():
            i = int(np.flatnonzero(nested)[0])
            raise ComplawError(f"{p}: column {show(col)} holds a {type(frame[col].iloc[i]).__name__}, not a plain "
                               f"value, in {int(nested.sum())} row(s), first data row {i + 1} "
                               f"({show(frame[col].iloc[i])}); every cell must be one number or string")
    return frame


def _read_any(path: str | Path, table: str | None) -> pd.DataFrame:
    p = Path(path)
    if p.is_dir():  # an empty argument reads as "."
        raise ComplawError(f"{p if str(p) != '.' else repr(str(path))}: is a directory, not a results file; give "
                           "a CSV, Parquet, JSONL or SQLite file of results")
    if not p.is_file():
        raise ComplawError(f"{p}: no such file; give a CSV, Parquet, JSONL or SQLite file of results")
    suffix = "".join(p.suffixes[-2:]).lower() if p.suffix == ".gz" else p.suffix.lower()
    if table is not None and suffix not in (".db", ".sqlite", ".sqlite3"):
        raise ComplawError(f"--table {table!r}: {p} is a {suffix.lstrip('.') or 'plain'} file, which holds one "
                           "table; --table picks a table of a SQLite file (.db, .sqlite)")
    try:
        if suffix in (".csv", ".csv.gz", ".txt"):
            return pd.read_csv(p)
        if suffix in (".tsv", ".tsv.gz"):
            return pd.read_csv(p, sep="\t")
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(p)
        if suffix in (".jsonl", ".ndjson", ".jsonl.gz"):
            return pd.read_json(p, lines=True)
        if suffix == ".json":
            return pd.read_json(p)
        if suffix in (".db", ".sqlite", ".sqlite3"):
            return _read_sqlite(p, table)
    except ComplawError:
        raise
    except ImportError as err:
        raise ComplawError(f"{p}: reading {suffix} needs an optional package ({err.name}); "
                           "pip install 'complaw[parquet]'") from None
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, sqlite3.Error, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ComplawError(f"{p}: could not be read as {suffix.lstrip('.')} ({first})") from None
    raise ComplawError(
        f"{p}: unknown file type {suffix!r}; use .csv, .tsv, .parquet, .jsonl, .json or .db/.sqlite"
    )


def _read_sqlite(path: Path, table: str | None) -> pd.DataFrame:
    con = _connect_readonly(path)
    try:
        tables = [row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type IN ('table','view')")]
        if table is None and "law_rows" in tables:  # a complaw results store
            table = "law_rows"
        if table is None:
            if len(tables) != 1:
                raise ComplawError(
                    f"{path}: holds {len(tables)} tables ({', '.join(tables) or 'none'}); name one with --table"
                )
            table = tables[0]
        if table not in tables:
            raise ComplawError(f"{path}: no table {table!r}; tables are {', '.join(tables) or 'none'}")
        # The name was checked against sqlite_master, so quoting it is safe.
        quoted = '"' + table.replace('"', '""') + '"'
        return pd.read_sql_query(f"SELECT * FROM {quoted}", con)
    finally:
        con.close()


#: Largest |value| accepted in a law column (the laws raise values to powers: 1e308 would overflow).
MAX_MAGNITUDE = 1e100


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """Open ``path`` so that nothing can be created or changed: a read-only SQLite URI, its name quoted (a
    '#' or '?' in it would otherwise end the name, and SQLite would open, and create, another file)."""
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    con = sqlite3.connect(uri, uri=True)
    try:
        con.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as err:
        con.close()
        if "locked" in str(err):
            raise
        # a WAL database in a directory this user cannot write (its -shm cannot be made): read it as it is
        con = sqlite3.connect(uri + "&immutable=1", uri=True)
    return con


def parse_mapping(items: list[str] | str | None) -> dict[str, str]:
    """Parse ``["L=value", "L0=base r=ratio", "D=rft,model=name"]`` into ``{variable: column}``."""
    if not items:
        return {}
    if isinstance(items, str):
        items = [items]
    out: dict[str, str] = {}
    for item in items:
        text = str(item).strip()
        # one VARIABLE=COLUMN per item keeps the column whole (``L=acc (avg)``); several are split on blanks/commas
        pairs = [text] if text.count("=") == 1 else text.replace(",", " ").split()
        for pair in pairs:
            key, sep, column = pair.partition("=")
            key, column = key.strip(), column.strip()
            if not sep or not key or not column:
                raise ComplawError(f"--map {pair!r}: expected VARIABLE=COLUMN, e.g. L=accuracy")
            if key not in VARIABLES:
                raise ComplawError(
                    f"--map {pair!r}: {key!r} is not a law variable; use one of {', '.join(VARIABLES)}"
                )
            out[key] = column
    return out


def plain(value):
    """A cell value as plain Python for messages: ``0`` not ``np.int64(0)``, ``nan`` not ``np.float64(nan)``."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def show(value) -> str:
    """``repr`` of :func:`plain` (strings keep their quotes; ``nan`` and numbers are bare)."""
    v = plain(value)
    return repr(v) if isinstance(v, str) else str(v)


def normalise_direction(value, where: str = "direction") -> str:
    """``higher``/``lower`` from a direction value: higher/max/1 or lower/min/0 (and a few synonyms)."""
    v = plain(value)
    key = str(v).strip().lower().replace("-", "_").replace(" ", "_")
    if key not in _DIRECTION_ALIASES:
        raise ComplawError(f"{where} {show(value)}: use {DIRECTION_HELP}")
    return _DIRECTION_ALIASES[key]


def infer_direction(metric: str) -> str | None:
    """Direction from a metric name (``acc_norm`` → higher, ``test_loss`` → lower), or None."""
    words = str(metric).lower().replace("-", "_").replace("/", "_").split("_")
    if any(w in _LOWER_WORDS for w in words):
        return LOWER
    if any(w in _HIGHER_WORDS for w in words):
        return HIGHER
    return None


@dataclass(frozen=True)
class LawData:
    """A results table in law variables, with what was set aside on the way.

    Attributes:
        frame: the rows, with law-variable columns (``L``, ``L0``, ``r``, …) plus the user's other columns.
        source: where the rows came from (for messages).
        dropped: rows set aside, by reason.
        renamed: law variable → the user's column it came from (for messages).
    """

    frame: pd.DataFrame
    source: str = "table"
    dropped: dict[str, int] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)

    def label(self, variable: str) -> str:
        """How to name a column in a message: ``'r' (column 'ratio')``."""
        col = self.renamed.get(variable)
        return f"{variable!r} (column {col!r})" if col and col != variable else repr(variable)

    @property
    def columns(self) -> list[str]:
        return list(self.frame.columns)

    def groups(self, by: list[str]) -> list[tuple[dict[str, str], LawData]]:
        """Split into one LawData per combination of the ``by`` columns (all rows when ``by`` is empty)."""
        for col in by:
            if col not in self.frame.columns:
                raise ComplawError(
                    f"--group {col!r}: no such column in {self.source}; columns are {', '.join(map(str, self.frame.columns))}"
                )
        if not by:
            return [({}, self)]
        out = []
        for key, sub in self.frame.groupby(by, sort=True, dropna=False):
            key = key if isinstance(key, tuple) else (key,)
            out.append(({c: str(k) for c, k in zip(by, key, strict=True)},
                        LawData(sub.reset_index(drop=True), self.source, dict(self.dropped), self.renamed)))
        return out

    def direction(self, given: str | None = None) -> str:
        """The one metric direction of these rows: given, from a ``direction`` column, or from ``metric``."""
        if given is not None:
            return normalise_direction(given, "--direction")
        if "direction" in self.frame.columns:
            col = self.frame["direction"]
            empty = col.isna() | (col.astype(str).str.strip() == "")
            if empty.all():
                raise ComplawError(
                    f"{self.source}: the {self.label('direction')} column is empty in every row; fill it with "
                    "higher or lower, or pass --direction higher|lower")
            if empty.any():
                raise ComplawError(
                    f"{self.source}: the {self.label('direction')} column is empty in {int(empty.sum())} of "
                    f"{len(col)} row(s), first data row {int(np.flatnonzero(empty.to_numpy())[0]) + 1}; fill it "
                    "with higher or lower, or pass --direction higher|lower")
            found = {normalise_direction(v, f"{self.source}: direction value") for v in col.unique()}
        elif "metric" in self.frame.columns:
            found = set()
            for m in self.frame["metric"].dropna().unique():
                d = infer_direction(m)
                if d is None:
                    raise ComplawError(
                        f"metric {show(m)}: cannot tell whether higher or lower is better; "
                        "pass --direction higher|lower or add a direction column"
                    )
                found.add(d)
        else:
            raise ComplawError(
                f"{self.source}: metric direction unknown; pass --direction higher|lower "
                "or provide a direction (or metric) column"
            )
        if len(found) != 1:
            raise ComplawError(
                f"{self.source}: rows mix higher- and lower-is-better metrics; group by metric (--group metric)"
            )
        return found.pop()

    def rows_for(self, form: LawForm, *, drop_invalid: bool = False, need_target: bool = True):
        """The rows usable by ``form``: columns present, numeric, finite, in range.

        Returns:
            ``(frame, dropped)``: the checked rows (law columns as floats) and the counts set aside here.

        Raises:
            ComplawError: for a missing column, or (unless ``drop_invalid``) any invalid cell.
        """
        needed = [c for c in form.columns if need_target or c != form.target]
        missing = [c for c in needed if c not in self.frame.columns]
        if missing:
            have = ", ".join(map(str, self.frame.columns))
            raise ComplawError(
                f"{self.source}: form {form.name} needs column {missing[0]!r} ({VARIABLES.get(missing[0], '')}); "
                f"columns are {have}; map one with --map {missing[0]}=COLUMN"
            )
        frame = self.frame.copy()
        bad = np.zeros(len(frame), dtype=bool)
        reasons: dict[str, int] = {}
        for col in needed:
            raw = frame[col]
            values = pd.to_numeric(raw, errors="coerce")
            nonnum = values.isna() & raw.notna()
            if nonnum.any():  # only text cells can be non-numeric; "", "nan", "none" count as empty
                nonnum &= ~raw.astype(str).str.strip().str.lower().isin(["nan", "", "none"])
            checks = [
                (nonnum, "is not a number", "every cell must be a number"),
                (values.isna() & ~nonnum, "is empty (NaN)", "fill it or pass --drop-invalid"),
                (np.isinf(values.fillna(0.0)), "is infinite", "every cell must be finite"),
                # a power of 1e308 overflows: values this far out are a unit or parsing mistake, not a result
                (values.abs().fillna(0.0) > MAX_MAGNITUDE, f"is beyond ±{MAX_MAGNITUDE:g}",
                 "check the column's units"),
            ]
            if col in POSITIVE:
                checks.append((values <= 0, "is ≤ 0", "values under a log must be > 0"))
            if col == "r":
                checks.append(((values < 0) | (values >= 1), "lies outside [0, 1)", "ratios lie in [0, 1)"))
            if col == "D":
                checks.append((values < 0, "is negative", "recovery data D must be ≥ 0"))
            for mask, what, fix in checks:
                mask = np.asarray(mask.fillna(False) if hasattr(mask, "fillna") else mask, dtype=bool) & ~bad
                if mask.any():
                    if not drop_invalid:
                        row = int(np.flatnonzero(mask)[0])
                        cell = raw.iloc[row]
                        raise ComplawError(
                            f"{self.source}: {self.label(col)} {what} in {int(mask.sum())} row(s), first data row "
                            f"{row + 1} (value {show(cell)}); {fix}"
                        )
                    reasons[f"{col} {what}"] = reasons.get(f"{col} {what}", 0) + int(mask.sum())
                    bad |= mask
            frame[col] = values
        frame = frame.loc[~bad].reset_index(drop=True)
        return frame, reasons


def check_direction(ld: LawData, given: str | None) -> None:
    """An explicit direction must not contradict a metric's name or the direction column.

    ``--direction higher`` on a metric named ``c4_ppl`` would flip every sign verdict; it is an error that
    names both (drop --direction, or fix the column) rather than a silent override.
    """
    if given is None:
        return
    want = normalise_direction(given, "--direction")
    if "direction" in ld.frame.columns:
        for v in ld.frame["direction"].dropna().unique():
            d = normalise_direction(v, f"{ld.source}: direction value")
            if d != want:
                raise ComplawError(
                    f"--direction {given}: contradicts the direction column of {ld.source} (value {show(v)}, "
                    f"i.e. {d} is better); drop --direction to use the column, or correct the column"
                )
    if "metric" in ld.frame.columns:
        for m in ld.frame["metric"].dropna().unique():
            d = infer_direction(m)
            if d is not None and d != want:
                raise ComplawError(
                    f"--direction {given}: contradicts metric {show(m)}, whose name says {d} is better; "
                    "drop --direction (the name decides), or add a direction column if the name misleads"
                )


def apply_mapping(frame: pd.DataFrame, mapping: dict[str, str], name: str) -> pd.DataFrame:
    """Rename the table's columns to law variables (``{variable: column}``), checking both sides."""
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    for var, col in mapping.items():
        if var not in VARIABLES:
            raise ComplawError(f"--map {var}={col}: {var!r} is not a law variable; use one of {', '.join(VARIABLES)}")
        if col not in frame.columns:
            raise ComplawError(
                f"--map {var}={col}: {name} has no column {col!r}; columns are {', '.join(frame.columns)}"
            )
    # A mapped column replaces any same-named column the table already had.
    frame = frame.drop(columns=[c for c in mapping if c in frame.columns and mapping[c] != c])
    frame = frame.rename(columns={col: var for var, col in mapping.items()})
    return frame.loc[:, ~frame.columns.duplicated()]


def load_results(
    source,
    *,
    mapping: dict[str, str] | list[str] | str | None = None,
    table: str | None = None,
) -> LawData:
    """Load a results table (path or DataFrame) and rename its columns to law variables.

    Rows whose ``status`` column says the experiment did not succeed are set aside and counted.

    Args:
        source: a path (CSV/TSV/Parquet/JSONL/JSON/SQLite) or a pandas DataFrame.
        mapping: law variable → the table's column, e.g. ``{"L": "acc", "r": "ratio"}`` (or ``"L=acc r=ratio"``).
        table: the table to read from a SQLite file with several.
    """
    if isinstance(mapping, (list, str)):
        mapping = parse_mapping(mapping)
    mapping = dict(mapping or {})
    if isinstance(source, pd.DataFrame):
        frame, name = source.copy(), "table"
    else:
        frame, name = read_table(source, table), str(source)
    frame = apply_mapping(frame, mapping, name)
    dropped: dict[str, int] = {}
    if "status" in frame.columns:
        ok = frame["status"].fillna("").astype(str).str.strip().str.lower().isin(_OK_STATUS)
        if (~ok).any():
            dropped["status is not success"] = int((~ok).sum())
        frame = frame.loc[ok].reset_index(drop=True)
    if frame.empty:
        raise ComplawError(f"{name}: no rows to fit" + (" (every row's status is not success)" if dropped else ""))
    return LawData(frame.reset_index(drop=True), name, dropped, mapping)


def as_law_data(source, **kwargs) -> LawData:
    return source if isinstance(source, LawData) else load_results(source, **kwargs)


def express_d(ld: LawData, unit_name: str, *, what: str = "--d-unit") -> LawData:
    """D in the unit ``unit_name`` names, where the table says what its D is.

    complaw's own store (its ``law_rows``, or their export) holds D in samples *and* ``D_tokens`` in tokens, so a
    unit such as ``k-tokens`` or ``samples`` converts it: D becomes D_tokens / 1000, or stays in samples. Any
    other table's D is taken to be in the named unit already (``--d-scale`` converts it). The result no longer
    has ``D_tokens``, so expressing it twice changes nothing.
    """
    frame = ld.frame
    if "D_tokens" not in frame.columns or ld.renamed.get("D", "D") != "D" or "D" not in frame.columns:
        return ld
    parts = unit_parts(unit_name)
    if parts is None:
        raise ComplawError(f"{what} {unit_name!r}: {ld.source} is a complaw store, whose D is in samples and tokens; "
                           f"name one of {STORE_UNITS}")
    mult, base = parts
    frame = frame.copy()
    if base == "tokens":
        missing = frame["D_tokens"].isna() & frame["D"].notna()
        if missing.any():
            raise ComplawError(f"{what} {unit_name!r}: {int(missing.sum())} row(s) of {ld.source} have no token "
                               "count; use --d-unit samples")
        frame["D"] = frame["D_tokens"]
    frame["D"] = frame["D"] / mult
    return LawData(frame.drop(columns=["D_tokens"]), ld.source, dict(ld.dropped), dict(ld.renamed))


def runtime_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per runtime measurement. A unit measures the compressed model's runtime once and copies it onto
    every D (RFT does not change the architecture) and every metric's row; rows of one (model, method, r)
    with the same S and S0 are that one measurement. Distinct measurements (seeds, repeated units) stay."""
    keys = [c for c in ("model", "method", "r", "seed", "S", "S0") if c in frame.columns]
    f = frame.copy()
    for col in ("S", "S0", "r", "N"):
        if col in f.columns:
            f[col] = pd.to_numeric(f[col], errors="coerce")
    if not keys or not {"S", "S0"} <= set(keys):
        return f.reset_index(drop=True)
    agg = {c: "first" for c in f.columns if c not in keys and c in ("N", "L0", "noisy", "S_dispersion",
                                                                      "S_ideal_speedup")}
    if not agg:
        return f[keys].drop_duplicates().sort_values(keys).reset_index(drop=True)
    return f.groupby(keys, sort=True, dropna=False).agg(agg).reset_index()


def unit_interval_metric(frame: pd.DataFrame, metric: str | None = None) -> bool:
    """Whether a higher-is-better metric lives in [0, 1] (an accuracy, F1, exact match, a zero-shot task):
    every observed L and L0 lies in [0, 1] and its name is none of :data:`_UNBOUNDED_WORDS`."""
    names = [metric] if metric else (frame["metric"].dropna().astype(str).unique().tolist()
                                    if "metric" in frame.columns else [])
    if any(w in n.lower() for n in names for w in _UNBOUNDED_WORDS):
        return False
    vals = [pd.to_numeric(frame[c], errors="coerce").dropna() for c in ("L", "L0") if c in frame.columns]
    vals = [v for v in vals if len(v)]
    return bool(vals) and all(((v >= 0) & (v <= 1)).all() for v in vals)

