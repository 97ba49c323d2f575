"""The results store: one SQLite file, one row per experiment keyed by its config hash.

Tables:

- ``experiments``: the full typed record (JSON) with status and error, keyed by ``config_hash``;
- ``bases``: each base model's metrics (L0, base runtime), measured once per evaluation setting;
- ``law_rows``: the records flattened to the law engine's columns (one row per experiment × metric:
  ``model, N, method, metric, direction, r, D, L0, L, S, S0, param_reduction, status, error …``), so
  ``complaw fit results.db`` and ``complaw report results.db`` read the store directly.

Only the sweep's driver writes; every record is committed as soon as its unit finishes, so a killed sweep
loses at most the units in flight.

    >>> store = ResultStore("complaw_results/results.db")
    >>> store.law_frame().query("metric == 'test_loss'")
"""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pandas as pd

from complaw.errors import ComplawError
from complaw.evaluate.extrinsic import primary_score, saturated_tasks
from complaw.recipe import ExperimentRecord, Metrics

SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    config_hash TEXT PRIMARY KEY, sweep TEXT, model TEXT, method TEXT, ratio REAL, rft_samples INTEGER,
    seed INTEGER, status TEXT, error TEXT, finished_at TEXT, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bases (
    base_key TEXT PRIMARY KEY, model TEXT, metrics TEXT NOT NULL, created_at TEXT);
CREATE TABLE IF NOT EXISTS law_rows (
    config_hash TEXT, metric TEXT, sweep TEXT, model TEXT, N REAL, method TEXT, direction TEXT, r REAL,
    D REAL, D_tokens REAL, seed INTEGER, L0 REAL, L REAL, S REAL, S0 REAL, param_reduction REAL,
    status TEXT, error TEXT, L_se REAL, L0_se REAL, noisy INTEGER, S_dispersion REAL, S_ideal_speedup REAL,
    PRIMARY KEY (config_hash, metric));
"""
#: law_rows columns added after the first stores were written: an older store gains them on open, and its
#: rows are derived again from the stored records.
ADDED_COLUMNS = {"L_se": "REAL", "L0_se": "REAL", "noisy": "INTEGER", "S_dispersion": "REAL",
                 "S_ideal_speedup": "REAL"}


def _num(x) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def law_rows_of(record: ExperimentRecord, sweep: str = "", *, exclude_saturated: bool = True) -> list[dict]:
    """A record flattened to one law-engine row per metric (test_loss, avg_acc and each task).

    With ``exclude_saturated`` (the default) a task at ceiling or floor for the base model
    (:func:`~complaw.evaluate.extrinsic.saturated`) is left out of ``avg_acc`` and its row has status
    ``excluded`` with the reason, so that no law is fitted to it."""
    c = record.config
    base, rec = record.base, record.recovered
    common = {
        "config_hash": record.config_hash, "sweep": sweep, "model": c.model, "method": c.method, "r": c.ratio,
        "D": float(c.rft.samples), "D_tokens": float(c.rft.samples * c.rft.seq_len), "seed": c.seed,
        "N": float(base.params) if base else None,
        # S0: the base latency timed in the same unit as S when there is one (older records: the sweep's)
        "S0": _num(record.base_latency_s) if record.base_latency_s is not None else
        (_num(base.latency_s) if base else None),
        "S": _num(rec.latency_s) if rec else None,
        "param_reduction": (record.compression or {}).get("param_reduction"),
        "status": record.status, "error": record.error,
        "noisy": None, "S_dispersion": None, "S_ideal_speedup": None,
    }
    rt = record.runtime
    if rt and common["S0"] and _num(rt.get("speedup")):
        # the interleaved measurement: S0/S is the median of the per-round speedups, not a ratio of medians
        common.update(S=common["S0"] / rt["speedup"], noisy=int(bool(rt.get("noisy"))),
                      S_dispersion=_num(rt.get("dispersion")), S_ideal_speedup=_num(rt.get("flop_ideal_speedup")))
    metrics: list[tuple[str, str, float | None, float | None]] = []
    ses: dict[str, tuple[float | None, float | None]] = {}
    # A task at ceiling or floor for the base model cannot show compression: it is left out of the average
    # (of base and compressed alike) and its own row is marked "excluded" with the reason.
    excluded = saturated_tasks(base.tasks) if base is not None and exclude_saturated else {}
    if base is not None or rec is not None:
        metrics.append(("test_loss", "lower", _num(base.test_loss) if base else None,
                        _num(rec.test_loss) if rec else None))
        for name in sorted(set((base.losses if base else {}) | (rec.losses if rec else {}))):
            metrics.append((name, "lower", _num(base.losses.get(name)) if base else None,
                            _num(rec.losses.get(name)) if rec else None))
        metrics.append(("avg_acc", "higher", _average(base, excluded), _average(rec, excluded)))
        ses["avg_acc"] = (_average_se(base, excluded), _average_se(rec, excluded))
        tasks = sorted(set((base.tasks if base else {}) | (rec.tasks if rec else {})))
        for t in tasks:
            metrics.append((t, "higher", _task_score(base, t), _task_score(rec, t)))
            ses[t] = (_task_se(base, t), _task_se(rec, t))
    else:  # a unit that broke before any evaluation: one row carries the failure
        metrics.append(("test_loss", "lower", None, None))
    rows = [{**common, "metric": m, "direction": d, "L0": base_v, "L": value,
             "L0_se": ses.get(m, (None, None))[0], "L_se": ses.get(m, (None, None))[1]}
            for m, d, base_v, value in metrics if not (m == "avg_acc" and base_v is None and value is None)]
    for row in rows:
        if row["metric"] in excluded and row["status"] == "success":
            row["status"], row["error"] = "excluded", f"{row['metric']}: {excluded[row['metric']]}; left out of avg_acc"
    return rows


def _average(m: Metrics | None, excluded: dict[str, str]) -> float | None:
    """The record's average accuracy, recomputed over the tasks not excluded (None when none is left)."""
    if m is None or m.avg_acc is None:
        return None
    if not excluded:
        return _num(m.avg_acc)
    kept = [t for t in m.tasks if t not in excluded]
    return _num(sum(primary_score(m.tasks[t]) for t in kept) / len(kept)) if kept else None


