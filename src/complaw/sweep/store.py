"""The results store: one SQLite file, one row per experiment keyed by its config hash.

Tables:

- ``experiments``: the full typed record (JSON) with status and error, keyed by ``config_hash``;
- ``bases``: each base model's metrics (L0, base runtime), measured once per evaluation setting;
- ``law_rows``: the records flattened to the law engine's columns (one row per experiment × metric:
  ``model, N, method, metric, direction, r, D, L0, L, S, S0, param_reduction, status, error …``), so
  ``complaw fit results.db`` and ``complaw report results.db`` read the store directly;
- ``claims``: which process is running which experiment right now (a lease kept fresh by a heartbeat), so
  that two sweeps on one store never compute the same experiment twice;
- ``meta``: the schema version. With ``PRAGMA application_id`` = :data:`APPLICATION_ID` it marks the file as
  a complaw store; a store written before the marker is known by its ``experiments`` and ``law_rows`` tables
  and gains the marker the first time it is opened for writing.

Only a sweep's driver writes; every record is committed as soon as its unit finishes, so a killed sweep
loses at most the units in flight. A reader (``complaw results``) opens the store read-only and never
changes it; opening for writing refuses any file that is not a complaw store, empty or new.

    >>> store = ResultStore("complaw_results/results.db", readonly=True)
    >>> store.law_frame().query("metric == 'test_loss'")
"""

from __future__ import annotations

