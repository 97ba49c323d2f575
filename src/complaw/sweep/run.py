"""Running a sweep: skip what the store already holds, measure each base model once, run the units on an
executor, store every record as it arrives. (Fitting the laws and writing the report is the next stage's
work: :func:`complaw.report.build.sweep_report`, which ``complaw sweep`` calls after the sweep.)

Several sweeps may share one store: before a unit runs, the driver claims its experiments in the store (a
lease its heartbeat keeps fresh; see :meth:`~complaw.sweep.store.ResultStore.claim`), and leaves to the
other process any it holds or has stored meanwhile. A claim left by a killed sweep is taken over once stale.

    >>> result = run_sweep(load_spec("quick"))
    >>> result.counts, result.units_run
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from complaw.recipe import (
    ExperimentConfig,
    ExperimentRecord,
    Metrics,
    evaluate_base,
    failed_records,
    hashable,
    prepare,
    run_unit,
    utc_now,
)
from complaw.sweep.executors import get_executor
from complaw.sweep.spec import SweepSpec, Unit
from complaw.sweep.store import CLAIM_STALE_S, ClaimKeeper, ResultStore, claim_owner

DONE = ("success", "invalid")  # outcomes a rerun would repeat; failed ones are rerun on request


def base_key(cfg: ExperimentConfig) -> str:
    """Identity of a base-model evaluation: the model and every setting that changes its numbers."""
    d = hashable(cfg.model_dump(mode="json", include={"model", "eval", "runtime", "device", "dtype",
                                                      "trust_remote_code"}))
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class JobResult:
    records: list[ExperimentRecord] = field(default_factory=list)
    base: Metrics | None = None
    error: str | None = None
    wall_s: float = 0.0


@dataclass(frozen=True)
class BaseJob:
    """What an executor runs to measure a base model once (L0 and its runtime)."""

    label: str
    configs: list[ExperimentConfig]  # one
    threads: int | None = None

    def run(self) -> JobResult:
        try:
            return JobResult(base=evaluate_base(self.configs[0]))
        except Exception as err:
            return JobResult(error=f"{type(err).__name__}: {err}")


@dataclass(frozen=True)
class UnitJob:
    """What an executor runs for one unit: compress once, then every D (one record per config)."""

    label: str
    configs: list[ExperimentConfig]
    base: Metrics | None = None
    threads: int | None = None

    def run(self) -> JobResult:
        try:
            records = run_unit(self.configs, base=self.base)
        except Exception as err:  # prepare() refused it, or an internal error: every record says why
            records = failed_records(self.configs, err, self.base)
        return JobResult(records=records)


def run_job(job: BaseJob | UnitJob) -> JobResult:
    """Run one job, never raising: failures come back as failed records (or a base error)."""
    if job.threads:
        torch.set_num_threads(job.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the sweep shows its own progress
    start = time.perf_counter()
    result = job.run()
    result.wall_s = time.perf_counter() - start
    for rec in result.records:
        rec.timings_s["unit_wall"] = result.wall_s
    return result


@dataclass
class SweepResult:
    store: Path
    units_total: int
    units_run: int  # by this process
    units_skipped: int  # already stored when the sweep started
    counts: dict[str, int]
    wall_s: float
    compute_s: float  # the jobs' own wall time, summed
    #: units left to another process on the same store: it held their claims, or stored them meanwhile
    #: (a unit this process ran part of counts as run)
    units_elsewhere: int = 0


def _progress(console: Console) -> Progress:
    """The sweep's progress bars, on stderr (the summary and results go to ``console``, stdout by default)."""
    console = Console(stderr=True, width=console.width if console.is_terminal else None)
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("elapsed"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                    console=console, transient=False)