def _task_se(m: Metrics | None, task: str) -> float | None:
    """lm-eval's standard error of the task's score (acc_norm's where the score is acc_norm)."""
    if m is None or task not in m.tasks:
        return None
    t = m.tasks[task]
    return _num(t.get("acc_norm_stderr")) if "acc_norm" in t else _num(t.get("acc_stderr"))


def _average_se(m: Metrics | None, excluded: dict[str, str]) -> float | None:
    """Standard error of the average over the kept tasks, sqrt(Σ se²) / k (tasks scored on disjoint items)."""
    if m is None or m.avg_acc is None:
        return None
    se = [_task_se(m, t) for t in m.tasks if t not in excluded]
    if not se or any(v is None for v in se):
        return None
    return math.sqrt(sum(v * v for v in se)) / len(se)


def _task_score(m: Metrics | None, task: str) -> float | None:
    """acc_norm where the task has it, else acc (the convention of the compression-laws papers)."""
    if m is None or task not in m.tasks:
        return None
    return _num(primary_score(m.tasks[task]))


class ResultStore:
    """The SQLite results store (see module docstring)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.con = sqlite3.connect(self.path, timeout=60)
            self.con.execute("PRAGMA journal_mode=WAL")
            self.con.execute("PRAGMA synchronous=NORMAL")
            self.con.executescript(SCHEMA)
            self.con.commit()
            self._migrate()
        except (sqlite3.Error, OSError) as err:
            raise ComplawError(f"store {str(path)!r}: cannot be opened as a results store ({err}); "
                               "give a writable path ending in .db, or an existing complaw store") from None

    def _migrate(self) -> None:
        """Give a store written by an older complaw the law_rows columns it lacks, and derive its rows again
        from the stored records (new columns, tasks at ceiling or floor set aside); the records are untouched."""
        have = {row[1] for row in self.con.execute("PRAGMA table_info(law_rows)")}
        missing = [c for c in ADDED_COLUMNS if c not in have]
        if not missing:
            return
        with self.con:
            for c in missing:
                self.con.execute(f"ALTER TABLE law_rows ADD COLUMN {c} {ADDED_COLUMNS[c]}")
            for sweep, text in self.con.execute("SELECT sweep, record FROM experiments").fetchall():
                try:
                    rec = ExperimentRecord.model_validate_json(text)
                except ValueError:
                    continue  # a record this version cannot read keeps its old rows
                self._put_rows(rec, sweep or "")

    def _put_rows(self, rec: ExperimentRecord, sweep: str) -> None:
        self.con.execute("DELETE FROM law_rows WHERE config_hash = ?", (rec.config_hash,))
        rows = law_rows_of(rec, sweep)
        cols = list(rows[0])
        self.con.executemany(f"INSERT INTO law_rows ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                             [tuple(r[k] for k in cols) for r in rows])

    def close(self) -> None:
        self.con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- writing ---------------------------------------------------------------------------------------------
    def put(self, records: list[ExperimentRecord], sweep: str = "") -> None:
        """Store records (replacing earlier ones with the same hash) in one transaction."""
        with self.con:
            for rec in records:
                c = rec.config
                self.con.execute(
                    "INSERT OR REPLACE INTO experiments VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (rec.config_hash, sweep, c.model, c.method, c.ratio, c.rft.samples, c.seed, rec.status,
                     rec.error, rec.finished_at, rec.model_dump_json()))
                self._put_rows(rec, sweep)

    def put_base(self, key: str, model: str, metrics: Metrics, created_at: str = "") -> None:
        with self.con:
            self.con.execute("INSERT OR REPLACE INTO bases VALUES (?,?,?,?)",
                             (key, model, metrics.model_dump_json(), created_at))

    # --- reading ---------------------------------------------------------------------------------------------
    def get_base(self, key: str) -> Metrics | None:
        row = self.con.execute("SELECT metrics FROM bases WHERE base_key = ?", (key,)).fetchone()
        return Metrics.model_validate_json(row[0]) if row else None

    def statuses(self, hashes: list[str] | None = None) -> dict[str, str]:
        """config_hash -> status, for all records or the given ones."""
        if hashes is None:
            return dict(self.con.execute("SELECT config_hash, status FROM experiments"))
        out = {}
        for i in range(0, len(hashes), 500):
            chunk = hashes[i:i + 500]
            q = f"SELECT config_hash, status FROM experiments WHERE config_hash IN ({','.join('?' * len(chunk))})"
            out.update(dict(self.con.execute(q, chunk)))
        return out

    def records(self, where: str = "", params: tuple = ()) -> list[ExperimentRecord]:
        q = "SELECT record FROM experiments" + (f" WHERE {where}" if where else "") + " ORDER BY rowid"
        return [ExperimentRecord.model_validate_json(r[0]) for r in self.con.execute(q, params)]

    def frame(self) -> pd.DataFrame:
        """One row per experiment: identity, status, error and the headline numbers (peak memory in MiB)."""
        rows = []
        for rec in self.records():
            c, b, m = rec.config, rec.base, rec.recovered
            rows.append({
                "config_hash": rec.config_hash, "model": c.model, "method": c.method, "ratio": c.ratio,
                "rft_samples": c.rft.samples, "seed": c.seed, "status": rec.status,
                "param_reduction": (rec.compression or {}).get("param_reduction"),
                "base_loss": b.test_loss if b else None, "test_loss": m.test_loss if m else None,
                "base_acc": b.avg_acc if b else None, "avg_acc": m.avg_acc if m else None,
                "latency_s": m.latency_s if m else None, "dtype": rec.dtype,
                "peak_rss_mb": rec.peak_rss_bytes / 2**20 if rec.peak_rss_bytes is not None else None,
                "cuda_max_allocated_mb": rec.cuda_max_allocated_bytes / 2**20
                if rec.cuda_max_allocated_bytes is not None else None,
                "error": (rec.error or "").splitlines()[0] if rec.error else "",
            })
        return pd.DataFrame(rows)

    def law_frame(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM law_rows ORDER BY rowid", self.con)

    def counts(self) -> dict[str, int]:
        return dict(self.con.execute("SELECT status, COUNT(*) FROM experiments GROUP BY status"))