import math
import os
import socket
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import quote

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
CREATE TABLE IF NOT EXISTS claims (
    config_hash TEXT PRIMARY KEY, owner TEXT NOT NULL, claimed_at REAL NOT NULL, heartbeat_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""
#: ``PRAGMA application_id`` of a complaw store: "claw" in ASCII.
APPLICATION_ID = int.from_bytes(b"claw", "big")
#: Version of the tables above (1: the stores written before the marker, without ``claims`` and ``meta``;
#: 2: records under the old names ``rft.samples``, ``rft.warmup``, ``latency_s``, renamed in 3 — see
#: :meth:`ResultStore._rename_fields`).
SCHEMA_VERSION = 3
#: The tables by which a store written before the marker is recognised.
LEGACY_TABLES = {"experiments", "law_rows"}
#: A claim whose heartbeat is older than this many seconds is taken to be abandoned and may be taken over.
CLAIM_STALE_S = 120.0
_SQLITE_MAGIC = b"SQLite format 3\x00"
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
        "D": float(c.rft.rft_samples), "D_tokens": float(c.rft.rft_samples * c.rft.seq_len), "seed": c.seed,
        "N": float(base.params) if base else None,
        # S0: the base latency timed in the same unit as S when there is one (older records: the sweep's)
        "S0": _num(record.base_latency_s) if record.base_latency_s is not None else
        (_num(base.prefill_latency_s) if base else None),
        "S": _num(rec.prefill_latency_s) if rec else None,
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


#: The statuses a stored record can have.
STATUSES = ("success", "failed", "invalid")
#: The columns of :meth:`ResultStore.frame`, one row per experiment.
FRAME_COLUMNS = ["config_hash", "model", "method", "ratio", "rft_samples", "seed", "status", "param_reduction",
                 "base_loss", "test_loss", "base_acc", "avg_acc", "prefill_latency_s", "dtype", "peak_rss_mb",
                 "cuda_max_allocated_mb", "error"]


def claim_owner() -> str:
    """A claim owner unique to one sweep run: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _owner_gone(owner: str) -> bool:
    """True when ``owner`` was a process of this host that no longer exists (killed before it could release)."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, ValueError):
        return False
    return False


def _uri(path: Path, **params) -> str:
    """SQLite URI of ``path``, its name quoted (a '#', '?' or '%' in it would otherwise end the name)."""
    return f"file:{quote(str(path.resolve()))}?" + "&".join(f"{k}={v}" for k, v in params.items())


def _read_only(path: Path) -> sqlite3.Connection:
    """A connection that can neither create nor change ``path`` (nor switch its journal mode)."""
    con = sqlite3.connect(_uri(path, mode="ro"), uri=True, timeout=60)
    try:
        con.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as err:
        if "locked" in str(err):
            con.close()
            raise
        # a WAL store in a directory this user cannot write (its -shm cannot be made): read the file as it is
        con.close()
        con = sqlite3.connect(_uri(path, mode="ro", immutable=1), uri=True)
    return con


def _use_wal(con: sqlite3.Connection, timeout_s: float = 60.0) -> None:
    """Switch to WAL (readers and the writer do not block each other). The switch needs the file to itself and
    SQLite does not wait for that: while another process opens or closes the store, try again."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            con.execute("PRAGMA journal_mode=WAL").fetchone()
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
        time.sleep(0.02)


def _first_line(err: BaseException) -> str:
    errors = getattr(err, "errors", None)
    if callable(errors):  # pydantic: its first problem, not the "1 validation error for …" header
        try:
            first = errors()[0]
            return f"{'.'.join(str(x) for x in first.get('loc', ())) or 'record'}: {first['msg']}"
        except (IndexError, KeyError, TypeError):
            pass
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _file_kind(path: Path) -> str:
    """What a path that is not a regular file is, in words (``a character device``, ``a named pipe``…)."""
    import stat

    mode = path.stat().st_mode
    for test, name in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a special file"


def _inspect(path: Path) -> tuple[str, str, int | None]:
    """What ``path`` holds, without changing it: ``(kind, why, schema_version)``.

    kind is ``new`` (no file), ``empty`` (0 bytes, or SQLite without any table), ``complaw`` (the marker, or
    the tables of a store written before it) or ``foreign`` (``why`` says what it is)."""
    if not path.exists():
        return "new", "", None
    if path.is_dir():
        return "foreign", "it is a directory", None
    if not path.is_file():  # checked before SQLite opens it: it would make a "-journal" file next to it
        return "foreign", f"it is not a regular file but {_file_kind(path)}", None
    if path.stat().st_size == 0:
        return "empty", "it is empty (0 bytes)", None
    with open(path, "rb") as fh:
        if fh.read(len(_SQLITE_MAGIC)) != _SQLITE_MAGIC:
            return "foreign", "it is not an SQLite file", None
    con = _read_only(path)
    try:
        app = con.execute("PRAGMA application_id").fetchone()[0]
        tables = sorted(r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
        version = None
        if app == APPLICATION_ID and "meta" in tables:
            row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(row[0]) if row and str(row[0]).isdigit() else None
    finally:
        con.close()
    if app == APPLICATION_ID or (app == 0 and LEGACY_TABLES <= set(tables)):
        return "complaw", "", version if app == APPLICATION_ID else 1
    if app == 0 and not tables:
        return "empty", "it is an SQLite file without any table", None
    shown = ", ".join(tables[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
    owner = f" (application_id {app})" if app else ""
    return "foreign", f"it is an SQLite database of another program{owner} (tables: {shown or 'none'})", None


class ResultStore:
    """The SQLite results store (see module docstring).

    Args:
        path: the store's file.
        readonly: open for reading only: the file must be a complaw store, and is never created, migrated or
            otherwise changed. Without it the store is created when the file is new or empty, an older
            store gains the marker and the newer columns, and any other file is refused.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        #: config_hash → why, for each stored record that could not be parsed (left out of :meth:`records`).
        self.unreadable: dict[str, str] = {}
        self._old_rows = False
        try:
            kind, why, version = _inspect(self.path)
            if readonly:
                self._open_readonly(kind, why)
            else:
                self._open_for_writing(kind, why, version)
        except (sqlite3.Error, OSError) as err:
            hint = ("name the .db file a `complaw sweep` wrote" if readonly else
                    "give a writable path ending in .db, or an existing complaw store")
            raise ComplawError(f"store {self.path}: cannot be opened as a results store ({_first_line(err)}); "
                               f"{hint}") from None

    @staticmethod
    def check_writable(path: str | Path) -> str:
        """Refuse, without creating or changing anything, a file a sweep must not write into (not SQLite, an
        SQLite database of another program, a store of a newer complaw). Returns what the file is: ``new``,
        ``empty`` or ``complaw``."""
        p = Path(path)
        try:
            kind, why, version = _inspect(p)
        except (sqlite3.Error, OSError) as err:
            raise ComplawError(f"store {p}: cannot be opened as a results store ({_first_line(err)}); "
                               "give a writable path ending in .db, or an existing complaw store") from None
        ResultStore._refuse_writing(p, kind, why, version)
        return kind

    @staticmethod
    def _refuse_writing(path: Path, kind: str, why: str, version: int | None) -> None:
        if kind == "foreign":
            raise ComplawError(f"store {path}: cannot be opened as a results store: {why}; give a new .db "
                               "path or an existing complaw store")
        if version is not None and version > SCHEMA_VERSION:
            raise ComplawError(f"store {path}: written by a newer complaw (schema {version}; this one "
                               f"writes schema {SCHEMA_VERSION}); upgrade complaw, or give another store")

    def _open_readonly(self, kind: str, why: str) -> None:
        hint = "name the .db file a `complaw sweep` wrote"
        if kind == "new":
            raise ComplawError(f"store {self.path}: no such results store; run `complaw sweep` first or {hint}")
        if kind in ("empty", "foreign"):
            raise ComplawError(f"store {self.path}: not a complaw results store: {why}; {hint}")
        self.con = _read_only(self.path)
        tables = {r[0] for r in self.con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if missing := sorted((LEGACY_TABLES | {"bases"}) - tables):
            self.con.close()
            raise ComplawError(f"store {self.path}: a damaged complaw store (no table {', '.join(missing)}); "
                               f"{hint}")
        have = {row[1] for row in self.con.execute("PRAGMA table_info(law_rows)")}
        self._old_rows = any(c not in have for c in ADDED_COLUMNS)

    def _open_for_writing(self, kind: str, why: str, version: int | None) -> None:
        self._refuse_writing(self.path, kind, why, version)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Every write transaction takes the write lock when it begins (IMMEDIATE), waiting for another
        # process's to end: a deferred one that read first could fail at once with "database is locked".
        self.con = sqlite3.connect(self.path, timeout=60, isolation_level="IMMEDIATE")
        _use_wal(self.con)
        self.con.execute("PRAGMA synchronous=NORMAL")
        self.con.executescript(f"BEGIN IMMEDIATE; {SCHEMA} PRAGMA application_id = {APPLICATION_ID}; INSERT OR REPLACE "
                               f"INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}'); COMMIT;")
        self._migrate()
        if kind == "complaw" and (version or 1) < 3:
            self._rename_fields()

    def _rename_fields(self) -> None:
        """Rewrite the records and base metrics of a store written before schema 3 under today's names
        (``rft.samples`` → ``rft.rft_samples``, ``rft.warmup`` → ``rft.warmup_fraction``, ``latency_s`` →
        ``prefill_latency_s``), in one transaction. Hashes, statuses and numbers are unchanged; a reader of an
        old store (opened read-only, so never rewritten) reads the old names as the new ones."""
        with self.con:
            for h, text in self.con.execute("SELECT config_hash, record FROM experiments").fetchall():
                rec = self._parse(h, text)
                if rec is not None:
                    self.con.execute("UPDATE experiments SET record = ? WHERE config_hash = ?",
                                     (rec.model_dump_json(), h))
            for key, text in self.con.execute("SELECT base_key, metrics FROM bases").fetchall():
                try:
                    metrics = Metrics.model_validate_json(text)
                except (ValueError, TypeError):
                    continue  # measured again when needed
                self.con.execute("UPDATE bases SET metrics = ? WHERE base_key = ?", (metrics.model_dump_json(), key))

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
            for h, sweep, text in self.con.execute("SELECT config_hash, sweep, record FROM experiments").fetchall():
                rec = self._parse(h, text)
                if rec is not None:  # a record this version cannot read keeps its old rows
                    self._put_rows(rec, sweep or "")

    def _put_rows(self, rec: ExperimentRecord, sweep: str) -> None:
        self.con.execute("DELETE FROM law_rows WHERE config_hash = ?", (rec.config_hash,))
        rows = law_rows_of(rec, sweep)
        cols = list(rows[0])
        self.con.executemany(f"INSERT INTO law_rows ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                             [tuple(r[k] for k in cols) for r in rows])

    def _parse(self, config_hash: str, text) -> ExperimentRecord | None:
        try:
            return ExperimentRecord.model_validate_json(text)
        except (ValueError, TypeError) as err:  # pydantic's ValidationError is a ValueError
            self.unreadable[config_hash] = _first_line(err)
            return None

    def close(self) -> None:
        if not self.readonly:
            # A store at rest goes back to a rollback journal, so that a reader later opens it without making
            # the -wal and -shm files WAL needs. While another process has it open this fails, harmlessly.
            try:
                self.con.rollback()
                self.con.execute("PRAGMA busy_timeout = 100")
                self.con.execute("PRAGMA journal_mode=DELETE").fetchone()
            except sqlite3.Error:
                pass
        self.con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- writing ---------------------------------------------------------------------------------------------
    def put(self, records: list[ExperimentRecord], sweep: str = "", *, owner: str | None = None) -> None:
        """Store records (replacing earlier ones with the same hash) in one transaction, releasing ``owner``'s
        claims on them in the same transaction."""
        with self.con:
            for rec in records:
                c = rec.config
                self.con.execute(
                    "INSERT OR REPLACE INTO experiments VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (rec.config_hash, sweep, c.model, c.method, c.ratio, c.rft.rft_samples, c.seed, rec.status,
                     rec.error, rec.finished_at, rec.model_dump_json()))
                self._put_rows(rec, sweep)
                if owner is not None:
                    self.con.execute("DELETE FROM claims WHERE config_hash = ? AND owner = ?",
                                     (rec.config_hash, owner))

    def put_base(self, key: str, model: str, metrics: Metrics, created_at: str = "") -> None:
        with self.con:
            self.con.execute("INSERT OR REPLACE INTO bases VALUES (?,?,?,?)",
                             (key, model, metrics.model_dump_json(), created_at))

    # --- claims: which process runs which experiment -----------------------------------------------------------
    def claim(self, hashes: list[str], owner: str, *, seen: dict[str, tuple], stale_s: float = CLAIM_STALE_S
              ) -> tuple[list[str], list[str], list[str]]:
        """Claim for ``owner``, in one transaction, each of ``hashes`` no other live process holds or stored.

        Args:
            hashes: the experiments about to run.
            owner: :func:`claim_owner` of this sweep.
            seen: :meth:`stamps` as read when the sweep planned its work: a record stored since then was
                written by another process, and is not run again.
            stale_s: a claim whose heartbeat is older than this many seconds, or whose process (on this
                host) is gone, is taken over.

        Returns:
            ``(claimed, held, stored)``: the hashes now claimed by ``owner``; those another live process
            holds; those another process stored since ``seen``.
        """
        now = time.time()
        claimed: list[str] = []
        held: list[str] = []
        stored: list[str] = []
        marks = ",".join("?" * len(hashes))
        self.con.execute("BEGIN IMMEDIATE")  # one claimer at a time: read and write the claims atomically
        try:
            stamps = {h: tuple(rest) for h, *rest in self.con.execute(
                "SELECT config_hash, status, finished_at, length(record) FROM experiments "
                f"WHERE config_hash IN ({marks})", hashes)}
            claims = {h: (o, beat) for h, o, beat in self.con.execute(
                f"SELECT config_hash, owner, heartbeat_at FROM claims WHERE config_hash IN ({marks})", hashes)}
            for h in hashes:
                if h in stamps and stamps[h] != seen.get(h):
                    stored.append(h)
                elif h in claims and claims[h][0] != owner and now - float(claims[h][1]) < stale_s \
                        and not _owner_gone(claims[h][0]):
                    held.append(h)
                else:
                    claimed.append(h)
            self.con.executemany("INSERT OR REPLACE INTO claims VALUES (?,?,?,?)",
                                 [(h, owner, now, now) for h in claimed])
            self.con.commit()
        except BaseException:
            self.con.rollback()
            raise
        return claimed, held, stored

    def release(self, owner: str, hashes: list[str] | None = None) -> None:
        """Drop ``owner``'s claims (all of them, or on ``hashes``)."""
        with self.con:
            if hashes is None:
                self.con.execute("DELETE FROM claims WHERE owner = ?", (owner,))
            else:
                self.con.executemany("DELETE FROM claims WHERE config_hash = ? AND owner = ?",
                                     [(h, owner) for h in hashes])

    def claims(self) -> dict[str, tuple[str, float, float]]:
        """config_hash → (owner, claimed_at, heartbeat_at) of every claim held now."""
        if not self._has_table("claims"):
            return {}
        return {h: (o, c, b) for h, o, c, b in
                self.con.execute("SELECT config_hash, owner, claimed_at, heartbeat_at FROM claims")}

    # --- reading ---------------------------------------------------------------------------------------------
    def _has_table(self, name: str) -> bool:
        return self.con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                (name,)).fetchone() is not None

    def get_base(self, key: str) -> Metrics | None:
        """A base model's stored metrics (None when there are none, or they cannot be parsed)."""
        row = self.con.execute("SELECT metrics FROM bases WHERE base_key = ?", (key,)).fetchone()
        try:
            return Metrics.model_validate_json(row[0]) if row else None
        except (ValueError, TypeError):
            return None  # measured again

    def statuses(self) -> dict[str, str]:
        """config_hash -> status of every stored record."""
        return dict(self.con.execute("SELECT config_hash, status FROM experiments"))

    def stamps(self) -> dict[str, tuple]:
        """config_hash → (status, finished_at, size of the record): enough to tell later whether another
        process stored the experiment again (see :meth:`claim`)."""
        return {h: tuple(rest) for h, *rest in
                self.con.execute("SELECT config_hash, status, finished_at, length(record) FROM experiments")}

    def records(self, where: str = "", params: tuple = ()) -> list[ExperimentRecord]:
        """The stored records in the order stored; one that cannot be parsed is left out and noted in
        :attr:`unreadable`."""
        q = "SELECT config_hash, record FROM experiments" + (f" WHERE {where}" if where else "") + " ORDER BY rowid"
        return [rec for h, text in self.con.execute(q, params) if (rec := self._parse(h, text)) is not None]

    def frame(self) -> pd.DataFrame:
        """One row per experiment: identity, status, error and the headline numbers (peak memory in MiB).

        A record that cannot be parsed is listed from its own columns with status ``unreadable`` (and noted in
        :attr:`unreadable`)."""
        rows = []
        q = ("SELECT config_hash, model, method, ratio, rft_samples, seed, record FROM experiments "
             "ORDER BY rowid")
        for h, model, method, ratio, samples, seed, text in self.con.execute(q):
            rec = self._parse(h, text)
            if rec is None:
                rows.append({"config_hash": h, "model": model, "method": method, "ratio": ratio,
                             "rft_samples": samples, "seed": seed, "status": "unreadable",
                             "error": f"stored record cannot be read ({self.unreadable[h]})"})
                continue
            c, b, m = rec.config, rec.base, rec.recovered
            rows.append({
                "config_hash": rec.config_hash, "model": c.model, "method": c.method, "ratio": c.ratio,
                "rft_samples": c.rft.rft_samples, "seed": c.seed, "status": rec.status,
                "param_reduction": (rec.compression or {}).get("param_reduction"),
                "base_loss": b.test_loss if b else None, "test_loss": m.test_loss if m else None,
                "base_acc": b.avg_acc if b else None, "avg_acc": m.avg_acc if m else None,
                "prefill_latency_s": m.prefill_latency_s if m else None, "dtype": rec.dtype,
                "peak_rss_mb": rec.peak_rss_bytes / 2**20 if rec.peak_rss_bytes is not None else None,
                "cuda_max_allocated_mb": rec.cuda_max_allocated_bytes / 2**20
                if rec.cuda_max_allocated_bytes is not None else None,
                "error": (rec.error or "").splitlines()[0] if rec.error else "",
            })
        return pd.DataFrame(rows, columns=FRAME_COLUMNS)

    def law_frame(self) -> pd.DataFrame:
        frame = pd.read_sql_query("SELECT * FROM law_rows ORDER BY rowid", self.con)
        if not self._old_rows:
            return frame
        # An older store opened read-only: its rows derived again in memory, as opening it for writing would.
        derived = []
        for h, sweep, text in self.con.execute("SELECT config_hash, sweep, record FROM experiments ORDER BY rowid"):
            rec = self._parse(h, text)
            if rec is not None:
                derived += law_rows_of(rec, sweep or "")
        kept = frame[~frame["config_hash"].isin({r["config_hash"] for r in derived})]
        if not derived:
            out = kept.copy()
        elif kept.empty:
            out = pd.DataFrame(derived)
        else:
            out = pd.concat([kept, pd.DataFrame(derived)], ignore_index=True)
        for c in ADDED_COLUMNS:
            if c not in out:
                out[c] = None
        return out

    def counts(self) -> dict[str, int]:
        return dict(self.con.execute("SELECT status, COUNT(*) FROM experiments GROUP BY status"))


class ClaimKeeper:
    """Keeps ``owner``'s claims fresh, every ``every_s`` seconds, from a thread with a connection of its own,
    while the units run (in this process, or on Ray workers).

        >>> with ClaimKeeper(store.path, owner, every_s=30):
        ...     run_the_units()
    """

    def __init__(self, path: str | Path, owner: str, every_s: float):
        self.path, self.owner, self.every_s = Path(path), owner, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="complaw-claims", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False

    def _beat(self) -> None:
        con = sqlite3.connect(self.path, timeout=max(1.0, self.every_s), isolation_level="IMMEDIATE")
        try:
            while not self._stop.wait(self.every_s):
                try:
                    with con:
                        con.execute("UPDATE claims SET heartbeat_at = ? WHERE owner = ?", (time.time(), self.owner))
                except sqlite3.Error:
                    pass  # busy for a whole beat: the next one tries again
        finally:
            con.close()