def run_sweep(spec: SweepSpec, *, executor: str = "local", address: str | None = None, retry_failed: bool = False,
              console: Console | None = None, show_progress: bool = True,
              claim_stale_s: float = CLAIM_STALE_S) -> SweepResult:
    """Run (or resume) a sweep: every unit the store does not already hold is run and stored.

    Args:
        claim_stale_s: a claim on a unit whose heartbeat is older than this many seconds is taken to be
            left by a dead sweep, and taken over (the heartbeat beats every quarter of it).

    Raises:
        ComplawError: a bad setting found before any work (unknown method or task, missing data, a store
            that is not a complaw store, …).
        KeyboardInterrupt: after storing every finished unit (a rerun resumes from there).
    """
    console = console or Console()
    start = time.perf_counter()
    units = spec.units()
    # Nothing is written before the settings are checked: the store is read (if it exists) to plan the work,
    # and opened for writing only then. A file that is not a complaw store is refused here.
    seen: dict[str, tuple] = {}
    if ResultStore.check_writable(spec.store) == "complaw":
        with ResultStore(spec.store, readonly=True) as peek:
            seen = peek.stamps()
    ok = DONE if retry_failed else (*DONE, "failed")
    todo: list[Unit] = []
    for u in units:
        missing = [c for c in u.configs if seen.get(c.config_hash(), ("",))[0] not in ok]
        if missing:
            todo.append(Unit(u.model, u.method, u.ratio, u.seed, missing))
    # A bad setting stops here, before any work: check one experiment of every model and method to run.
    checked = set()
    for u in todo:
        if (u.model, u.method) not in checked:
            checked.add((u.model, u.method))
            prepare(u.configs[-1])
    # The executor too (an unknown name, Ray not installed) is refused before the store is created.
    run = get_executor(executor, address=address, cpus_per_job=spec.cpus_per_unit, gpus_per_job=spec.gpus_per_unit)
    store = ResultStore(spec.store)
    owner = claim_owner()
    try:
        console.print(f"sweep [bold]{spec.name}[/bold]: {len(units)} units "
                      f"({len(units) - len(todo)} already stored, {len(todo)} to run) → {spec.store}")
        compute = 0.0
        # Each base model's L0 and runtime, once per evaluation setting.
        bases: dict[str, Metrics | None] = {}
        base_jobs = []
        for u in todo:
            key = base_key(u.configs[0])
            if key not in bases:
                bases[key] = store.get_base(key)
                if bases[key] is None:
                    base_jobs.append(BaseJob(f"base {u.model}", [u.configs[0]], threads=spec.threads))
        ran, elsewhere = 0, 0
        with ClaimKeeper(store.path, owner, every_s=claim_stale_s / 4), \
                (_progress(console) if show_progress else _NullProgress()) as progress:
            if base_jobs:
                task = progress.add_task("base models", total=len(base_jobs))
                for job, res in run(base_jobs, run_job):
                    compute += res.wall_s
                    key = base_key(job.configs[0])
                    if res.base is not None:
                        store.put_base(key, job.configs[0].model, res.base, utc_now())
                    else:
                        console.print(f"  base evaluation of {job.configs[0].model} failed: {res.error}", style="red")
                    bases[key] = res.base
                    progress.advance(task)
            task = progress.add_task("units", total=len(todo))

            def claimed() -> Iterator[UnitJob]:
                """The units, each claimed just before it is handed to the executor; one another process holds
                (or stored meanwhile) is left to it."""
                nonlocal elsewhere
                for u in todo:
                    got, _, _ = store.claim(u.hashes, owner, seen=seen, stale_s=claim_stale_s)
                    if not got:
                        elsewhere += 1
                        progress.update(task, advance=1, description=f"units ({u.label}: another process)")
                        continue
                    configs = [c for c in u.configs if c.config_hash() in got]
                    yield UnitJob(u.label, configs, bases.get(base_key(u.configs[0])), spec.threads)

            for job, res in run(claimed(), run_job):
                compute += res.wall_s
                ran += 1
                store.put(res.records, spec.name, owner=owner)
                bad = [r for r in res.records if r.status != "success"]
                if bad:
                    progress.console.print(f"  {job.label}: {bad[0].status} — {(bad[0].error or '').splitlines()[0]}",
                                           style="yellow")
                progress.update(task, advance=1, description=f"units ({job.label})")
        store.release(owner)
        if elsewhere:
            console.print(f"{elsewhere} of the {len(todo)} units to run were left to another process on this store "
                          "(it held them, or stored them meanwhile); not run here — rerun once it is done to pick "
                          "up any it did not finish", style="yellow")
        return SweepResult(Path(spec.store), len(units), ran, len(units) - len(todo), store.counts(),
                           time.perf_counter() - start, compute, units_elsewhere=elsewhere)
    except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM under stop_on_sigterm() (Terminated)
        counts = store.counts()
        console.print(f"\n{getattr(err, 'message', 'interrupted')}: {sum(counts.values())} experiments stored in "
                      f"{spec.store}; run the same command again to resume", style="yellow")
        raise
    finally:
        try:
            store.release(owner)  # interrupted or failed: the units in flight are free for the next run
        finally:
            store.close()


class Terminated(KeyboardInterrupt):
    """SIGTERM during a sweep (under :func:`stop_on_sigterm`): it stops like Ctrl-C — every finished unit stays
    stored, the claims are released, a rerun resumes — and the command exits with 143 (128 + SIGTERM)."""

    exit_code = 143
    message = "terminated"


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """Within: SIGTERM raises :class:`Terminated` in the main thread (once: a second SIGTERM while the sweep
    stores and releases what it holds is ignored). SIGINT is left as it is: a sweep started with SIGINT ignored
    (``nohup``, a background job of a shell) keeps ignoring it, else Ctrl-C raises KeyboardInterrupt (130)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = [False]

    def handler(signum, frame):
        if fired[0]:
            return
        fired[0] = True
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


class _NullProgress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_task(self, *a: Any, **k: Any) -> int:
        return 0

    def advance(self, *a: Any, **k: Any) -> None:
        pass

    def update(self, *a: Any, **k: Any) -> None:
        pass

    console = Console(quiet=True)
